"""The products keep what the trace page shows (producer id, address and phone, image, applied standards, the
production diary template); an outbox row may end 'rejected' (the central server refused the event, with its reason).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OLD = "state IN ('pending','sent','confirmed')"
NEW = "state IN ('pending','sent','confirmed','rejected')"
PRODUCT_COLUMNS = ("producer_id", "producer_address", "producer_phone", "image_url", "standards", "diary")


def _check(constraint: str) -> None:
    # SQLite changes a CHECK constraint only by copying the table (as 0005 does for the stamps).
    with op.batch_alter_table("outbox", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("ck_outbox_state", type_="check")
        batch_op.create_check_constraint("ck_outbox_state", sa.text(constraint))


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("producer_id", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("producer_address", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("producer_phone", sa.String(length=40), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("image_url", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("standards", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("diary", sa.JSON(), nullable=False, server_default="[]"))
    _check(NEW)


def downgrade() -> None:
    # Rejected rows become pending again: the relay sends them once more and the server answers as before.
    op.execute("UPDATE outbox SET state = 'pending' WHERE state = 'rejected'")
    _check(OLD)
    with op.batch_alter_table("products", schema=None) as batch_op:
        for column in PRODUCT_COLUMNS:
            batch_op.drop_column(column)
