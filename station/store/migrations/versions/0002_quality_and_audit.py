"""Indicative print quality per stamp, and the audit log of technician logins and changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stamps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quality_grade", sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column("quality", sa.JSON(), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_at")
    op.drop_table("audit_log")
    with op.batch_alter_table("stamps", schema=None) as batch_op:
        batch_op.drop_column("quality")
        batch_op.drop_column("quality_grade")
