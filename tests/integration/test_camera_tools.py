"""`station camera check|record`: a technician checks a camera and records what it saw, then replays the recording
as a folder camera — against the camera simulator's MJPEG stream over a real socket."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.camera_tools import RecordError, check_camera, record_camera
from simulators.camera import CameraSimulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
URIS = [f"https://truyxuat.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH{n:03d}" for n in range(100)]


@pytest.fixture
def belt() -> Iterator[CameraSimulator]:
    """A camera over a slow belt, a label entering every 0.4 s until the test ends, each with its own serial (a
    content seen twice would be two reads of one code, however long the check happened to run)."""
    sim = CameraSimulator(width=800, height=600, fps=25, seed=3, delay=0.0, scale=1.0, speed=1500.0).start()
    stop = threading.Event()

    def feed() -> None:
        for uri in URIS:
            sim.inject("good", uri)
            if stop.wait(0.4):
                return

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield sim
    stop.set()
    thread.join(2)
    sim.stop()


def test_check_reports_what_the_camera_delivers_and_reads(belt: CameraSimulator) -> None:
    report = check_camera(belt.url, 2.5)
    assert report.ok and report.resolution == (800, 600)
    assert 15 < report.fps < 35 and report.frames >= 40
    assert report.decoded > 0 and report.with_code > 0
    assert set(report.reads) <= set(URIS) and len(report.reads) >= 3
    assert report.module_px and min(report.module_px) > 2.5
    assert sum(report.grades.values()) == len(report.reads)
    text = "\n".join(report.lines())
    assert "800x600" in text and "not ISO/IEC 15415" in text and "codes read:" in text


def test_a_recording_replays_as_a_folder_camera_and_reads_the_same_codes(belt: CameraSimulator,
                                                                         tmp_path: Path) -> None:
    folder = tmp_path / "belt"
    recorded = record_camera(belt.url, folder, seconds=2.0)
    files = sorted(folder.glob("frame_*.jpg"))
    assert recorded.frames == len(files) >= 30
    index = json.loads((folder / "frames.json").read_text())
    assert [f["file"] for f in index["frames"]] == [p.name for p in files]
    assert index["frames"][0]["t"] == 0 and index["frames"][-1]["t"] > 1.5
    assert recorded.replay_url.startswith(f"folder://{folder.resolve()}?fps=")
    replay = check_camera(recorded.replay_url, 10)
    # The replayed view, at the rate it was recorded, to its end, reads the labels the camera saw.
    assert replay.ok and replay.frames == recorded.frames and len(replay.reads) >= 3
    assert set(replay.reads) <= set(URIS)


def test_recording_never_overwrites_an_earlier_recording(belt: CameraSimulator, tmp_path: Path) -> None:
    folder = tmp_path / "belt"
    first = record_camera(belt.url, folder, frames=5)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(RecordError, match="already holds a recording"):
        record_camera(belt.url, folder, frames=5)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before and first.frames == 5


def test_the_cli_checks_a_camera_and_refuses_a_scanner_url(belt: CameraSimulator) -> None:
    done = subprocess.run([sys.executable, "-m", "app.cli", "camera", "check", "--url", belt.url, "--seconds", "1.5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "fps, 800x600" in done.stdout and "codes read:" in done.stdout
    refused = subprocess.run([sys.executable, "-m", "app.cli", "camera", "check", "--url", "serial:///dev/ttyACM0"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "is not a camera URL" in refused.stderr
    # A dead camera: the check says so and ends (a hang would end the test by the timeout; no time is measured).
    dead = subprocess.run([sys.executable, "-m", "app.cli", "camera", "check", "--url",
                           "http://127.0.0.1:9/stream.mjpg?timeout=0.5", "--seconds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dead.returncode == 1 and "no frames arrived" in dead.stdout
