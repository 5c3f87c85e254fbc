"""The Alembic migrations and the tables central.db declares are the same schema, on PostgreSQL and on SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from central import db


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), db.metadata)


def test_the_migrated_postgresql_database_matches_the_models(engine: Engine) -> None:
    assert differences(engine) == []


def test_the_migrated_sqlite_database_matches_the_models(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade(engine)
    db.upgrade(engine)  # twice: nothing to do the second time
    assert differences(engine) == []
    engine.dispose()


def test_scan_totals_are_filled_from_the_checks_already_stored_and_kept_by_the_trigger(engine: Engine) -> None:
    import datetime as dt

    from alembic import command
    from sqlalchemy import select, text

    cfg = db.alembic_config(engine)
    at = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.timezone.utc)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        conn.execute(text("INSERT INTO scans (epc, scanned_at, client, verdict) VALUES "
                          "('E1', :at, 'n1', 'genuine'), ('E1', :later, 'n1', 'genuine'), ('E1', :later, NULL, 'x'), "
                          "('E2', :later, 'n2', 'unknown')"), {"at": at, "later": at + dt.timedelta(hours=1)})
        command.upgrade(cfg, "head")
    with engine.begin() as conn:
        conn.execute(db.scans.insert(), [{"epc": "E1", "scanned_at": at - dt.timedelta(days=1), "client": c,
                                          "verdict": "genuine"} for c in ("n2", "n3")])
        totals = conn.execute(select(db.scan_totals).order_by(db.scan_totals.c.epc)).all()
        networks = conn.execute(select(db.scan_networks).order_by(db.scan_networks.c.epc,
                                                                  db.scan_networks.c.client)).all()
    assert [(r.epc, r.checks, r.first_at) for r in totals] == [("E1", 5, at - dt.timedelta(days=1)),
                                                               ("E2", 1, at + dt.timedelta(hours=1))]
    assert [tuple(r) for r in networks] == [("E1", "n1"), ("E1", "n2"), ("E1", "n3"), ("E2", "n2")]
