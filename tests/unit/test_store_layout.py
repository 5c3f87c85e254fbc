"""The store's shape: the facade and the repositories satisfy the protocols the lines and the relay type against,
the line's state guards are the domain's transitions, and plain SQL names only columns models.py has."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from station import ports
from station.domain import ALLOWED_TRANSITIONS, StampState
from station.store import OutboxRepository, Store
from station.store.line_commit import FROM_STATES
from station.store.models import OutboxRow
from station.store.sql import Table

STORE = Path(__file__).resolve().parents[2] / "station" / "store"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "station.db") as s:
        yield s


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    methods = {}
    for klass in protocol.__mro__:
        if klass in (object,) or not getattr(klass, "_is_protocol", False):
            continue
        for name, member in vars(klass).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                methods.setdefault(name, inspect.signature(member))
    return methods


def parameters(signature: inspect.Signature) -> list[tuple[str, object]]:
    """Names and kinds, without self (defaults may differ: a protocol may write ``...``)."""
    return [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("protocol", [ports.LineStore, ports.PreprintedStore, ports.OutboxStore])
def test_the_store_facade_has_every_method_of_each_port(store: Store, protocol: type) -> None:
    methods = protocol_methods(protocol)
    assert methods
    for name, signature in methods.items():
        assert parameters(inspect.signature(getattr(store, name))) == parameters(signature), name


def test_the_outbox_repository_alone_is_what_the_relay_needs(store: Store) -> None:
    repository: OutboxRepository = store.outbox_repo
    for name, signature in protocol_methods(ports.OutboxStore).items():
        assert parameters(inspect.signature(getattr(repository, name))) == parameters(signature), name


def test_facade_methods_are_the_repositories_own(store: Store) -> None:
    assert store.batch.__func__ is type(store.catalogue_repo).batch          # type: ignore[attr-defined]
    assert store.commit_line_async.__self__ is store.stamp_repo              # type: ignore[attr-defined]
    assert Store.due_outbox.__doc__ == OutboxRepository.due_outbox.__doc__


def test_the_line_guards_are_the_domain_transitions_read_backwards() -> None:
    for target in StampState:
        assert set(FROM_STATES[target]) == {s.value for s, targets in ALLOWED_TRANSITIONS.items() if target in targets}
    # the line activates a stamp straight from sent_to_printer: a shortcut the domain states, not the store
    assert StampState.ACTIVATED in ALLOWED_TRANSITIONS[StampState.SENT_TO_PRINTER]
    assert set(FROM_STATES[StampState.ACTIVATED]) == {"sent_to_printer", "verified"}


def test_plain_sql_names_only_columns_of_the_model() -> None:
    outbox = Table(OutboxRow)
    assert (outbox.table, outbox.event_id) == ("outbox", "event_id")
    with pytest.raises(AttributeError, match="outbox has no column 'eventid'"):
        outbox.eventid  # noqa: B018


def test_no_store_module_is_over_400_lines_without_saying_why() -> None:
    for path in STORE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 400:
            assert "over 400 lines" in text.split('"""')[1], f"{path.name}: {len(text.splitlines())} lines"


def test_outbox_rows_and_scans_are_written_by_one_path_each() -> None:
    """outbox.write_events and line_commit.write_scans, on the line's cursor or in an ORM session alike."""
    for path in STORE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "models.py":
            assert "OutboxRow(" not in text and "ScanRow(" not in text, path.name
        if path.name != "outbox.py":
            assert "INSERT INTO outbox" not in text and "INSERT INTO {_O.table}" not in text, path.name
        if path.name != "line_commit.py":
            assert "INSERT INTO scans" not in text and "INSERT INTO {_SC.table}" not in text, path.name
