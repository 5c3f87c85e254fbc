"""Stamps reserved and never printed keep the state 'unused' instead of being voided with a decommissioning event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00

Stamps voided before with the reason 'unused' (the run ended before they were printed) become 'unused'; their void
events that the server has not confirmed leave the outbox (they were never commissioned: there is nothing to
decommission). Confirmed ones stay, as the record of what was sent.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD = "state IN ('allocated','sent_to_printer','verified','activated','voided')"
NEW = "state IN ('allocated','sent_to_printer','verified','activated','voided','unused')"


def _check(constraint: str) -> None:
    # SQLite changes a CHECK constraint only by copying the table (Alembic's batch mode: indexes and the unique
    # serial constraint come along). The Store runs migrations with foreign keys off, as SQLite's procedure asks.
    with op.batch_alter_table("stamps", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("ck_stamps_state", type_="check")
        batch_op.create_check_constraint("ck_stamps_state", sa.text(constraint))


def upgrade() -> None:
    _check(NEW)
    op.execute("DELETE FROM outbox WHERE kind = 'void' AND state != 'confirmed' AND stamp_id IN "
               "(SELECT id FROM stamps WHERE state = 'voided' AND void_reason = 'unused')")
    op.execute("UPDATE stamps SET state = 'unused', void_reason = NULL, voided_at = NULL "
               "WHERE state = 'voided' AND void_reason = 'unused'")


def downgrade() -> None:
    op.execute("UPDATE stamps SET state = 'voided', void_reason = 'unused', voided_at = allocated_at "
               "WHERE state = 'unused'")
    _check(OLD)
