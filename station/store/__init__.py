"""The station's local database: SQLite in WAL mode, synchronous=FULL, one writer thread, Alembic migrations.

Which file holds what:
  database.py     ``Database``: engines, pragmas, migrations, the single writer (queued, waited or plain commits)
  catalogue.py    ``CatalogueRepository``: products, batches, batch locks
  stamps.py       ``StampRepository``: serials reserved, stamps read back, what a run left undecided, counters
  line_commit.py  the printed line's commit in plain SQL (the hot path), its state guards from the domain's
                  transitions, and ``write_scans``, the one way a read is recorded
  outbox.py       ``OutboxRepository``: delivery of the outbox, the audit log, delivery problems; ``write_events``,
                  the one way a row enters the outbox
  rolls.py        ``RollRepository``: pre-printed rolls and codes, the pre-printed line's commit, refusals
  records.py      the records the store takes and returns, and its errors
  sql.py          helpers for plain SQL on models.py's tables (names checked at import)
  models.py       the tables; migrations/ the Alembic history
``Store`` below composes them for the callers that want the whole database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from station.store.catalogue import CatalogueRepository
from station.store.database import MIGRATIONS, Database
from station.store.outbox import OutboxRepository
from station.store.records import (
    Activation,
    AuditEntry,
    BatchLocked,
    CodeActivation,
    CommitOutcome,
    Counts,
    DeliveryProblemRecord,
    DuplicateEvent,
    NewRoll,
    NewRollCode,
    OutboxItem,
    Refusal,
    RejectedEvent,
    RollCode,
    RollConflict,
    RollInfo,
    ScanRecord,
    StoreError,
    Voiding,
    utcnow,
)
from station.store.rolls import RollRepository
from station.store.stamps import StampRepository

__all__ = ["Store", "Database", "MIGRATIONS", "StoreError", "BatchLocked", "DuplicateEvent", "OutboxItem", "ScanRecord",
           "Counts", "AuditEntry", "Activation", "Voiding", "DeliveryProblemRecord", "utcnow", "RollConflict",
           "RejectedEvent", "NewRoll", "NewRollCode", "RollInfo", "RollCode", "Refusal", "CodeActivation", "CommitOutcome",
           "CatalogueRepository", "StampRepository", "OutboxRepository", "RollRepository"]

P = ParamSpec("P")
R = TypeVar("R")


class _Via(Generic[P, R]):
    """A method of the facade that is a repository's method: ``batch = _Via("catalogue_repo",
    CatalogueRepository.batch)`` makes ``store.batch(...)`` call ``store.catalogue_repo.batch(...)``, with the
    repository method's signature, types and docstring (one definition, nothing to keep in step)."""

    def __init__(self, repo: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.repo = repo
        self.name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> _Via[P, R]: ...

    @overload
    def __get__(self, obj: object, owner: type) -> Callable[P, R]: ...

    def __get__(self, obj: object | None, owner: type) -> _Via[P, R] | Callable[P, R]:
        if obj is None:
            return self
        return getattr(getattr(obj, self.repo), self.name)  # type: ignore[no-any-return]


class Store:
    """The whole local database: one ``Database`` and its four repositories, for the composition root, the
    screens, the command line and tests.

    New code should depend on the narrow protocol it needs (``station.ports.LineStore``, ``PreprintedStore``,
    ``OutboxStore``) or on one repository, not on this facade: each method below is a repository's, under its
    section. Writes run one at a time on the single writer (see ``Database``); callers on any thread get plain
    records back, never live ORM rows.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.database = Database(path, busy_timeout_ms=busy_timeout_ms)
        self.catalogue_repo = CatalogueRepository(self.database)
        self.stamp_repo = StampRepository(self.database)
        self.outbox_repo = OutboxRepository(self.database)
        self.roll_repo = RollRepository(self.database)

    @property
    def path(self) -> Path:
        return self.database.path

    @property
    def busy_timeout_ms(self) -> int:
        return self.database.busy_timeout_ms

    def pragma(self, name: str) -> Any:
        """The value of a PRAGMA on a reader connection (for checks and diagnostics)."""
        return self.database.pragma(name)

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- products, batches, locks (catalogue.py) --------------------------------------------------------------
    sync_products = _Via("catalogue_repo", CatalogueRepository.sync_products)
    products = _Via("catalogue_repo", CatalogueRepository.products)
    product = _Via("catalogue_repo", CatalogueRepository.product)
    create_batch = _Via("catalogue_repo", CatalogueRepository.create_batch)
    publish_batch = _Via("catalogue_repo", CatalogueRepository.publish_batch)
    batch = _Via("catalogue_repo", CatalogueRepository.batch)
    find_batch = _Via("catalogue_repo", CatalogueRepository.find_batch)
    batches = _Via("catalogue_repo", CatalogueRepository.batches)
    close_batch = _Via("catalogue_repo", CatalogueRepository.close_batch)
    lock_batch = _Via("catalogue_repo", CatalogueRepository.lock_batch)
    unlock_batch = _Via("catalogue_repo", CatalogueRepository.unlock_batch)
    batch_lock_reason = _Via("catalogue_repo", CatalogueRepository.batch_lock_reason)

    # -- stamps and the line's commits (stamps.py, line_commit.py) --------------------------------------------
    allocate_stamp = _Via("stamp_repo", StampRepository.allocate_stamp)
    allocate_stamps = _Via("stamp_repo", StampRepository.allocate_stamps)
    allocate_stamps_async = _Via("stamp_repo", StampRepository.allocate_stamps_async)
    release_unused = _Via("stamp_repo", StampRepository.release_unused)
    commit_line = _Via("stamp_repo", StampRepository.commit_line)
    commit_line_async = _Via("stamp_repo", StampRepository.commit_line_async)
    mark_sent_to_printer = _Via("stamp_repo", StampRepository.mark_sent_to_printer)
    activate = _Via("stamp_repo", StampRepository.activate)
    void = _Via("stamp_repo", StampRepository.void)
    record_scan = _Via("stamp_repo", StampRepository.record_scan)
    stamp = _Via("stamp_repo", StampRepository.stamp)
    find_stamp = _Via("stamp_repo", StampRepository.find_stamp)
    stamps = _Via("stamp_repo", StampRepository.stamps)
    in_flight_stamps = _Via("stamp_repo", StampRepository.in_flight_stamps)
    interrupted_stamps = _Via("stamp_repo", StampRepository.interrupted_stamps)
    counts = _Via("stamp_repo", StampRepository.counts)
    scans = _Via("stamp_repo", StampRepository.scans)

    # -- outbox, audit, delivery problems (outbox.py) ---------------------------------------------------------
    due_outbox = _Via("outbox_repo", OutboxRepository.due_outbox)
    reschedule_unconfirmed = _Via("outbox_repo", OutboxRepository.reschedule_unconfirmed)
    mark_published = _Via("outbox_repo", OutboxRepository.mark_published)
    mark_publish_failed = _Via("outbox_repo", OutboxRepository.mark_publish_failed)
    mark_confirmed = _Via("outbox_repo", OutboxRepository.mark_confirmed)
    mark_rejected = _Via("outbox_repo", OutboxRepository.mark_rejected)
    rejected_events = _Via("outbox_repo", OutboxRepository.rejected_events)
    record_delivery_async = _Via("outbox_repo", OutboxRepository.record_delivery_async)
    outbox_counts = _Via("outbox_repo", OutboxRepository.outbox_counts)
    delivery_states = _Via("outbox_repo", OutboxRepository.delivery_states)
    all_confirmed = _Via("outbox_repo", OutboxRepository.all_confirmed)
    oldest_unconfirmed = _Via("outbox_repo", OutboxRepository.oldest_unconfirmed)
    audit = _Via("outbox_repo", OutboxRepository.audit)
    audit_log = _Via("outbox_repo", OutboxRepository.audit_log)
    record_delivery_problem = _Via("outbox_repo", OutboxRepository.record_delivery_problem)
    clear_delivery_problems = _Via("outbox_repo", OutboxRepository.clear_delivery_problems)
    delivery_problems = _Via("outbox_repo", OutboxRepository.delivery_problems)

    # -- pre-printed rolls, their commits, refusals (rolls.py) ------------------------------------------------
    register_roll = _Via("roll_repo", RollRepository.register_roll)
    roll = _Via("roll_repo", RollRepository.roll)
    rolls = _Via("roll_repo", RollRepository.rolls)
    roll_counts = _Via("roll_repo", RollRepository.roll_counts)
    set_roll_state = _Via("roll_repo", RollRepository.set_roll_state)
    find_code = _Via("roll_repo", RollRepository.find_code)
    find_code_by_serial = _Via("roll_repo", RollRepository.find_code_by_serial)
    roll_codes = _Via("roll_repo", RollRepository.roll_codes)
    is_code_activated = _Via("roll_repo", RollRepository.is_code_activated)
    void_code = _Via("roll_repo", RollRepository.void_code)
    commit_preprinted = _Via("roll_repo", RollRepository.commit_preprinted)
    record_refusals = _Via("roll_repo", RollRepository.record_refusals)
    refusals = _Via("roll_repo", RollRepository.refusals)
    refusal_count = _Via("roll_repo", RollRepository.refusal_count)
