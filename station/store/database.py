"""The station's SQLite file: engines and pragmas (WAL, synchronous=FULL, busy_timeout, foreign keys), Alembic
migrations, and the single writer every repository writes through."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

from station.store.records import StoreError

T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")


class Database:
    """The engines, the migrations and the single writer of one SQLite file.

    Writes run one at a time (under ``_write_lock``), each in a ``BEGIN IMMEDIATE`` transaction so a second
    process sharing the file (a separate relay service) waits on ``busy_timeout`` instead of failing on a lock
    upgrade. They run on one worker thread, in the order they were queued; the one exception is a plain
    commit the caller waits for (``commit_plain``) made while nothing is queued or running, which runs on the
    caller's thread (it would only wait for the worker otherwise, and the hand-off costs as much as the
    statements of a line commit). Reads run on the caller's thread, on the reader engine.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self.writer_engine = self._engine(immediate=True)
        self.reader_engine = self._engine(immediate=False)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._helpers: list[ThreadPoolExecutor] = []
        self._closed = False
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()   # held by the write that runs, on whichever thread it runs
        self._queued_lock = threading.Lock()
        self._queued = 0                      # writes handed to the worker and not finished
        self.run(self._migrate)
        self.run(self._open_plain_connection)

    # -- connections ------------------------------------------------------------------------------------------

    def _engine(self, *, immediate: bool) -> Engine:
        engine = create_engine(
            f"sqlite:///{self.path}", connect_args={"check_same_thread": False}, pool_size=4, max_overflow=4
        )
        timeout = self.busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own BEGIN handling is off so the "begin" hook below decides the transaction type.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={int(timeout)}")
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed activation survives a power cut (NORMAL may lose the last commits in WAL mode).
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _migrate(self) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.writer_engine.connect() as conn:
            # A migration that changes a table copies it, drops it and renames the copy (SQLite's procedure), which
            # needs foreign keys off; PRAGMA foreign_keys does nothing inside a transaction, so it is set before
            # Alembic begins one, the keys are checked before the commit, and they are on again after it.
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
            done = False
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"migrating {self.path} broke foreign keys: {broken[:5]}")
                conn.commit()
                done = True
            finally:
                if done:
                    raw.execute("PRAGMA foreign_keys=ON")
                else:
                    conn.invalidate()  # never back to the pool with foreign keys off

    def _open_plain_connection(self) -> None:
        """The writer's own DBAPI connection for plain SQL, checked out of the writer engine's pool once (so it is
        set up like every other connection: WAL, synchronous=FULL, busy_timeout, foreign keys)."""
        self._plain_fairy = self.writer_engine.raw_connection()
        self.plain_connection: sqlite3.Connection = self._plain_fairy.driver_connection
        self._plain_cursor = self.plain_connection.cursor()

    def pragma(self, name: str) -> Any:
        """The value of a PRAGMA on a reader connection (for checks and diagnostics)."""
        with self.reader_engine.connect() as conn:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

    # -- the single writer --------------------------------------------------------------------------------------

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue a write on the worker thread: it runs after every write queued before it, under the write lock."""

        def run() -> T:
            try:
                with self._write_lock:
                    return fn()
            finally:
                with self._queued_lock:
                    self._queued -= 1

        with self._queued_lock:
            if self._closed:
                raise StoreError(f"the store {self.path} is closed")
            self._queued += 1
        try:
            return self._writer.submit(run)
        except BaseException:
            with self._queued_lock:
                self._queued -= 1
            raise

    def helper_thread(self, name: str) -> ThreadPoolExecutor:
        """A thread that waits on the writer for a caller (the serial allocator), shut down by close() after the
        store refuses new writes and before the writer stops."""
        helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._helpers.append(helper)
        return helper

    def run(self, fn: Callable[[], T]) -> T:
        return self.submit(fn).result()

    def write(self, fn: Callable[[Session], T]) -> T:
        """``fn`` in one ORM transaction on the writer, waited for."""
        return self.run(self._in_session(fn))

    def write_async(self, fn: Callable[[Session], T]) -> Future[T]:
        """``fn`` in one ORM transaction, queued on the writer: the caller collects the result later."""
        return self.submit(self._in_session(fn))

    def _in_session(self, fn: Callable[[Session], T]) -> Callable[[], T]:
        def job() -> T:
            with Session(self.writer_engine, expire_on_commit=False) as session, session.begin():
                return fn(session)

        return job

    def read(self, fn: Callable[[Session], T]) -> T:
        """``fn`` in one read transaction, on the caller's thread."""
        with Session(self.reader_engine, expire_on_commit=False) as session, session.begin():
            return fn(session)

    # -- plain SQL on the writer's own connection (the line's commits) ------------------------------------------

    def _plain_write(self, job: Callable[[sqlite3.Cursor], T]) -> T:
        """Under the write lock: ``job`` in one BEGIN IMMEDIATE … COMMIT on the writer's plain connection, rolled
        back whole on any error (COMMIT's own included)."""
        cur = self._plain_cursor
        cur.execute("BEGIN IMMEDIATE")
        try:
            result = job(cur)
            cur.execute("COMMIT")
        except BaseException:
            if self.plain_connection.in_transaction:
                cur.execute("ROLLBACK")
            raise
        return result

    def commit_plain(self, job: Callable[[sqlite3.Cursor], T]) -> T:
        """A plain commit the caller waits for. With nothing queued or running it runs right here, under the write
        lock: handing it to the worker and waiting for it costs two thread wake-ups, 0.08-0.13 ms on the commit
        benchmark's machine, as much as the statements of one activation (0.1 ms; its COMMIT with the fsync
        0.25 ms). With writes queued it is queued behind them, so it never overtakes a commit its caller queued
        before (commit_plain_async)."""
        with self._queued_lock:
            idle = self._queued == 0
        if not idle:
            return self.run(lambda: self._plain_write(job))
        with self._write_lock:
            if self._closed:
                raise StoreError(f"the store {self.path} is closed")
            return self._plain_write(job)

    def commit_plain_async(self, job: Callable[[sqlite3.Cursor], T]) -> Future[T]:
        """The same commit, queued on the writer thread, in order with every other write."""
        return self.submit(lambda: self._plain_write(job))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for helper in self._helpers:
            helper.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._write_lock:  # a plain commit running on its caller's thread finishes first
            self._plain_cursor.close()
            self._plain_fairy.close()  # back to the pool, which dispose() closes
        self.writer_engine.dispose()
        self.reader_engine.dispose()
