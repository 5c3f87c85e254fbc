"""`station camera check|record`: commissioning a verification camera.

`check` opens the camera as the line would (gray frames, the configured decoder with its region tracking) and reports
for a few seconds what it really delivers and what it reads: frame rate and resolution, frames decoded and skipped,
decode time, which paths found the codes, distinct codes read, pixels a module and the indicative print grades.

`record` writes what the camera saw into a folder (`frame_00000.jpg`…, and `frames.json` with each frame's time), so
the same view can be replayed later through `folder:///that/folder?fps=<rate>` as the verifier URL: on the
technician's bench, in a test, or to show a supplier a code that would not read.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from drivers.camera import CameraError, open_camera, shown_url
from drivers.camera_reader import CameraReader
from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.decoder import make_decoder
from station.quality import DISCLAIMER, grade

__all__ = ["CameraCheck", "CheckReport", "RecordReport", "check_camera", "record_camera"]


@dataclass
class CheckReport:
    url: str
    seconds: float
    frames: int = 0                   # frames the camera delivered
    fps: float = 0.0
    resolution: tuple[int, int] | None = None
    decoded: int = 0                  # frames the reader decoded
    skipped: int = 0                  # frames that came while the reader was busy
    with_code: int = 0
    reads: list[str] = field(default_factory=list)    # distinct contents, in the order first seen
    decode_ms_median: float = 0.0
    decode_ms_p95: float = 0.0
    paths: dict[str, int] = field(default_factory=dict)
    module_px: list[float] = field(default_factory=list)
    grades: Counter[str] = field(default_factory=Counter)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.frames > 0 and not self.error

    def lines(self) -> list[str]:
        out = [f"camera {self.url}: {self.seconds:.1f} s"]
        if self.error:
            out.append(f"  error: {self.error}")
        if not self.frames:
            out.append("  no frames arrived")
            return out
        width, height = self.resolution or (0, 0)
        out.append(f"  frames: {self.frames} at {self.fps:.1f} fps, {width}x{height}")
        out.append(f"  decoded: {self.decoded} frames ({self.skipped} skipped while the decoder was busy), "
                   f"{self.with_code} with a code; decode median {self.decode_ms_median:.2f} ms, "
                   f"p95 {self.decode_ms_p95:.2f} ms")
        if self.paths:
            out.append("  found by: " + ", ".join(f"{name} {n}" for name, n in self.paths.items()))
        out.append(f"  codes read: {len(self.reads)}")
        for text in self.reads[:10]:
            out.append(f"    {text}")
        if len(self.reads) > 10:
            out.append(f"    … and {len(self.reads) - 10} more")
        if self.module_px:
            out.append(f"  pixels a module: median {statistics.median(self.module_px):.1f} "
                       f"(min {min(self.module_px):.1f}; the decoder wants 2.5 or more)")
        if self.grades:
            out.append("  print grade: " + ", ".join(f"{g} {n}" for g, n in sorted(self.grades.items()))
                       + f" ({DISCLAIMER})")
        return out


def _numbers(figures: object) -> dict[str, float]:
    if figures is None:
        return {}
    return {k: float(v) for k, v in dataclasses.asdict(figures).items()  # type: ignore[call-overload]
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class CameraCheck:
    """`check_camera` in steps, for a caller that keeps the time itself: `start()`, let the camera deliver (a test
    moves `clock`, shared with its camera simulator, one frame at a time), then `finish()` for the report.
    `caught_up` says when the reader has finished with every frame the camera delivered."""

    def __init__(self, url: str, *, decoder: str = "zxing", progress: Callable[[str], None] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.report = CheckReport(url=shown_url(url), seconds=0.0)
        self.clock = clock
        self._progress = progress
        self._lock = threading.Lock()
        self.camera = open_camera(url, gray=True, clock=clock)
        self.tracking = make_decoder(decoder)
        self.reader = CameraReader(self.camera, self.tracking, self._on_read, dedupe_s=1.0, name="check")
        self.started = clock.monotonic()

    def start(self) -> CameraCheck:
        self.started = self.clock.monotonic()
        self.reader.start()
        return self

    @property
    def caught_up(self) -> bool:
        """The reader has finished with the newest frame the camera delivered, or has ended with the camera."""
        latest = self.camera.latest()
        return latest is None or self.reader.last_seq >= latest.seq or not self.reader.running

    def finish(self, timeout: float = 10.0) -> CheckReport:
        """Let the reader finish with the frame the camera has now (a file or folder's last one), stop, report.
        `timeout` only bounds a decoder that hangs."""
        report, camera, reader = self.report, self.camera, self.reader
        try:
            latest = camera.latest()
            target = latest.seq if latest is not None else 0
            deadline = time.monotonic() + timeout
            while reader.running and reader.last_seq < target and time.monotonic() < deadline:
                time.sleep(0.01)   # a look now and then at the reader's progress, on the machine's clock
            stats = reader.stats()
            report.fps, report.resolution = camera.fps, camera.resolution
            report.frames = camera.frames
            report.error = "" if camera.frames else (camera.last_error or "")
        finally:
            reader.stop()
        report.seconds = self.clock.monotonic() - self.started
        report.decoded, report.skipped, report.with_code = stats.frames, stats.skipped, stats.hits
        report.decode_ms_median, report.decode_ms_p95 = stats.decode_ms_median, stats.decode_ms_p95
        counts = getattr(self.tracking, "counts", None)
        if counts is not None:
            report.paths = {name: hits for name, hits in (("tracked region", counts.roi_hits),
                                                          ("entry strip", counts.entry_hits),
                                                          ("full frame", counts.full_hits),
                                                          ("full frame, native size", counts.native_hits)) if hits}
        return report

    def _on_read(self, text: str, raw: bytes, at: float, figures: object, *, repeat: bool = False) -> None:
        report = self.report
        numbers = _numbers(figures)
        with self._lock:
            if text not in report.reads:
                report.reads.append(text)
            if numbers.get("module_px"):
                report.module_px.append(numbers["module_px"])
            letter = grade(numbers) if numbers else None
            if letter:
                report.grades[letter] += 1
        if self._progress is not None:
            self._progress(f"  read {text[:100]}" + (f" (grade {letter})" if letter else ""))


def check_camera(url: str, seconds: float = 10.0, *, decoder: str = "zxing",
                 progress: Callable[[str], None] | None = None, clock: Clock = SYSTEM_CLOCK) -> CheckReport:
    """Open `url` as the verifier does, decode for `seconds` of `clock` (or until a file or folder ends), and
    report what came and what was read."""
    check = CameraCheck(url, decoder=decoder, progress=progress, clock=clock)
    check.report.seconds = seconds
    check.start()
    deadline = check.started + seconds
    never = threading.Event()
    while (remaining := deadline - clock.monotonic()) > 0 and not check.camera.ended:
        clock.wait_event(never, min(remaining, 0.05))   # `ended` is looked at now and then
    return check.finish()


@dataclass
class RecordReport:
    folder: Path
    frames: int
    skipped: int          # frames the camera delivered while the last one was being written
    seconds: float
    fps: float            # frames written a second

    @property
    def replay_url(self) -> str:
        return f"folder://{self.folder.resolve()}?fps={max(1.0, round(self.fps, 1)):g}"

    def lines(self) -> list[str]:
        return [f"recorded {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} a second, {self.skipped} "
                f"skipped while writing) to {self.folder}",
                f"replay it as the verifier: STATION_DEVICES__VERIFIER__URL='{self.replay_url}'"]


class RecordError(Exception):
    pass


def record_camera(url: str, folder: Path, *, seconds: float | None = 10.0, frames: int | None = None,
                  quality: int = 92, progress: Callable[[str], None] | None = None,
                  clock: Clock = SYSTEM_CLOCK) -> RecordReport:
    """Write the camera's frames to `folder` as JPEG with `frames.json`; stops after `seconds` (of `clock`, which
    also stamps the frames) or `frames`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RecordError(f"{folder} is a file, not a folder")
    if folder.exists() and any(folder.glob("frame_*.jpg")):
        raise RecordError(f"{folder} already holds a recording (frame_*.jpg): choose another folder, "
                          "nothing was overwritten")
    if seconds is None and frames is None:
        raise RecordError("give --seconds or --frames")
    folder.mkdir(parents=True, exist_ok=True)
    camera = open_camera(url, gray=False, clock=clock)
    camera.start()
    written: list[dict[str, Any]] = []
    skipped = 0
    first_at: float | None = None
    started = clock.monotonic()
    try:
        if not camera.wait_connected(10):
            raise RecordError(f"{shown_url(url)}: no connection within 10 s ({camera.last_error or 'no answer'})")
        seq = 0
        while True:
            if frames is not None and len(written) >= frames:
                break
            if seconds is not None and clock.monotonic() - started >= seconds:
                break
            frame = camera.wait_next(seq, timeout=1.0)
            if frame is None:
                if camera.ended:
                    break
                continue
            if seq and frame.seq > seq + 1:
                skipped += frame.seq - seq - 1
            seq = frame.seq
            first_at = frame.at if first_at is None else first_at
            name = f"frame_{len(written):05d}.jpg"
            if not cv2.imwrite(str(folder / name), frame.image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise RecordError(f"cannot write {folder / name}")
            written.append({"file": name, "t": round(frame.at - first_at, 4), "seq": frame.seq})
            if progress is not None and len(written) % 50 == 0:
                progress(f"  {len(written)} frames")
    finally:
        camera.stop()
        if written:
            (folder / "frames.json").write_text(json.dumps({
                "camera": shown_url(url), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "frames": written,
            }, indent=1), encoding="utf-8")
    span = written[-1]["t"] if len(written) > 1 else 0.0
    fps = (len(written) - 1) / span if span > 0 else float(len(written))
    return RecordReport(folder, len(written), skipped, clock.monotonic() - started, fps)


def camera_url_of(config_url: str | None, given: str | None) -> str:
    """The URL to open: the one given, else the configured verifier if that is a camera."""
    from station.config import CAMERA_SCHEMES

    url = given or config_url or ""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in CAMERA_SCHEMES:
        raise CameraError(f"{shown_url(url)!r} is not a camera URL ({', '.join(sorted(CAMERA_SCHEMES))}); "
                          "give one with --url, or set devices.verifier.url to the camera")
    return url
