"""Delivery problems the relay saw (the broker refused the login, or its ACL denied a publish).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_problems", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_problems_open", ["cleared_at", "code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_problems", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_problems_open")
    op.drop_table("delivery_problems")
