"""A camera as a code reader: one worker thread decodes the newest frame and reports each distinct content once."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from drivers.camera import Camera, Frame
from drivers.decoder import Decoded, Decoder, QualityFigures, figures_in_frame
from drivers.reconnect import DeviceThread

__all__ = ["CameraReader", "CameraView", "ReaderStats", "OnRead"]

log = logging.getLogger(__name__)


class OnRead(Protocol):
    def __call__(self, text: str, raw: bytes, at: float, figures: QualityFigures | None, *,
                 repeat: bool = False) -> None: ...


@dataclass(frozen=True, slots=True)
class CameraView:
    """The last decoded frame and what was found in it, for a camera view (the UI draws the polygons)."""

    frame: Frame
    codes: tuple[Decoded, ...]
    decode_ms: float
    path: str = ""

    @property
    def boxes(self) -> list[tuple[tuple[float, float], ...]]:
        return [code.polygon for code in self.codes]


@dataclass(frozen=True, slots=True)
class ReaderStats:
    frames: int              # frames decoded
    skipped: int             # frames the camera delivered while the reader was busy (never decoded)
    hits: int                # frames with at least one code
    misses: int              # frames with none
    codes: int               # codes found, summed over frames
    reads: int               # distinct reads reported (first sightings)
    repeats: int             # the same content reported again after `dedupe_s` without it
    decode_ms_last: float
    decode_ms_median: float  # over the last `window` frames
    decode_ms_p95: float
    camera_fps: float
    reader_fps: float        # frames decoded per second, over the last `window` frames


class CameraReader:
    """Takes the newest frame from `camera`, decodes it with `decoder`, calls `on_read` per distinct content.

    A code seen in consecutive frames is one read. The same content seen again after `dedupe_s` seconds in
    which it was not seen is reported again with `repeat=True` (a label that came back, or a second label
    with the same content: the line decides which). `on_read(text, raw, at, figures, repeat=...)` is called on
    the worker thread with `at` the frame's monotonic time; it must be quick (hand the read to a queue). A
    decoder or callback error is logged and the reader carries on.
    """

    def __init__(self, camera: Camera, decoder: Decoder, on_read: OnRead | Callable[..., None] | None = None, *,
                 dedupe_s: float = 1.0, window: int = 300, remember: int = 10_000, name: str = "camera") -> None:
        if dedupe_s < 0:
            raise ValueError(f"dedupe_s must be >= 0, got {dedupe_s}")
        self.camera = camera
        self.decoder = decoder
        self.on_read = on_read
        self.dedupe_s = dedupe_s
        self.name = name
        self._remember = remember
        self._seen: OrderedDict[str, float] = OrderedDict()   # content -> last frame time it was seen
        self._times: deque[float] = deque(maxlen=window)
        self._done_at: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self._view: CameraView | None = None
        self._thread = DeviceThread(self._run, f"{name}-reader", logger=log)
        self._stop = self._thread.stopping
        self._tracking = hasattr(decoder, "tracker")
        self._last_error: str | None = None
        self.frames = self.skipped = self.hits = self.misses = self.codes = self.reads = self.repeats = 0
        self.last_seq = 0   # the camera's seq of the last frame the reader has finished with
        self._last_ms = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the worker (and the camera's grabber, if it is not running yet)."""
        if self._thread.started:
            raise RuntimeError(f"{self.name}: reader already started")
        if not self.camera.running:
            self.camera.start()
        self._thread.start()
        return self

    def stop(self, *, camera: bool = True, timeout: float = 5.0) -> None:
        """Stop the worker, and the camera too unless `camera=False`."""
        self._thread.stop(timeout)
        if camera:
            self.camera.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.running

    # -- what the technician screen and the benchmarks read ----------------------------------------------------

    def last_view(self) -> CameraView | None:
        with self._lock:
            return self._view

    def stats(self) -> ReaderStats:
        with self._lock:
            times = list(self._times)
            done = list(self._done_at)
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0
        reader_fps = (len(done) - 1) / (done[-1] - done[0]) if len(done) >= 2 and done[-1] > done[0] else 0.0
        return ReaderStats(self.frames, self.skipped, self.hits, self.misses, self.codes, self.reads, self.repeats,
                           self._last_ms, statistics.median(times) if times else 0.0, p95, self.camera.fps,
                           reader_fps)

    def forget(self) -> None:
        """Forget every content seen (a new batch: a label seen before is a fresh read again)."""
        with self._lock:
            self._seen.clear()

    # -- worker ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            frame = self.camera.wait_next(seq, timeout=0.2)
            if frame is None:
                if self.camera.ended:
                    return
                continue
            if seq and frame.seq > seq + 1:
                self.skipped += frame.seq - seq - 1
            seq = frame.seq
            self._process(frame)
            self.last_seq = seq

    def _process(self, frame: Frame) -> None:
        started = time.perf_counter()
        try:
            if self._tracking:
                codes = self.decoder.decode(frame.image, at=frame.at)  # type: ignore[call-arg]
            else:
                codes = self.decoder.decode(frame.image)
        except Exception as exc:
            message = f"{exc.__class__.__name__}: {exc}"
            if message != self._last_error:
                log.exception("%s: decoding a frame failed", self.name)
            self._last_error = message
            return
        self._last_error = None
        elapsed = (time.perf_counter() - started) * 1000
        self.frames += 1
        self._last_ms = elapsed
        if codes:
            self.hits += 1
            self.codes += len(codes)
        else:
            self.misses += 1
        path = getattr(getattr(self.decoder, "counts", None), "last_path", "")
        with self._lock:
            self._times.append(elapsed)
            self._done_at.append(time.monotonic())
            self._view = CameraView(frame, tuple(codes), elapsed, path)
        for code in codes:
            self._sighting(frame, code)

    def _sighting(self, frame: Frame, code: Decoded) -> None:
        with self._lock:
            last = self._seen.get(code.text)
            self._seen[code.text] = frame.at
            self._seen.move_to_end(code.text)
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        if last is not None and frame.at - last <= self.dedupe_s:
            return   # the same sighting, one more frame of it
        repeat = last is not None
        if repeat:
            self.repeats += 1
        else:
            self.reads += 1
        figures = code.figures
        if figures is None:
            figures = figures_in_frame(frame.image, code).figures
        if self.on_read is None:
            return
        try:
            self.on_read(code.text, code.raw, frame.at, figures, repeat=repeat)
        except Exception:
            log.exception("%s: read callback failed for %r", self.name, code.text)
