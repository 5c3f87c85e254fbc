"""`station camera check|record`: a technician checks a camera and records what it saw, then replays the recording
as a folder camera — against the camera simulator's MJPEG stream over a real socket."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.camera_tools import CameraCheck, CheckReport, RecordError, RecordReport, check_camera, record_camera
from simulators.camera import CameraSimulator
from tests.clock import ManualClock
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
URIS = [f"https://truyxuat.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH{n:03d}" for n in range(100)]
PERIOD = 0.04 + 1e-6   # a frame at 25 fps, and a microsecond: no float leaves the frame due for the next step


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


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(threads=1)   # the camera simulator's frame thread; the driver waits on its socket


@pytest.fixture
def belt_on_the_clock(clock: ManualClock) -> Iterator[CameraSimulator]:
    """The same camera and belt on a clock the test moves a frame at a time (see `frames_pass`)."""
    sim = CameraSimulator(width=800, height=600, fps=25, seed=3, delay=0.0, scale=1.0, speed=1500.0,
                          clock=clock).start()
    yield sim
    sim.stop()


def frames_pass(clock: ManualClock, sim: CameraSimulator | None, count: int, taken: Callable[[int], bool]) -> None:
    """`count` frame periods pass, one at a time; a label enters the view every tenth frame (every 0.4 s, each
    with its own serial), and each frame is taken by the consumer (`taken(n)`, n from 1) before the next comes."""
    for n in range(1, count + 1):
        if sim is not None and n % 10 == 1:
            sim.inject("good", URIS[n // 10])
        clock.advance(PERIOD)
        assert wait_until(lambda: taken(n), 10), f"frame {n} was not taken"


def test_check_reports_what_the_camera_delivers_and_reads(belt_on_the_clock: CameraSimulator,
                                                         clock: ManualClock) -> None:
    check = CameraCheck(belt_on_the_clock.url, clock=clock).start()
    camera = check.camera
    assert wait_until(lambda: camera.frames == 1 and check.caught_up, 10)   # the frame shown when it connected
    frames_pass(clock, belt_on_the_clock, 60, lambda n: camera.frames == 1 + n and check.caught_up)
    report = check.finish()
    assert report.ok and report.resolution == (800, 600)
    assert report.frames == 61 and report.fps == pytest.approx(1 / PERIOD, rel=1e-4)
    assert report.seconds == pytest.approx(60 * PERIOD, rel=1e-6)
    # Every frame was decoded (the reader finished each before the next came), each label read once.
    assert (report.decoded, report.skipped) == (61, 0) and report.with_code > 0
    assert report.reads == URIS[:6]             # the six labels that entered, in turn
    assert report.module_px and min(report.module_px) > 2.5
    assert sum(report.grades.values()) == len(report.reads)
    text = "\n".join(report.lines())
    assert "800x600" in text and "not ISO/IEC 15415" in text and "codes read:" in text


def test_a_recording_replays_as_a_folder_camera_and_reads_the_same_codes(belt_on_the_clock: CameraSimulator,
                                                                         clock: ManualClock,
                                                                         tmp_path: Path) -> None:
    folder = tmp_path / "belt"
    done: list[RecordReport] = []
    # 1.98 s of the clock: the frame at 1.96 s is the last; the clock then passes the end before 2.00 s's is due.
    recorder = threading.Thread(target=lambda: done.append(record_camera(belt_on_the_clock.url, folder,
                                                                         seconds=1.98, clock=clock)))
    recorder.start()
    try:
        assert wait_until(lambda: (folder / "frame_00000.jpg").exists(), 10)
        frames_pass(clock, belt_on_the_clock, 49, lambda n: (folder / f"frame_{n:05d}.jpg").exists())
        clock.advance(0.03)
    finally:
        recorder.join(15)
    recorded = done[0]
    files = sorted(folder.glob("frame_*.jpg"))
    assert recorded.frames == len(files) == 50 and recorded.skipped == 0
    index = json.loads((folder / "frames.json").read_text())
    assert [f["file"] for f in index["frames"]] == [p.name for p in files]
    assert [f["t"] for f in index["frames"]] == [round(n * PERIOD, 4) for n in range(50)]
    assert recorded.replay_url == f"folder://{folder.resolve()}?fps=25"
    # The replayed view, at the rate it was recorded, to its end, reads the labels the camera saw: on a clock of
    # its own, each frame decoded before the next.
    replay_clock = ManualClock(threads=1)   # the folder camera's replay
    check = CameraCheck(recorded.replay_url, clock=replay_clock).start()
    frames_pass(replay_clock, None, 50, lambda n: check.camera.frames == n and check.caught_up)
    replay_clock.advance(PERIOD)
    assert wait_until(lambda: check.camera.ended, 10)
    replay = check.finish()
    assert replay.ok and replay.frames == recorded.frames and (replay.decoded, replay.skipped) == (50, 0)
    assert replay.reads == URIS[:5]             # the five that entered while it recorded


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


def test_the_check_lasts_its_seconds_on_the_cameras_clock(belt_on_the_clock: CameraSimulator,
                                                          clock: ManualClock) -> None:
    clock.threads = 2   # the simulator's frame thread and the check's own wait for its end
    done: list[CheckReport] = []
    checking = threading.Thread(target=lambda: done.append(check_camera(belt_on_the_clock.url, 1.0, clock=clock)))
    checking.start()
    try:
        for _ in range(24):
            clock.advance(PERIOD)
        assert checking.is_alive() and not done     # 0.96 s: it looked at the time and waits on
        clock.advance(0.05)
    finally:
        checking.join(15)
    report = done[0]
    assert report.ok and report.seconds == pytest.approx(24 * PERIOD + 0.05, rel=1e-6)
