"""Pre-printed stamp rolls and their codes, the once-only record of activated codes, refusals, batch locks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("lock_reason", sa.Text(), nullable=True))
    op.create_table(
        "rolls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roll_id", sa.String(length=60), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("pattern", sa.Text(), nullable=True),
        sa.Column("first", sa.Integer(), nullable=True),
        sa.Column("last", sa.Integer(), nullable=True),
        sa.Column("code_count", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('active','locked','voided')", name="ck_rolls_state"),
        sa.ForeignKeyConstraint(["gtin"], ["products.gtin"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("roll_id"),
    )
    op.create_table(
        "roll_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roll_pk", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("stamp_id", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("void_reason", sa.String(length=40), nullable=True),
        sa.Column("void_detail", sa.Text(), nullable=False),
        sa.Column("voided_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("state IN ('unused','activated','voided')", name="ck_roll_codes_state"),
        sa.ForeignKeyConstraint(["roll_pk"], ["rolls.id"]),
        sa.ForeignKeyConstraint(["stamp_id"], ["stamps.id"]),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", name="uq_roll_codes_code"),
        sa.UniqueConstraint("roll_pk", "seq", name="uq_roll_codes_roll_seq"),
    )
    with op.batch_alter_table("roll_codes", schema=None) as batch_op:
        batch_op.create_index("ix_roll_codes_gtin_serial", ["gtin", "serial"], unique=False)
        batch_op.create_index("ix_roll_codes_roll_state", ["roll_pk", "state"], unique=False)
    op.create_table(
        "code_activations",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("stamp_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["stamp_id"], ["stamps.id"]),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("raw_hex", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("roll_pk", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"]),
        sa.ForeignKeyConstraint(["roll_pk"], ["rolls.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.create_index("ix_refusals_at", ["at"], unique=False)
        batch_op.create_index("ix_refusals_roll", ["roll_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_refusals_roll")
        batch_op.drop_index("ix_refusals_at")
    op.drop_table("refusals")
    op.drop_table("code_activations")
    with op.batch_alter_table("roll_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_roll_codes_roll_state")
        batch_op.drop_index("ix_roll_codes_gtin_serial")
    op.drop_table("roll_codes")
    op.drop_table("rolls")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("lock_reason")
        batch_op.drop_column("locked_at")
