"""Pre-printed stamps with opaque codes: stamps.code (unique) and stamps.roll; serial optional

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 09:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stamps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('roll', sa.String(length=100), nullable=True))
        batch_op.alter_column('serial', existing_type=sa.String(length=20), nullable=True)
        batch_op.create_index('stamps_code', ['code'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('stamps', schema=None) as batch_op:
        batch_op.drop_index('stamps_code')
        batch_op.alter_column('serial', existing_type=sa.String(length=20), nullable=False)
        batch_op.drop_column('roll')
        batch_op.drop_column('code')
