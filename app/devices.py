"""Adapters from drivers to the station's ports: the printer service, the verification scanner and the publisher.

About 420 lines in one module: the three adapters are the one place where a driver's errors and threads become a
port's answers, and the printer service (status polling, fonts, stored format), the largest, is most of it.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from drivers.errors import DeviceError
from drivers.mqtt import ConnectFailed as MqttConnectFailed
from drivers.mqtt import Connected as MqttConnected
from drivers.mqtt import Disconnected as MqttDisconnected
from drivers.mqtt import MessageReceived as MqttMessage
from drivers.mqtt import MqttClient, MqttError
from drivers.mqtt import PublishAcked as MqttPublishAcked
from drivers.scanner import ScanRead, ScanRefused, SerialScanner
from drivers.transport import open_transport
from drivers.zebra.printer import PrinterState, PrinterStatus, ZebraPrinter
from drivers.zebra.zpl import LabelTemplate, download_font
from station.config import VerifierConfig
from station.ports import (
    ConnectFailed,
    Connected,
    Disconnected,
    MessageReceived,
    PrinterCondition,
    PrinterHealth,
    PrinterPortError,
    PublishAcked,
    PublisherError,
    PublisherRecord,
    VerificationRead,
)

log = logging.getLogger(__name__)


# A full receive buffer is flow control (TCP pushes back until the printer catches up), not a reason to stop.
_NOT_A_FAULT = {"buffer_full"}


def _health(status: PrinterStatus) -> PrinterHealth:
    at = time.monotonic()
    unprinted = status.host_status.formats_in_buffer if status.host_status is not None else None
    faults = tuple(str(f) for f in status.faults)
    if status.state is PrinterState.FAULTED and faults and set(faults) <= _NOT_A_FAULT:
        return PrinterHealth(PrinterCondition.READY, (), f"busy: {status.detail}", unprinted, at)
    if status.state is PrinterState.READY:
        condition = PrinterCondition.READY if status.known else PrinterCondition.UNKNOWN
    elif status.state is PrinterState.FAULTED:
        condition = PrinterCondition.FAULTED
    else:
        condition = PrinterCondition.UNREACHABLE
    return PrinterHealth(condition, tuple(str(f) for f in status.faults), status.detail, unprinted, at)


class PrinterService:
    """A Zebra printer as the engine's LabelPrinter: template rendering, sending, and a status poll thread.

    The poll keeps the latest health so the engine can look at it on every loop for free. Faults are logged once
    when they start and once when they clear, not on every poll.
    """

    def __init__(self, url: str, template: Path, *, status_interval_s: float = 0.5,
                 status_timeout_s: float = 1.0, stored_format: bool = True,
                 fonts: Mapping[str, Path] | None = None) -> None:
        self.url = url
        self.template = LabelTemplate.load(template)
        self.stored_format = stored_format
        self._format_sent = False
        # The TrueType fonts the labels print with, by their name on the printer: checked (^HW) on every new
        # connection, as the stored format is re-sent then, and downloaded (~DY) only when the printer lacks them.
        self.fonts = {name: Path(path) for name, path in (fonts or {}).items()}
        self._font_data: dict[str, bytes] = {}
        self._fonts_ready = not self.fonts
        self.font_downloads: list[tuple[str, int, float]] = []   # (name, bytes, seconds) of each download
        self._printer = ZebraPrinter(open_transport(url), status_timeout=status_timeout_s)
        self._interval = status_interval_s
        self._health = PrinterHealth(PrinterCondition.UNKNOWN, (), "not polled yet")
        self._last_count: tuple[int, float] | None = None   # formats in buffer at the last ~HS reply, and when
        self._stop = threading.Event()
        self._poll_now = threading.Event()
        self._thread: threading.Thread | None = None
        self._open = False
        self._lock = threading.Lock()
        self.last_status: PrinterStatus | None = None
        self.labels_sent = 0
        self.bytes_sent = 0

    def start(self) -> None:
        self._ensure_open()
        self.poll()
        if self._open and self.fonts:
            # Before the line runs: on a serial line a download takes a minute or more (74 KB at 9600 baud).
            try:
                self.ensure_fonts()
            except (DeviceError, PrinterPortError) as exc:
                log.warning("printer %s: fonts not ready (%s); trying again before the first label", self.url, exc)
                self._reset()
        self._thread = threading.Thread(target=self._poll_loop, name="printer-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poll_now.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self._printer.close()
            self._open = False

    def _ensure_open(self) -> bool:
        with self._lock:
            if self._open:
                return True
            try:
                self._printer.open()
            except DeviceError as exc:
                self._set_health(PrinterHealth(PrinterCondition.UNREACHABLE, (), str(exc)))
                return False
            self._open = True
            # A new connection may be a printer that was switched off: its RAM lost the stored format, and a
            # replaced or reset printer has no downloaded font either.
            self._format_sent = False
            self._fonts_ready = not self.fonts
            return True

    def _reset(self) -> None:
        with self._lock:
            self._printer.close()
            self._open = False

    def poll(self) -> PrinterHealth:
        if not self._ensure_open():
            return self._health
        try:
            status = self._printer.query_status()
        except DeviceError as exc:
            self._reset()
            self._set_health(PrinterHealth(PrinterCondition.UNREACHABLE, (), str(exc)))
            return self._health
        self.last_status = status
        self._set_health(_health(status))
        if status.state is PrinterState.UNREACHABLE:
            self._reset()  # a fresh connection next time: the old one may be half-dead
        return self._health

    def request_status(self) -> None:
        """Poll now instead of at the next interval (the engine asks when a stamp times out that may still be in
        the printer); the answer is in health() with its checked_at."""
        self._poll_now.set()

    def _poll_loop(self) -> None:
        while True:
            self._poll_now.wait(self._interval)
            self._poll_now.clear()
            if self._stop.is_set():
                return
            try:
                self.poll()
            except Exception:
                log.exception("printer status poll failed")

    def _set_health(self, health: PrinterHealth) -> None:
        # Most faults silence ~HS (media, ribbon, head): carry the last count the printer gave, with its time, so
        # the engine can tell the labels it held (and those sent since) from those it had printed.
        if health.unprinted is not None:
            self._last_count = (health.unprinted, health.at)
        elif self._last_count is not None:
            health = dataclasses.replace(health, unprinted=self._last_count[0], at=self._last_count[1])
        if not health.checked_at:
            health = dataclasses.replace(health, checked_at=time.monotonic())
        before = self._health
        self._health = health
        if before.condition != health.condition or before.faults != health.faults:
            if health.condition in (PrinterCondition.READY, PrinterCondition.UNKNOWN):
                if before.condition in (PrinterCondition.FAULTED, PrinterCondition.UNREACHABLE):
                    log.info("printer %s recovered: %s", self.url, health.detail)
            else:
                log.warning("printer %s %s: %s", self.url, health.condition.value, health.detail)

    # -- LabelPrinter -----------------------------------------------------------------------------------------

    def render(self, fields: Mapping[str, str | None]) -> bytes:
        return self.template.render(fields)

    def ensure_fonts(self) -> list[str]:
        """Make sure the printer holds every configured font; download those it does not list. Returns the names
        downloaded. Raises DeviceError (the printer could not be reached, or did not keep the font)."""
        downloaded: list[str] = []
        for name, path in self.fonts.items():
            data = self._font_data.get(name)
            if data is None:
                try:
                    data = self._font_data[name] = path.read_bytes()
                except OSError as exc:
                    raise PrinterPortError(f"font {name}: cannot read {path}: {exc}") from exc
            listed = self._printer.list_files(name)
            if listed is not None and listed.get(name) == len(data):
                continue
            rate = self._printer.transport.bytes_per_second
            estimate = f", about {len(data) / rate:.0f} s at this line's speed" if rate else ""
            why = "does not say which files it holds" if listed is None else \
                ("holds another version" if name in listed else "does not hold it")
            log.info("printer %s %s: downloading font %s (%d bytes from %s%s)", self.url, why, name, len(data),
                     path, estimate)
            seconds = self._printer.send_file(download_font(name, data), f"font {name}")
            self.font_downloads.append((name, len(data), seconds))
            downloaded.append(name)
            log.info("font %s sent to %s in %.1f s", name, self.url, seconds)
            if listed is not None:
                after = self._printer.list_files(name)
                if after is not None and after.get(name) != len(data):
                    raise PrinterPortError(
                        f"printer {self.url} did not keep font {name} ({len(data)} bytes; it lists "
                        f"{after.get(name, 'nothing')}): check the free space on drive {name[0]}:")
        self._fonts_ready = True
        return downloaded

    def print_label(self, fields: Mapping[str, str | None]) -> None:
        if not self._ensure_open():
            raise PrinterPortError(f"printer {self.url} not reachable: {self._health.detail}")
        try:
            if not self._fonts_ready:
                self.ensure_fonts()
            if self.stored_format:
                if not self._format_sent:
                    self._printer.send_label(self.template.stored_format())
                    self._format_sent = True
                zpl = self.template.recall(fields)
            else:
                zpl = self.template.render(fields)
            self._printer.send_label(zpl)
        except DeviceError as exc:
            self._reset()
            raise PrinterPortError(str(exc)) from exc
        self.labels_sent += 1
        self.bytes_sent += len(zpl)

    def health(self) -> PrinterHealth:
        return self._health

    def cancel_queued(self) -> None:
        if not self._ensure_open():
            raise PrinterPortError(f"printer {self.url} not reachable")
        # ~JA may also drop a ^DF still waiting in the buffer: store the format again before the next label.
        self._format_sent = False
        try:
            self._printer.cancel_all()
        except DeviceError as exc:
            self._reset()
            raise PrinterPortError(str(exc)) from exc


class VerifierService:
    """The verification scanner on its reader thread, handing each line (or refusal) to a sink."""

    def __init__(self, url: str, sink: Callable[[VerificationRead], None], *, terminator: bytes = b"\r\n",
                 max_line_length: int = 512, name: str = "verifier") -> None:
        self.url = url
        self._sink = sink
        self._name = name
        self._scanner = SerialScanner(
            open_transport(url), terminator=terminator, max_length=max_line_length,
            on_read=self._on_read, on_refused=self._on_refused,
        )

    @property
    def scanner(self) -> SerialScanner:
        return self._scanner

    @property
    def connected(self) -> bool:
        return self._scanner.connected

    @property
    def last_error(self) -> str:
        return self._scanner.last_error or ""

    @property
    def read_count(self) -> int:
        return self._scanner.read_count

    @property
    def refused_count(self) -> int:
        return self._scanner.refused_count

    def _on_read(self, read: ScanRead) -> None:
        self._sink(VerificationRead(text=read.text, raw=read.raw, at=time.monotonic(), source=self._name))

    def _on_refused(self, refused: ScanRefused) -> None:
        self._sink(VerificationRead(text=None, raw=refused.raw, at=time.monotonic(), refused=refused.reason,
                                    source=self._name))

    def start(self) -> None:
        self._scanner.start()

    def stop(self) -> None:
        self._scanner.stop()


class CameraVerifierService:
    """A camera on the conveyor as the verification device: grabber thread, decoder worker, one read per code."""

    def __init__(self, url: str, sink: Callable[[VerificationRead], None], *, decoder: str = "zxing",
                 dedupe_s: float = 1.0, name: str = "camera") -> None:
        from drivers.camera import open_camera
        from drivers.camera_reader import CameraReader
        from drivers.decoder import make_decoder

        self.url = url
        self._sink = sink
        self._name = name
        self.camera = open_camera(url, gray=True)   # decoding needs gray only; `?gray=0` in the URL keeps colour
        self.reader = CameraReader(self.camera, make_decoder(decoder), self._on_read, dedupe_s=dedupe_s, name=name)

    def _on_read(self, text: str, raw: bytes, at: float, figures: object, *, repeat: bool = False) -> None:
        numbers = None
        if figures is not None:
            numbers = {k: float(v) for k, v in dataclasses.asdict(figures).items()  # type: ignore[call-overload]
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._sink(VerificationRead(text=text, raw=raw, at=at, source=self._name, figures=numbers,
                                    one_per_item=False))

    @property
    def connected(self) -> bool:
        return self.camera.connected

    @property
    def last_error(self) -> str:
        return self.camera.last_error or ""

    @property
    def read_count(self) -> int:
        return self.reader.stats().reads

    @property
    def refused_count(self) -> int:
        return 0

    def start(self) -> None:
        self.camera.start()
        self.reader.start()

    def stop(self) -> None:
        self.reader.stop()
        self.camera.stop()


def verifier_for(config: VerifierConfig, sink: Callable[[VerificationRead], None]) -> VerifierService | \
        CameraVerifierService:
    """The verification device the URL names: a camera (camera://, http://, folder://, file://) or a scanner."""
    if config.is_camera:
        return CameraVerifierService(config.url, sink, decoder=config.decoder.value, dedupe_s=config.dedupe_s)
    return VerifierService(config.url, sink, terminator=config.terminator.encode(),
                           max_line_length=config.max_line_length)


class _Records:
    """The MQTT client's event queue seen as the relay's records (translated on the relay's own thread)."""

    def __init__(self, source: queue.Queue[object]) -> None:
        self._source = source

    @staticmethod
    def _translate(event: object) -> PublisherRecord | None:
        if isinstance(event, MqttPublishAcked):
            return PublishAcked(event.mid, event.ok, f"{event.reason} (0x{event.reason_code:02X})", event.reason_code)
        if isinstance(event, MqttConnectFailed):
            return ConnectFailed(event.reason, event.reason_code, event.refused)
        if isinstance(event, MqttMessage):
            return MessageReceived(event.topic, event.payload, event.properties)
        if isinstance(event, MqttConnected):
            return Connected(event.session_present)
        if isinstance(event, MqttDisconnected):
            return Disconnected(event.reason)
        return None

    def get(self, block: bool = True, timeout: float | None = None) -> PublisherRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self._source.get(block, remaining)
            record = self._translate(event)
            if record is not None:
                return record
            if not block:
                continue

    def get_nowait(self) -> PublisherRecord:
        return self.get(block=False)


class MqttPublisher:
    """The MQTT driver as the relay's Publisher."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self._records = _Records(client.events)  # type: ignore[arg-type]

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def records(self) -> _Records:  # type: ignore[override]
        return self._records

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        try:
            return self.client.publish(topic, payload, qos=qos, retain=retain)
        except MqttError as exc:
            raise PublisherError(str(exc)) from exc

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.client.subscribe(topic, qos)
