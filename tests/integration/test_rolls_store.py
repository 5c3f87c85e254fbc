"""Rolls in a real SQLite file: overlapping rolls refused with the manifest's line, nothing registered from a
refused manifest; a code activated once whatever the path; roll void/lock and batch lock recorded; the `station
rolls` and `station batch` commands."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
import yaml
from sqlalchemy.exc import IntegrityError

from app.cli import main
from station.config import DEFAULT_CONFIG
from station.domain import Batch, CodeState, Product, RefusalReason, RollState
from station.rolls import CodeRules, parse_manifest, reconcile
from station.store import CodeActivation, RollConflict, Store, StoreError

MX, NM = "08938603001013", "08938603002027"
RULES = CodeRules(digital_link=True, shapes=(("hue-provincial", "HUE[0-9]{7}"),))


def seq_manifest(folder: Path, roll: str, first: int, last: int, product: str = MX) -> Path:
    path = folder / f"{roll}.yaml"
    path.write_text(f'roll: {roll}\nproduct: "{product}"\nsequence:\n  pattern: "HUE{{n:07d}}"\n'
                    f"  first: {first}\n  last: {last}\n", encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "station.db") as s:
        s.sync_products([Product(MX, "Mè xừng", "P"), Product(NM, "Nước mắm", "P")])
        yield s


def test_an_overlapping_roll_is_refused_naming_the_line_and_registers_nothing(store: Store, tmp_path: Path) -> None:
    store.register_roll(parse_manifest(seq_manifest(tmp_path, "A", 1, 100), RULES))
    listed = tmp_path / "b.csv"
    listed.write_text(f"roll,product,code\nB,{MX},HUE0000500\nB,{MX},HUE0000050\nB,{MX},HUE0000501\n",
                      encoding="utf-8")
    with pytest.raises(RollConflict) as info:
        store.register_roll(parse_manifest(listed, RULES))
    assert str(info.value) == f"{listed}: line 3: code 'HUE0000050' is already in roll 'A'"
    with pytest.raises(RollConflict, match=r"C.yaml: line 4: code 'HUE0000099' \(n=99\) is already in roll 'A'"):
        store.register_roll(parse_manifest(seq_manifest(tmp_path, "C", 99, 120), RULES))
    assert [r.roll_id for r in store.rolls()] == ["A"]
    assert store.find_code("HUE0000500") is None and store.find_code("HUE0000120") is None
    with pytest.raises(StoreError, match="roll 'A' is already registered"):
        store.register_roll(parse_manifest(seq_manifest(tmp_path / "..", "A", 200, 210), RULES))


def test_a_code_is_activated_once_whatever_the_path(store: Store, tmp_path: Path) -> None:
    store.register_roll(parse_manifest(seq_manifest(tmp_path, "A", 1, 3), RULES))
    batch = store.create_batch(Batch(None, MX, "L1", expiry_date=dt.date(2027, 1, 1)))
    code = store.find_code("HUE0000001")
    assert code is not None

    def activation() -> CodeActivation:
        return CodeActivation(code_id=code.id, code=code.code, batch_id=batch.id, gtin=MX,  # type: ignore[arg-type]
                              serial=code.code, event={"eventID": f"urn:uuid:{__import__('uuid').uuid4()}"},
                              roll_pk=code.roll_pk)

    # Twice in one group (a resend inside the commit window): the second is refused inside the transaction.
    first, second = store.commit_preprinted([activation(), activation()])
    assert first.stamp is not None and second.refusal is not None
    assert second.refusal.reason is RefusalReason.ALREADY_ACTIVATED
    # Again later (a restart): refused too, and recorded.
    (third,) = store.commit_preprinted([activation()])
    assert third.refusal is not None and third.refusal.reason is RefusalReason.ALREADY_ACTIVATED
    assert [r.reason for r in store.refusals()] == [RefusalReason.ALREADY_ACTIVATED] * 2
    assert store.refusal_count(roll_pk=code.roll_pk) == 2 == len(store.refusals(roll_pk=code.roll_pk))
    # And the table itself refuses a second row, whatever code path would try.
    with sqlite3.connect(store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO code_activations (code, stamp_id, batch_id, at) VALUES ('HUE0000001', 1, 1, 'x')")
    assert store.find_code("HUE0000001").state is CodeState.ACTIVATED  # type: ignore[union-attr]


def test_voiding_a_roll_voids_its_unused_codes_with_events_and_stays_voided(store: Store, tmp_path: Path) -> None:
    store.register_roll(parse_manifest(seq_manifest(tmp_path, "A", 1, 4), RULES))
    store.set_roll_state("A", RollState.LOCKED, "found opened")
    store.set_roll_state("A", RollState.ACTIVE, "counted, complete")
    store.void_code("HUE0000002", "torn")
    roll = store.set_roll_state("A", RollState.VOIDED, "lost in transit",
                                void_event=lambda c: {"eventID": f"urn:uuid:void-{c.seq}"})
    assert roll.state is RollState.VOIDED
    report = reconcile(store, "A")
    assert report.voided_by_reason == {"operator": 1, "roll_voided": 3}
    assert report.counts == {"voided": 4}
    assert store.outbox_counts()  # three void events queued (code 2 was voided without one)
    with pytest.raises(StoreError, match="stays voided"):
        store.set_roll_state("A", RollState.ACTIVE, "found again")
    actions = [a.action for a in store.audit_log()]
    assert actions[:4] == ["roll_voided", "code_voided", "roll_active", "roll_locked"]


def test_a_batch_lock_is_recorded_with_its_reason(store: Store) -> None:
    batch = store.create_batch(Batch(None, MX, "L2"))
    with pytest.raises(StoreError, match="give a reason"):
        store.lock_batch(batch.id, " ")  # type: ignore[arg-type]
    locked = store.lock_batch(batch.id, "recall 2026-12", event={"eventID": "urn:uuid:lock-1"})  # type: ignore[arg-type]
    assert locked.locked and locked.lock_reason == "recall 2026-12"
    assert store.batch_lock_reason(batch.id) == "recall 2026-12"  # type: ignore[arg-type]
    assert store.batch(batch.id).locked  # type: ignore[arg-type]
    unlocked = store.unlock_batch(batch.id, "released")  # type: ignore[arg-type]
    assert not unlocked.locked and store.batch_lock_reason(batch.id) is None  # type: ignore[arg-type]
    assert [a.action for a in store.audit_log()[:2]] == ["batch_unlocked", "batch_locked"]


def _config(tmp_path: Path) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["database"]["path"] = str(tmp_path / "cli.db")
    data["devices"]["printer"]["template"] = str(DEFAULT_CONFIG.parent / "labels" / "stamp-60x40.zpl")
    data["devices"]["printer"]["fonts"] = {"E:VNSANS.TTF": str(DEFAULT_CONFIG.parent / "fonts" / "VNSANS.TTF")}
    data["products_file"] = str(DEFAULT_CONFIG.parent / "products.yaml")
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_rolls_and_batch_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    good = seq_manifest(tmp_path, "HUE-A", 1, 10)
    assert main(["rolls", "register", "-c", config, str(good)]) == 0
    overlap = seq_manifest(tmp_path, "HUE-B", 10, 12)
    broken = tmp_path / "broken.csv"
    broken.write_text("roll,product,codes\n", encoding="utf-8")
    assert main(["rolls", "register", "-c", config, str(overlap), str(broken)]) == 1
    err = capsys.readouterr().err
    assert f"{overlap}: line 4: code 'HUE0000010' (n=10) is already in roll 'HUE-A'" in err
    assert f"{broken}: line 1: wrong columns roll,product,codes" in err
    assert main(["rolls", "void-code", "-c", config, "HUE0000003", "--reason", "torn"]) == 0
    assert main(["rolls", "lock", "-c", config, "HUE-A", "--reason", "count check"]) == 0
    assert main(["rolls", "list", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "HUE-A  product 08938603001013  locked  10 codes: activated 0, voided 1, unused 9  (count check)" in out
    assert main(["rolls", "report", "-c", config, "HUE-A", "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "roll-HUE-A-reconciliation.csv").exists()
    assert "activated 0, voided 1, skipped 0, still unused 9" in capsys.readouterr().out
    with Store(tmp_path / "cli.db") as s:
        batch = s.create_batch(Batch(None, MX, "L9"))
    assert main(["batch", "lock", "-c", config, "--product", MX, "--lot", "L9", "--reason", "hold", "--recall"]) == 0
    assert main(["batch", "lock", "-c", config, "--batch", str(batch.id), "--reason", "again"]) == 1
    assert "already locked" in capsys.readouterr().err
    assert main(["batch", "unlock", "-c", config, "--batch", str(batch.id), "--reason", "released"]) == 0
    with Store(tmp_path / "cli.db") as s:
        kinds = [row for row in sqlite3.connect(s.path).execute("SELECT kind FROM outbox ORDER BY id")]
    assert [k for (k,) in kinds] == ["code_void", "batch_lock", "batch_unlock"]
