"""The outbox relay: publishes unconfirmed EPCIS events over MQTT, at least once, from the durable outbox.

A row is *sent* when the broker's PUBACK carries a success reason code and *confirmed* when the central server
acks the eventID on ``…/acks`` (or on the PUBACK itself in broker-ack delivery). Whatever is not confirmed is due
again after a back-off, and after every restart. The relay hands the MQTT client a bounded window of messages,
never the whole backlog, and does all database work on its own thread: the client's callbacks only queue records.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from station import epcis
from station.domain import DeliveryState
from station.ports import (
    Connected,
    Disconnected,
    MessageReceived,
    Publisher,
    PublisherError,
    PublisherRecord,
    PublishAcked,
)
from station.store import OutboxItem, Store, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    events: str
    acks: str
    status: str

    @classmethod
    def for_station(cls, prefix: str, site: str, station: str) -> Topics:
        base = f"{prefix}/{site}/{station}"
        return cls(events=f"{base}/events", acks=f"{base}/acks", status=f"{base}/status")


@dataclass(frozen=True)
class RelaySettings:
    max_inflight: int = 100
    events_per_message: int = 1
    broker_ack_confirms: bool = False      # broker-ack delivery: a PUBACK is as good as the server's ack
    ack_timeout_s: float = 30.0            # resend what the server has not acked after this
    retry_initial_s: float = 2.0
    retry_max_s: float = 300.0
    puback_timeout_s: float = 30.0         # a message with no PUBACK this long is due again
    status_interval_s: float = 5.0
    flush_interval_s: float = 0.02         # PUBACKs and acks are written in groups, not one commit each


@dataclass
class _InFlight:
    ids: list[int]
    event_ids: list[str]
    attempts: int
    published_at: float


@dataclass
class RelayStats:
    published: int = 0
    acked_by_broker: int = 0
    publish_failures: int = 0
    confirmed: int = 0
    acks_unknown: int = 0
    last_error: str = ""
    connected: bool = False
    counts: dict[str, int] = field(default_factory=dict)


class Relay:
    """Moves outbox rows to the broker and confirmations back into the outbox."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        topics: Topics,
        settings: RelaySettings = RelaySettings(),
        *,
        status: Callable[[], dict[str, Any]] | None = None,
        sender: str | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.topics = topics
        self.settings = settings
        self._status = status
        self._sender = sender
        self._inflight: dict[int, _InFlight] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published_acks: list[tuple[_InFlight, bool, str]] = []
        self._confirmed: list[str] = []
        self._last_status = 0.0
        self._status_dirty = True
        self.stats = RelayStats()

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self.publisher.subscribe(self.topics.acks, qos=1)
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def status_changed(self) -> None:
        """The station's state changed: publish the retained status soon (at most twice a second)."""
        self._status_dirty = True

    def drained(self) -> bool:
        """True when every outbox row is confirmed."""
        counts = self.store.outbox_counts()
        return counts[DeliveryState.PENDING] == 0 and counts[DeliveryState.SENT] == 0

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained():
                return True
            time.sleep(0.05)
        return self.drained()

    # -- the relay's thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # keep delivering: a failed step is retried on the next tick
                self.stats.last_error = str(exc)
                log.exception("relay step failed")
                self._stop.wait(0.5)
        try:
            self._drain_records(timeout=0)
            self._flush()
        except Exception:
            log.exception("relay final flush failed")

    def _step(self) -> None:
        self._drain_records(timeout=self.settings.flush_interval_s)
        self._flush()
        self._expire_inflight()
        if self.publisher.connected:
            self._fill_window()
            self._publish_status()

    def _drain_records(self, timeout: float) -> None:
        records = self.publisher.records
        try:
            record = records.get(timeout=timeout) if timeout > 0 else records.get_nowait()
        except queue.Empty:
            return
        while True:
            self._on_record(record)
            try:
                record = records.get_nowait()
            except queue.Empty:
                return

    def _on_record(self, record: PublisherRecord) -> None:
        if isinstance(record, PublishAcked):
            item = self._inflight.pop(record.mid, None)
            if item is not None:
                self._published_acks.append((item, record.ok, record.reason))
        elif isinstance(record, MessageReceived):
            if record.topic == self.topics.acks:
                self._on_ack(record.payload)
        elif isinstance(record, Connected):
            self.stats.connected = True
            self._status_dirty = True
            log.info("relay connected to the broker (session present: %s)", record.session_present)
        elif isinstance(record, Disconnected):
            self.stats.connected = False
            # What was in flight may or may not have reached the broker: it is due again (the server drops
            # duplicates by eventID), so nothing waits on a PUBACK that will never come.
            if self._inflight:
                log.info("broker connection lost with %d messages in flight; they will be resent",
                         len(self._inflight))
            self._inflight.clear()

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = json.loads(payload)
            event_id = ack["eventID"]
            status = ack.get("status")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored an ack that is not {\"eventID\": …, \"status\": …}: %r (%s)", payload[:200], exc)
            return
        if status == "stored" and isinstance(event_id, str):
            self._confirmed.append(event_id)
        else:
            log.warning("server answered %r for %s", status, event_id)

    def _flush(self) -> None:
        now = utcnow()
        if self._published_acks:
            acks, self._published_acks = self._published_acks, []
            ok_ids = [i for item, ok, _ in acks if ok for i in item.ids]
            ok_events = [e for item, ok, _ in acks if ok for e in item.event_ids]
            self.stats.acked_by_broker += len(ok_ids)
            if self.settings.broker_ack_confirms:
                self.stats.confirmed += self.store.mark_confirmed(ok_events, now)
            else:
                self.store.mark_published(ok_ids, now, now + dt.timedelta(seconds=self.settings.ack_timeout_s))
            for item, ok, reason in acks:
                if not ok:
                    self.stats.publish_failures += len(item.ids)
                    self.stats.last_error = f"broker refused: {reason}"
                    log.warning("broker refused %d events: %s", len(item.ids), reason)
                    self.store.mark_publish_failed(item.ids, f"broker refused: {reason}",
                                                   now + self._backoff(item.attempts))
            self._status_dirty = True
        if self._confirmed:
            confirmed, self._confirmed = self._confirmed, []
            changed = self.store.mark_confirmed(confirmed, now)
            self.stats.confirmed += changed
            self.stats.acks_unknown += len(set(confirmed)) - changed
            self._status_dirty = True

    def _backoff(self, attempts: int) -> dt.timedelta:
        seconds = min(self.settings.retry_max_s, self.settings.retry_initial_s * (2 ** min(attempts, 20)))
        return dt.timedelta(seconds=seconds)

    def _expire_inflight(self) -> None:
        limit = time.monotonic() - self.settings.puback_timeout_s
        for mid in [m for m, item in self._inflight.items() if item.published_at < limit]:
            item = self._inflight.pop(mid)
            self.store.mark_publish_failed(item.ids, "no PUBACK from the broker", utcnow())

    def _fill_window(self) -> None:
        room = self.settings.max_inflight - len(self._inflight)
        if room <= 0:
            return
        busy = [i for item in self._inflight.values() for i in item.ids]
        due = self.store.due_outbox(utcnow(), limit=room * self.settings.events_per_message, exclude_ids=busy)
        step = self.settings.events_per_message
        for start in range(0, len(due), step):
            group = due[start:start + step]
            if not self._publish(group):
                break

    def _publish(self, group: list[OutboxItem]) -> bool:
        document = epcis.document([item.event for item in group], created_at=utcnow().replace(tzinfo=dt.timezone.utc),
                                  sender=self._sender)
        payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            mid = self.publisher.publish(self.topics.events, payload, qos=1, retain=False)
        except PublisherError as exc:
            self.stats.last_error = str(exc)
            log.debug("publish refused: %s", exc)
            return False
        self._inflight[mid] = _InFlight(
            ids=[item.id for item in group], event_ids=[item.event_id for item in group],
            attempts=max(item.attempts for item in group), published_at=time.monotonic(),
        )
        self.stats.published += len(group)
        return True

    def _publish_status(self) -> None:
        now = time.monotonic()
        if not self._status_dirty and now - self._last_status < self.settings.status_interval_s:
            return
        if now - self._last_status < 0.5:  # at most twice a second, however busy the line is
            return
        payload = self.status_payload()
        try:
            self.publisher.publish(self.topics.status, json.dumps(payload, ensure_ascii=False).encode(), qos=1,
                                   retain=True)
        except PublisherError:
            return
        self._last_status, self._status_dirty = now, False

    def status_payload(self) -> dict[str, Any]:
        counts = self.store.outbox_counts()
        payload: dict[str, Any] = {"online": True}
        if self._status is not None:
            payload.update(self._status())
        payload["outbox"] = {state.value: n for state, n in counts.items()}
        payload["at"] = utcnow().replace(tzinfo=dt.timezone.utc).isoformat(timespec="milliseconds")
        return payload
