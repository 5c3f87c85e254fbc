"""A Zebra printer on any transport: sends labels, reads ~HS / ~HQES status, cancels queued labels."""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, TypeVar

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.errors import DeviceError
from drivers.transport import Transport, TransportError
from drivers.zebra.status import (
    DirectoryAssembler,
    ErrorStatus,
    HostStatus,
    HostStatusAssembler,
    HqesAssembler,
    StatusParseError,
)
from drivers.zebra.zpl import CANCEL_ALL, HOST_STATUS, HQES, directory_query

log = logging.getLogger(__name__)

# Bound on stale bytes discarded before a query, so a chattering device cannot hold the lock forever.
_MAX_DRAIN = 64 * 1024

_Reply = TypeVar("_Reply", covariant=True)


class _Assembler(Protocol[_Reply]):
    def feed(self, data: bytes) -> _Reply | None: ...


class PrinterError(DeviceError):
    """A label or command could not be sent to the printer."""


class PrinterFault(enum.StrEnum):
    """Why a printer will not print."""

    PAPER_OUT = "paper_out"
    RIBBON_OUT = "ribbon_out"
    HEAD_OPEN = "head_open"
    PAUSED = "paused"
    CUTTER = "cutter"
    OVER_TEMPERATURE = "over_temperature"
    UNDER_TEMPERATURE = "under_temperature"
    BUFFER_FULL = "buffer_full"


class PrinterState(enum.StrEnum):
    """READY: prints (or, without read-back, assumed to); FAULTED: answered with faults; UNREACHABLE: no answer."""

    READY = "ready"
    FAULTED = "faulted"
    UNREACHABLE = "unreachable"


_FAULT_TEXT = {
    PrinterFault.PAPER_OUT: "paper out",
    PrinterFault.RIBBON_OUT: "ribbon out",
    PrinterFault.HEAD_OPEN: "head open",
    PrinterFault.PAUSED: "paused",
    PrinterFault.CUTTER: "cutter fault",
    PrinterFault.OVER_TEMPERATURE: "over temperature",
    PrinterFault.UNDER_TEMPERATURE: "under temperature",
    PrinterFault.BUFFER_FULL: "receive buffer full",
}


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said (or did not say), with a plain-English `detail` for logs.

    `host_status` is set when ~HS answered, `error_status` when the answer came from ~HQES. When neither is
    set and the state is READY, the transport has no read-back (cups://): the printer is *assumed* ready,
    and `known` is False.
    """

    state: PrinterState
    faults: tuple[PrinterFault, ...]
    detail: str
    host_status: HostStatus | None = None
    error_status: ErrorStatus | None = None

    @property
    def known(self) -> bool:
        """Whether the printer itself reported this status."""
        return self.host_status is not None or self.error_status is not None


def status_from_host_status(host: HostStatus) -> PrinterStatus:
    """Turn a ~HS reply into a PrinterStatus."""
    flags = (
        (host.paper_out, PrinterFault.PAPER_OUT),
        (host.ribbon_out, PrinterFault.RIBBON_OUT),
        (host.head_open, PrinterFault.HEAD_OPEN),
        (host.paused, PrinterFault.PAUSED),
        (host.over_temperature, PrinterFault.OVER_TEMPERATURE),
        (host.under_temperature, PrinterFault.UNDER_TEMPERATURE),
        (host.buffer_full, PrinterFault.BUFFER_FULL),
    )
    faults = tuple(fault for is_set, fault in flags if is_set)
    if faults:
        detail = ", ".join(_FAULT_TEXT[fault] for fault in faults)
        return PrinterStatus(PrinterState.FAULTED, faults, detail, host_status=host)
    detail = f"ready, {host.formats_in_buffer} format(s) in buffer"
    return PrinterStatus(PrinterState.READY, (), detail, host_status=host)


def status_from_error_status(errors: ErrorStatus) -> PrinterStatus:
    """Turn a ~HQES reply (asked because ~HS went unanswered) into a PrinterStatus."""
    flags = (
        (errors.media_out, PrinterFault.PAPER_OUT),
        (errors.ribbon_out, PrinterFault.RIBBON_OUT),
        (errors.head_open, PrinterFault.HEAD_OPEN),
        (errors.cutter_fault, PrinterFault.CUTTER),
        (errors.over_temperature, PrinterFault.OVER_TEMPERATURE),
    )
    faults = tuple(fault for is_set, fault in flags if is_set)
    if errors.has_errors or errors.error_bits:
        names = list(errors.error_names)
        if errors.unknown_error_bits or not names:
            names.append(f"error code {errors.error_bits:016X}")
        return PrinterStatus(
            PrinterState.FAULTED, faults, "~HQES: " + ", ".join(names), error_status=errors
        )
    # The printer answers ~HQES without errors but stayed silent on ~HS: odd, but it says it can print.
    return PrinterStatus(
        PrinterState.READY, (), "no answer to ~HS; ~HQES reports no errors", error_status=errors
    )


class ZebraPrinter:
    """A Zebra printer behind a transport. Thread-safe: one lock serialises every use of the transport.

    The printer owns its transport's connection: after a transport failure it closes it, and the next call
    opens it again, so a printer that was switched off comes back without anyone reconnecting by hand.

    `query_status()` never raises for device trouble; it returns UNREACHABLE instead. On a transport that
    cannot read (cups://) it returns READY with no faults, `known` False and a detail saying that no status
    is available: the station can only find problems there through the scanner's verification.
    """

    def __init__(self, transport: Transport, status_timeout: float = 1.0, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if status_timeout <= 0:
            raise ValueError(f"status_timeout must be positive, got {status_timeout}")
        self.transport = transport
        self.status_timeout = status_timeout
        self.clock = clock   # times status_timeout and a download (drivers.clock)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.transport.url

    def open(self) -> None:
        """Connect to the printer. Raises PrinterError naming the URL."""
        with self._lock:
            self._ensure_open()

    def close(self) -> None:
        with self._lock:
            self.transport.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send_label(self, zpl: bytes) -> None:
        """Send one or more formats (^XA…^XZ). Raises PrinterError naming the URL."""
        if not zpl:
            raise ValueError("send_label needs ZPL bytes, got nothing")
        self._send(bytes(zpl), "label")

    def cancel_all(self) -> None:
        """Cancel every format queued in the printer (~JA)."""
        self._send(CANCEL_ALL, "~JA")

    def list_files(self, pattern: str) -> dict[str, int] | None:
        """The files the printer holds that match `pattern` (``E:VNSANS.TTF``, ``E:*.TTF``), by name with their
        size (``^HW``); None when it cannot say: no read-back on this transport, or no answer in status_timeout.
        Raises PrinterError when the printer cannot be reached."""
        with self._lock:
            if not self.transport.can_read:
                return None
            self._ensure_open()
            try:
                self._drain()
                self.transport.write(directory_query(pattern))
                listing, problem = self._collect(DirectoryAssembler())
            except TransportError as exc:
                self.transport.close()
                raise PrinterError(f"{self.url}: could not ask for the file list: {exc}") from exc
            if listing is None and problem:
                log.warning("%s: unreadable ^HW reply: %s", self.url, problem)
            return listing

    def send_file(self, data: bytes, what: str, chunk: int = 1024) -> float:
        """Send a download (``~DY`` with its data) in one hold of the printer, in chunks so that a slow serial line
        never meets its write timeout; nothing else can be sent in between, for the printer would read it as
        file data. Returns the seconds it took. Raises PrinterError."""
        started = self.clock.monotonic()
        with self._lock:
            self._ensure_open()
            try:
                for offset in range(0, len(data), chunk):
                    self.transport.write(data[offset:offset + chunk])
            except TransportError as exc:
                self.transport.close()
                raise PrinterError(f"{self.url}: could not send {what}: {exc}") from exc
        return self.clock.monotonic() - started

    def query_status(self) -> PrinterStatus:
        """Ask ~HS; if silent, ask ~HQES; if silent again, UNREACHABLE. Takes up to twice status_timeout."""
        with self._lock:
            if not self.transport.can_read:
                return PrinterStatus(
                    PrinterState.READY, (), f"status not available: no read-back on {self.url}"
                )
            try:
                self._ensure_open()
                self._drain()
                self.transport.write(HOST_STATUS)
                host, problem = self._collect(HostStatusAssembler())
                if host is not None:
                    return status_from_host_status(host)
                # Printers stay silent on ~HS while media, ribbon, head or temperature is wrong.
                self.transport.write(HQES)
                errors, hqes_problem = self._collect(HqesAssembler())
                if errors is not None:
                    return status_from_error_status(errors)
            except (TransportError, PrinterError) as exc:
                self.transport.close()
                return PrinterStatus(PrinterState.UNREACHABLE, (), str(exc))
            problem = problem or hqes_problem
            detail = f"{self.url}: printer did not answer ~HS nor ~HQES within {self.status_timeout:g}s"
            if problem:
                detail += f" (unreadable reply: {problem})"
            return PrinterStatus(PrinterState.UNREACHABLE, (), detail)

    # --- inside the lock ---------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        try:
            self.transport.open()
        except TransportError as exc:
            raise PrinterError(str(exc)) from exc

    def _send(self, data: bytes, what: str) -> None:
        with self._lock:
            self._ensure_open()
            try:
                self.transport.write(data)
            except TransportError as exc:
                self.transport.close()
                raise PrinterError(f"{self.url}: could not send {what}: {exc}") from exc

    def _drain(self) -> None:
        """Drop bytes left from an earlier reply, so they cannot be read as the answer to this query."""
        dropped = 0
        while dropped < _MAX_DRAIN:
            stale = self.transport.read(0)
            if not stale:
                return
            dropped += len(stale)
        log.warning("%s: more than %d stale bytes waiting; reading on anyway", self.url, _MAX_DRAIN)

    def _collect(self, assembler: _Assembler[_Reply]) -> tuple[_Reply | None, str | None]:
        """Read until the assembler completes a reply or status_timeout passes; return it and any parse problem."""
        deadline = self.clock.monotonic() + self.status_timeout
        problem: str | None = None
        while (remaining := deadline - self.clock.monotonic()) > 0:
            chunk = self.transport.read(remaining)
            if not chunk:
                continue
            try:
                result = assembler.feed(chunk)
            except StatusParseError as exc:
                problem = str(exc)
                continue
            if result is not None:
                return result, None
        return None, problem
