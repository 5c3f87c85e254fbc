"""Scan totals: each stamp's checks and client networks, kept by a trigger on scans (PostgreSQL)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# One statement-level trigger: a batch of checks written in one INSERT updates each stamp's totals once, rows in
# key order (two web processes flushing together never wait on each other in opposite orders).
_FUNCTION = """
CREATE FUNCTION scans_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO scan_totals (epc, checks, first_at)
    SELECT epc, count(*), min(scanned_at) FROM new_scans GROUP BY epc ORDER BY epc
  ON CONFLICT (epc) DO UPDATE SET checks = scan_totals.checks + EXCLUDED.checks,
                                  first_at = LEAST(scan_totals.first_at, EXCLUDED.first_at);
  INSERT INTO scan_networks (epc, client)
    SELECT DISTINCT epc, client FROM new_scans WHERE client IS NOT NULL ORDER BY epc, client
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table('scan_totals',
    sa.Column('epc', sa.Text(), nullable=False),
    sa.Column('checks', sa.BigInteger(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('epc')
    )
    op.create_table('scan_networks',
    sa.Column('epc', sa.Text(), nullable=False),
    sa.Column('client', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('epc', 'client')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_FUNCTION)
        op.execute("CREATE TRIGGER scans_totals AFTER INSERT ON scans REFERENCING NEW TABLE AS new_scans "
                   "FOR EACH STATEMENT EXECUTE FUNCTION scans_totals()")
        op.execute("INSERT INTO scan_totals (epc, checks, first_at) "
                   "SELECT epc, count(*), min(scanned_at) FROM scans GROUP BY epc")
        op.execute("INSERT INTO scan_networks (epc, client) "
                   "SELECT DISTINCT epc, client FROM scans WHERE client IS NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER scans_totals ON scans")
        op.execute("DROP FUNCTION scans_totals()")
    op.drop_table('scan_networks')
    op.drop_table('scan_totals')
