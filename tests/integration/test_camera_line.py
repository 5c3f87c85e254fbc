"""The camera-verified line: photo-eye triggers and a reject gate from the conveyor simulator, labels seen by the
camera simulator over MJPEG, decoded by the station — every piece on its real wire protocol."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runtime import RunOptions, Station
from simulators.camera import CameraSimulator
from simulators.conveyor import ConveyorSimulator
from simulators.printer import PrinterSimulator
from station.domain import DeliveryState
from station.engine import AlarmRaised
from tests.integration.central_fixtures import Central
from tests.integration.line_harness import write_config
from tests.integration.mqtt_fixtures import broker_url, unique, wait_until  # noqa: F401  (fixture)

RATE = 6.0  # items/s: labels 0.7 × 480 dots wide, 3,200 px/s belt → 530 px between labels, 16 frames each


class CameraLine:
    def __init__(self, folder: Path, broker: str, smudge_rate: float = 0.0) -> None:
        self.printer = PrinterSimulator(port=0).start()
        self.camera = CameraSimulator(fps=30, port=0, seed=11, delay=0.05, speed=3200, scale=0.7,
                                      max_rotation=4, smudge_rate=smudge_rate).start()
        self.printer.add_listener(self.camera.on_label)
        self.conveyor = ConveyorSimulator(port=0, rate=RATE, seed=5, paused=True).start()
        prefix = unique("cam")
        self.central = Central(broker, prefix, f"sqlite:///{folder / 'central.db'}").start()
        self.config_path = write_config(folder, self.printer.url, self.camera.url, broker, prefix, {
            "devices.line_io.url": self.conveyor.url,
            "line.trigger": "photo_eye",
            "line.print_ahead": 16,
            "line.verify_timeout_s": 2.0,
            "line.max_consecutive_failures": 60,
            "line.foreign_stamp": "warn",
        })

    def close(self) -> None:
        self.central.close()
        self.conveyor.stop()
        self.camera.stop()
        self.printer.stop()


@pytest.fixture
def camera_line(tmp_path: Path, broker_url: str, request: pytest.FixtureRequest) -> Iterator[CameraLine]:  # noqa: F811
    line = CameraLine(tmp_path, broker_url, getattr(request, "param", 0.0))
    yield line
    line.close()


def run(line: CameraLine, count: int) -> Station:
    from station.config import load_config

    station = Station(load_config(line.config_path), RunOptions(auto_resume=True))
    station.start()
    assert station.line_io.wait_healthy(5), station.line_io.last_error
    batch = station.open_batch(station.product("08938603002027"), "NM2611A")
    station.engine.start(batch.id, count)
    line.conveyor.resume()
    try:
        assert station.engine.wait(90), f"run did not finish: {station.engine.summary}"
    finally:
        line.conveyor.pause()
    return station


def test_camera_verifies_each_photo_eye_item_and_grades_print_quality(camera_line: CameraLine) -> None:
    station = run(camera_line, 40)
    try:
        summary = station.engine.refresh_delivery()
        assert summary.activated == 40
        # Every item the photo-eye saw got a stamp or was rejected: none left the line unaccounted for.
        assert summary.printed + summary.rejected >= summary.activated
        with sqlite3.connect(station.config.database.path) as conn:
            graded = [(g, json.loads(q)) for g, q in
                      conn.execute("SELECT quality_grade, quality FROM stamps WHERE state = 'activated'")]
        assert len(graded) == 40 and all(g in "ABCDF" for g, _ in graded)
        assert all(q and q["module_px"] > 0 and 0 < q["contrast"] <= 1 for _, q in graded)
        assert sum(summary.quality.values()) == 40
        assert station.relay.wait_drained(30)
        assert station.store.outbox_counts()[DeliveryState.CONFIRMED] >= 40
    finally:
        station.stop()


@pytest.mark.parametrize("camera_line", [0.15], indirect=True)
def test_smudged_stamps_are_voided_and_their_items_rejected_by_the_gate(camera_line: CameraLine) -> None:
    station = run(camera_line, 30)
    alarms: list[str] = []
    station.engine.add_listener(lambda e: isinstance(e, AlarmRaised) and alarms.append(e.alarm.code))
    try:
        summary = station.engine.summary
        assert summary.activated == 30
        voided = summary.voided_total
        assert voided > 0, "one label in seven was smudged: some must fail verification"
        # The reject gate fired once for each voided stamp's item, and the conveyor recorded those items.
        assert wait_until(lambda: len(camera_line.conveyor.rejected) >= summary.rejected, 5)
        assert summary.rejected >= voided
        assert set(camera_line.conveyor.rejected) <= {item.seq for item in camera_line.conveyor.items}
    finally:
        station.stop()


def test_a_stray_code_in_view_is_recorded_and_alarmed_but_voids_no_stamp(camera_line: CameraLine) -> None:
    # A camera reads whatever is in view: a QR code that is no stamp (a sticker, a phone) matches no stamp in
    # flight, and since a camera's read is not the next item's, no stamp is blamed for it.
    from station.config import load_config

    station = Station(load_config(camera_line.config_path), RunOptions(auto_resume=True))
    alarms: list[str] = []
    station.engine.add_listener(lambda e: isinstance(e, AlarmRaised) and alarms.append(e.alarm.code))
    station.start()
    try:
        assert station.line_io.wait_healthy(5), station.line_io.last_error
        batch = station.open_batch(station.product("08938603002027"), "NM2611B")
        station.engine.start(batch.id, 20)
        camera_line.conveyor.resume()
        assert wait_until(lambda: station.engine.summary.activated >= 3, 20)
        camera_line.camera.inject("good", "KHUYEN-MAI-TET-2027")
        assert station.engine.wait(90)
        camera_line.conveyor.pause()
        summary = station.engine.summary
        assert summary.activated == 20 and "wrong_content" not in summary.voided
        assert wait_until(lambda: "stray_read" in alarms, 5)
        with sqlite3.connect(station.config.database.path) as conn:
            strays = conn.execute("SELECT outcome, text, stamp_id FROM scans WHERE text = ?",
                                  ("KHUYEN-MAI-TET-2027",)).fetchall()
        assert strays and all(outcome == "stray" and stamp_id is None for outcome, _, stamp_id in strays)
    finally:
        camera_line.conveyor.pause()
        station.stop()
