"""Plain SQL on models.py's tables: names checked against the models when a module is imported, times as the ORM
writes them. For the hot paths, where SQLAlchemy's expressions and rows cost more CPU than SQLite itself."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Session

# cursor.executemany, or a Session's exec_driver_sql: statements with "?" placeholders and a list of rows.
ExecuteMany = Callable[[str, list[tuple[Any, ...]]], Any]


class Table:
    """The table and column names of a model, for SQL text: ``t.table``, ``t.serial``, ``t.cols("id", "gtin")``.

    An attribute that is not a column of the model raises AttributeError, so a statement that names a column
    models.py does not have fails when its module is imported, not on the line.
    """

    def __init__(self, model: type[DeclarativeBase]) -> None:
        self._columns = frozenset(model.__table__.columns.keys())
        self.table: str = model.__tablename__

    def __getattr__(self, name: str) -> str:
        if name.startswith("_") or name not in self._columns:
            raise AttributeError(f"table {self.table} has no column {name!r}")
        return name

    def cols(self, *names: str) -> str:
        """A comma-separated column list, each name checked."""
        return ", ".join(getattr(self, name) for name in names)


def sql_time(moment: dt.datetime) -> str:
    """A naive UTC time as SQLAlchemy's SQLite DateTime stores it, so ORM reads see the same values."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def marks(count: int) -> str:
    """``count`` placeholders for an IN list."""
    return ",".join("?" * count)


def quoted(values: Sequence[str]) -> str:
    """Constant strings (enum values, never input) for an IN list."""
    return ",".join(f"'{value}'" for value in values)


def event_text(event: dict[str, Any]) -> str:
    """An EPCIS event as the outbox keeps it, and resends it byte for byte."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def session_executemany(session: Session) -> ExecuteMany:
    """Plain statements inside a Session's transaction (SQLAlchemy's errors, IntegrityError included)."""
    return lambda sql, rows: session.connection().exec_driver_sql(sql, rows)
