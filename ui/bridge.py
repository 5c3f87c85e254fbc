"""The one way between the station's threads and the GUI thread.

* ``Worker`` runs every blocking call (database, devices, broker, PIN hashing) on background lanes and hands the
  result (or the exception) back to the GUI thread through one queued signal: the Anki ``run_on_main`` idea.
* ``StationBridge`` owns the ``app.runtime.Station``: it builds and starts it on the worker, turns the line
  engine's events (called on the engine's thread) into queued Qt signals, taps the verification scanner's raw
  lines for the technician, and every second reads a ``Snapshot`` (``app.snapshot``) of counters, device health
  and recent stamps on the worker for the screens to draw.

Nothing here is called with a Store, a device or the broker on the GUI thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from app.runtime import RunOptions, Station
from app.snapshot import read_snapshot
from station.config import StationConfig
from station.domain import Batch, Product
from station.engine import AlarmRaised, LineEvent, LineState, RunFinished, RunSummary, StampDecided, StateChanged
from ui.qt import QObject, Qt, QTimer, Signal, is_deleted

log = logging.getLogger(__name__)

T = TypeVar("T")

PRINTED, PREPRINTED = "printed", "preprinted"    # the line the station runs (`station run --mode`)

DB = "db"            # one thread: every Store call, in order
DEVICE = "device"    # device and broker checks, test prints, PIN hashing: may take seconds, never hold up the db lane


class Worker(QObject):
    """Runs callables off the GUI thread and calls ``done(result)`` / ``failed(exc)`` back on the GUI thread."""

    _deliver = Signal(object)
    failed = Signal(str)          # an error nobody handled: the screens show it in their status line

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lanes = {
            DB: ThreadPoolExecutor(max_workers=1, thread_name_prefix="ui-db"),
            DEVICE: ThreadPoolExecutor(max_workers=2, thread_name_prefix="ui-device"),
        }
        self._busy: set[str] = set()
        self._closed = False
        self._deliver.connect(self._on_main, Qt.QueuedConnection)

    def submit(self, fn: Callable[[], T], *, done: Callable[[T], None] | None = None,
               failed: Callable[[BaseException], None] | None = None, lane: str = DB,
               owner: QObject | None = None, key: str | None = None) -> Future[None] | None:
        """Run ``fn`` on ``lane``. ``owner``: skip the callbacks if that widget is gone by then. ``key``: skip this
        call altogether while an earlier one with the same key has not finished (periodic refreshes)."""
        if self._closed:
            return None
        if key is not None:
            if key in self._busy:
                return None
            self._busy.add(key)

        def job() -> None:
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001  (handed to the GUI thread, which decides)
                self._deliver.emit((failed, exc, owner, key, True))
                return
            self._deliver.emit((done, result, owner, key, False))

        return self._lanes[lane].submit(job)

    def _on_main(self, item: tuple[Any, Any, QObject | None, str | None, bool]) -> None:
        callback, value, owner, key, is_error = item
        if key is not None:
            self._busy.discard(key)
        if owner is not None and is_deleted(owner):
            return
        if callback is None:
            if is_error:
                log.error("background call failed: %s", value, exc_info=value)
                self.failed.emit(str(value))
            return
        try:
            callback(value)
        except Exception:
            log.exception("callback on the GUI thread failed")

    def call_and_wait(self, fn: Callable[[], T], lane: str = DB, timeout: float | None = None) -> T:
        """For shutdown only: run on the lane and block until it is done (the GUI is closing anyway)."""
        return self._lanes[lane].submit(fn).result(timeout)

    def shutdown(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            lane.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class RawLine:
    """One line the verification scanner sent, as received, for the technician's live view."""

    at: float
    raw: bytes
    text: str | None
    refused: str | None


def stop_station(station: Station) -> RunSummary | None:
    """Stop the line (the stamps in flight get their verification window), read its summary with the delivery
    counts, then stop the station (on the worker's db lane)."""
    line = station.line
    summary = None
    try:
        if line.state is not LineState.STOPPED:
            line.stop()
            line.wait(station.config.line.verify_timeout_s + 5)
        if line.summary.started_at:
            summary = line.refresh_delivery()
    finally:
        station.stop()
    return summary


class StationBridge(QObject):
    """Owns the running station for the screens; every signal arrives on the GUI thread."""

    ready = Signal(object)                 # Station: built, devices opened, delivery started
    startFailed = Signal(str)
    stateChanged = Signal(str, str)        # LineState value, reason
    stampDecided = Signal(object)          # Stamp
    alarmRaised = Signal(object)           # Alarm
    runFinished = Signal(object)           # RunSummary
    snapshotReady = Signal(object)         # Snapshot
    rawScan = Signal(object)               # RawLine
    batchChanged = Signal(object)          # Batch | None: the batch the operator chose

    def __init__(self, config: StationConfig, worker: Worker, *, snapshot_ms: int = 1000,
                 options: RunOptions = RunOptions(), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.worker = worker
        self.options = options
        self.station: Station | None = None
        self.batch: Batch | None = None
        self.product: Product | None = None
        self._generation = itertools.count(1)
        self._current_generation = 0
        self._timer = QTimer(self)
        self._timer.setInterval(snapshot_ms)
        self._timer.timeout.connect(self.refresh)
        self._closing = False
        self.mode = PRINTED
        self.last_summary: RunSummary | None = None

    # -- life -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Build and start the station on the worker; ``ready`` or ``startFailed`` follows."""
        config, options, mode = self.config, self.options, self.mode
        generation = next(self._generation)

        def build() -> Station:
            station = Station(config, options)
            if mode == PREPRINTED:
                station.enable_preprinted()      # as `station run --mode preprinted`: the verifier feeds the rolls
            try:
                station.start()
            except Exception:
                station.stop()
                raise
            return station

        def done(station: Station) -> None:
            self._current_generation = generation
            self._attach(station, generation)
            self.station = station
            self._timer.start()
            self.ready.emit(station)
            self.refresh()

        self.worker.submit(build, done=done, failed=lambda exc: self.startFailed.emit(str(exc)))

    def _attach(self, station: Station, generation: int) -> None:
        def on_event(event: LineEvent) -> None:
            # Called on the engine's thread: only emit (queued to the GUI thread), never touch widgets here.
            if generation != self._current_generation or self._closing:
                return
            if isinstance(event, StampDecided):
                self.stampDecided.emit(event.stamp)
            elif isinstance(event, StateChanged):
                self.stateChanged.emit(event.state.value, event.reason)
            elif isinstance(event, AlarmRaised):
                announced.add(id(event.alarm))
                self.alarmRaised.emit(event.alarm)
            elif isinstance(event, RunFinished):
                self.runFinished.emit(event.summary)

        announced: set[int] = set()
        station.line.add_listener(on_event)     # the printed line's engine, or the pre-printed line
        # Raised while the station started, before anyone listened (a broker refusing the login answers at once).
        for alarm in station.line.alarms:
            if id(alarm) not in announced:
                self.alarmRaised.emit(alarm)
        self._tap_scanner(station, generation)

    def _tap_scanner(self, station: Station, generation: int) -> None:
        """Copy every line the verification scanner sends to ``rawScan`` (the engine still gets it first)."""
        scanner = getattr(station.verifier, "scanner", None)
        if scanner is None:  # a camera verifier: its view is not a stream of raw lines
            return
        on_read, on_refused = scanner.on_read, scanner.on_refused

        def tapped_read(event: Any) -> None:
            if on_read is not None:
                on_read(event)
            if generation == self._current_generation:
                self.rawScan.emit(RawLine(time.time(), event.raw, event.text, None))

        def tapped_refused(event: Any) -> None:
            if on_refused is not None:
                on_refused(event)
            if generation == self._current_generation:
                self.rawScan.emit(RawLine(time.time(), event.raw, None, str(event.reason)))

        scanner.on_read, scanner.on_refused = tapped_read, tapped_refused

    def restart(self, config: StationConfig, done: Callable[[], None] | None = None,
                failed: Callable[[BaseException], None] | None = None) -> None:
        """Apply a saved configuration: stop the station (the line must be stopped) and build it again."""
        old = self.station
        self._timer.stop()
        self.station = None
        self._current_generation = 0
        self.config = config

        def stop_old() -> None:
            if old is not None:
                old.stop()

        def after_stop(_: None) -> None:
            self.start()
            if done is not None:
                self.ready.connect(self._once(done))

        self.worker.submit(stop_old, done=after_stop, failed=failed)

    def set_mode(self, mode: str, done: Callable[[], None] | None = None,
                 failed: Callable[[BaseException], None] | None = None) -> None:
        """Run the printed line or the pre-printed one: the station is built again (the line must be stopped)."""
        if mode not in (PRINTED, PREPRINTED):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == self.mode:
            return
        if self.state is not LineState.STOPPED:
            raise RuntimeError("stop the line before changing the mode")
        self.mode = mode
        self.restart(self.config, done=done, failed=failed)

    @staticmethod
    def _once(fn: Callable[[], None]) -> Callable[[Any], None]:
        fired = threading.Event()

        def call(_: Any) -> None:
            if not fired.is_set():
                fired.set()
                fn()

        return call

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the line and the station, waiting for it (called once, when the program closes); the run's summary
        is kept in ``last_summary`` (None if the line never ran)."""
        self._closing = True
        self._timer.stop()
        station, self.station = self.station, None
        if station is not None:
            try:
                self.last_summary = self.worker.call_and_wait(lambda: stop_station(station), timeout=timeout)
            except Exception:
                log.exception("stopping the station failed")
        self.worker.shutdown()

    # -- operator commands ------------------------------------------------------------------------------

    @property
    def state(self) -> LineState:
        return self.station.line.state if self.station is not None else LineState.STOPPED

    def select_batch(self, product: Product | None, batch: Batch | None) -> None:
        self.product, self.batch = product, batch
        self.batchChanged.emit(batch)
        self.refresh()

    def start_line(self, count: int | None, *, failed: Callable[[BaseException], None] | None = None) -> None:
        station, batch = self.station, self.batch
        if station is None or batch is None or batch.id is None:
            return
        batch_id = batch.id
        self.worker.submit(lambda: station.line.start(batch_id, count), failed=failed, done=lambda _: self.refresh())

    def pause(self) -> None:
        if self.station is not None:
            self.station.line.pause()      # a queue put: returns at once

    def resume(self) -> None:
        if self.station is not None:
            self.station.line.resume()

    def stop_line(self) -> None:
        if self.station is not None:
            self.station.line.stop()

    def acknowledge_alarms(self) -> None:
        if self.station is not None:
            self.station.line.acknowledge_alarms()

    def call(self, fn: Callable[[Station], T], *, done: Callable[[T], None] | None = None,
             failed: Callable[[BaseException], None] | None = None, lane: str = DB,
             owner: QObject | None = None, key: str | None = None) -> None:
        """Run ``fn(station)`` on the worker (nothing happens before the station is ready)."""
        station = self.station
        if station is None:
            if failed is not None:
                failed(RuntimeError("the station is still starting"))
            return
        self.worker.submit(lambda: fn(station), done=done, failed=failed, lane=lane, owner=owner, key=key)

    def refresh(self) -> None:
        """Read a new snapshot on the worker (skipped while the last one is still being read)."""
        station = self.station
        if station is None or self._closing:
            return
        batch_id = self.batch.id if self.batch is not None else None
        gtin = self.product.gtin if self.product is not None else None
        self.worker.submit(lambda: read_snapshot(station, batch_id, gtin=gtin), done=self.snapshotReady.emit,
                           key="snapshot", failed=lambda exc: log.warning("snapshot failed: %s", exc))
