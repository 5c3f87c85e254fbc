"""Initial tables: events, stamps, quarantine, master data and scans

Revision ID: 0001
Revises:
Create Date: 2026-12-03 08:37:25.163614
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('batches',
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('lot', sa.String(length=20), nullable=False),
    sa.Column('batch_id', sa.String(length=100), nullable=True),
    sa.Column('production_date', sa.Date(), nullable=True),
    sa.Column('expiry', sa.Date(), nullable=True),
    sa.Column('standards', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='released', nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('gtin', 'lot')
    )
    op.create_table('diary_stages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('lot', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('biz_step', sa.String(length=200), nullable=True),
    sa.Column('place', sa.Text(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('occurred_offset', sa.String(length=6), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('gtin', 'lot', 'position', name='diary_stages_batch_position')
    )
    op.create_table('events',
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('site', sa.String(length=100), nullable=False),
    sa.Column('station', sa.String(length=100), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=True),
    sa.Column('biz_step', sa.String(length=200), nullable=True),
    sa.Column('disposition', sa.String(length=200), nullable=True),
    sa.Column('epc', sa.Text(), nullable=True),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_time_zone_offset', sa.String(length=6), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('events_epc', ['epc'], unique=False)
        batch_op.create_index('events_received_at', ['received_at'], unique=False)

    op.create_table('producers',
    sa.Column('producer_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('gln', sa.String(length=13), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('producer_id')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('site', sa.String(length=100), nullable=True),
    sa.Column('station', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('event_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('quarantine_received_at', ['received_at'], unique=False)

    op.create_table('scans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('epc', sa.Text(), nullable=False),
    sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client', sa.String(length=16), nullable=True),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.create_index('scans_epc', ['epc', 'scanned_at'], unique=False)

    op.create_table('stamps',
    sa.Column('epc', sa.Text(), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('serial', sa.String(length=20), nullable=False),
    sa.Column('lot', sa.String(length=20), nullable=True),
    sa.Column('expiry', sa.Date(), nullable=True),
    sa.Column('batch_id', sa.String(length=100), nullable=True),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('activated_offset', sa.String(length=6), nullable=True),
    sa.Column('activation_event_id', sa.String(length=100), nullable=True),
    sa.Column('activated_site', sa.String(length=100), nullable=True),
    sa.Column('activated_station', sa.String(length=100), nullable=True),
    sa.Column('read_point', sa.Text(), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_offset', sa.String(length=6), nullable=True),
    sa.Column('void_event_id', sa.String(length=100), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('voided_site', sa.String(length=100), nullable=True),
    sa.Column('voided_station', sa.String(length=100), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('epc')
    )
    with op.batch_alter_table('stamps', schema=None) as batch_op:
        batch_op.create_index('stamps_activated_at', ['activated_at'], unique=False)
        batch_op.create_index('stamps_gtin_lot', ['gtin', 'lot'], unique=False)

    op.create_table('products',
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('producer_id', sa.String(length=100), nullable=True),
    sa.Column('image_url', sa.Text(), nullable=True),
    sa.Column('shelf_life_days', sa.Integer(), nullable=True),
    sa.Column('standards', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['producer_id'], ['producers.producer_id'], ),
    sa.PrimaryKeyConstraint('gtin')
    )


def downgrade() -> None:
    op.drop_table('products')
    with op.batch_alter_table('stamps', schema=None) as batch_op:
        batch_op.drop_index('stamps_gtin_lot')
        batch_op.drop_index('stamps_activated_at')

    op.drop_table('stamps')
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_index('scans_epc')

    op.drop_table('scans')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('quarantine_received_at')

    op.drop_table('quarantine')
    op.drop_table('producers')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('events_received_at')
        batch_op.drop_index('events_epc')

    op.drop_table('events')
    op.drop_table('diary_stages')
    op.drop_table('batches')
