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
