"""The outbox relay: publishes unconfirmed EPCIS events over MQTT, at least once, from the durable outbox.

A row is *sent* when the broker's PUBACK carries a success reason code and *confirmed* when the central server
acks the eventID on ``…/acks`` (or on the PUBACK itself in broker-ack delivery). Whatever is not confirmed is due
again after a back-off, and after every restart. The relay hands the MQTT client a bounded window of messages,
never the whole backlog, and does all database work on its own thread: the client's callbacks only queue records.
Two bounds: ``max_inflight`` messages without a PUBACK, and ``max_unconfirmed`` events PUBACKed but not yet acked
by the server (what sits in the broker's queue for the server, which a broker drops silently when it overflows).

The relay's thread never waits on the disk while the window could move: due rows are read ahead in one query
(``read_ahead``) and handed out as PUBACKs free the window, and PUBACKs and acks are written in groups
(``write_interval_s``) by one transaction queued on the store's writer thread, collected once committed. A row
stays out of the due set from the moment it is read until the write about it is committed, so it is never handed
to the client twice; a crash before that commit leaves it pending or sent on disk, and it goes again.

PUBACK reason codes: 0x00 is success. 0x10 *No matching subscribers* means the broker accepted the message but
nobody received it (with Mosquitto: the central server's ingest is not subscribed, or lost its session in a broker
crash), so it counts as a failure like 0x87 *Not authorized* and every other code >= 0x80: the rows stay
*pending*, ``last_error`` says which code came back, and they are tried again after an exponential back-off
(``retry_initial_s`` doubling up to ``retry_max_s``). This matters most in broker-ack delivery, where a PUBACK is
the only confirmation there is: a 0x10 there would otherwise confirm an event that went nowhere.

A broker that refuses delivery is a *delivery problem*, not only a log line: a CONNACK refusal (0x86 bad user name or
password, 0x87 not authorised — Mosquitto's answer to a wrong password too —, 0x85 client id not valid, …) or a PUBACK
0x87 for the events topic (the broker's ACL) is kept in ``problems``, announced once through ``on_problem`` (the
station raises its alarm) and recorded in the outbox's database (``OutboxStore.record_delivery_problem``), so ``station
status`` in another process can say why events wait. It ends when the broker accepts again (a CONNACK success, a
PUBACK that is not 0x87); the events never left the outbox meanwhile.

A lost connection does not empty the window: paho keeps its unacknowledged QoS 1 messages and sends them again
(same message id, DUP set) once it has reconnected, so their PUBACKs still come. Publishing the same rows again on
top would hand paho twice the window and the server twice the duplicates.

Time: what is due when (the ack wait and the back-off, the PUBACK timeout, the look for rows coming due, the status
interval) is read from two injectable clocks, ``clock`` (monotonic seconds, for what the relay holds in memory) and
``wall_clock`` (naive UTC, for the schedule kept in the outbox), so tests drive the schedule on a fake clock. The
relay's own pacing (waiting for broker records, gathering PUBACKs, grouping writes) is about the machine, not the
schedule, and stays on real time. ``step()`` runs one turn on the caller's thread, as paho's ``loop()`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from station import epcis
from station.ports import (
    ConnectFailed,
    Connected,
    Disconnected,
    MessageReceived,
    OutboxStore,
    Publisher,
    PublisherError,
    PublisherRecord,
    PublishAcked,
)
from station.store.records import OutboxItem, utcnow

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


# A CONNACK refusal's reason code -> the alarm that says what to check (any other refusal: mqtt_connection_refused).
CONNECT_REFUSALS = {
    0x85: "mqtt_client_id_refused",      # Client identifier not valid
    0x86: "mqtt_bad_credentials",        # Bad user name or password
    0x87: "mqtt_not_authorised",         # Not authorized (Mosquitto answers a wrong password with it too)
    0x8A: "mqtt_not_authorised",         # Banned
    0x8C: "mqtt_not_authorised",         # Bad authentication method
}
CONNECT_PROBLEMS = frozenset(CONNECT_REFUSALS.values()) | {"mqtt_connection_refused"}
PUBLISH_DENIED = "mqtt_publish_denied"   # PUBACK 0x87 for the events topic: the broker's ACL
NOT_AUTHORISED = 0x87
PROBLEM_RECORD_INTERVAL_S = 10.0         # a lasting problem's last_seen_at is written at most this often
# The central server refused an event (`{"eventID", "status": "rejected", "reason"}`: its document is quarantined
# there). Not a broker problem: the row ends rejected with the reason, is never resent, and the station raises this
# alarm once per reason in a run (station status lists the rejected rows).
EVENT_REJECTED = "event_rejected"


@dataclass(frozen=True)
class DeliveryProblem:
    """The broker refuses delivery: `code` is the alarm (station.alarms), `reason` what the broker said."""

    code: str
    reason: str
    since: dt.datetime                   # naive UTC (the relay's wall clock)
    topic: str = ""

    @property
    def detail(self) -> str:
        return f"{self.reason} for {self.topic}" if self.topic else self.reason


@dataclass(frozen=True)
class RelaySettings:
    max_inflight: int = 100                # messages handed to the client and not yet PUBACKed
    # Events PUBACKed but not yet acked by the server. The broker queues them for the server's session and drops
    # what exceeds its max_queued_messages (Mosquitto: 1000 messages) without telling anyone; a backlog drained
    # faster than the server stores would be resent after ack_timeout_s, again and again. 0: no limit.
    max_unconfirmed: int = 500
    events_per_message: int = 1
    broker_ack_confirms: bool = False      # broker-ack delivery: a PUBACK is as good as the server's ack
    ack_timeout_s: float = 30.0            # resend what the server has not acked after this
    retry_initial_s: float = 2.0
    retry_max_s: float = 300.0
    puback_timeout_s: float = 30.0         # a message with no PUBACK this long is due again
    status_interval_s: float = 5.0
    flush_interval_s: float = 0.02         # how long the relay waits for broker records before looking around
    write_interval_s: float = 0.1          # PUBACKs and acks are written in groups, at most this often
    # Due rows read from the outbox in one query and kept, in order, until the window takes them: one query for
    # many refills of the window instead of one for each. Not yet handed to the client, so nothing is sent twice.
    read_ahead: int = 1000
    gather_s: float = 0.001                # with half the window or more in flight, PUBACKs are gathered this long
    # Events PUBACKed (or refused) whose outcome is not yet committed to the outbox. The window stops filling
    # beyond this: a disk that stalls stops the relay, it does not grow its memory.
    max_unwritten: int = 5_000


@dataclass(slots=True)
class _InFlight:
    ids: list[int]
    event_ids: list[str]
    attempts: int
    published_at: float


@dataclass
class _Write:
    """A group of outbox writes queued on the store's writer thread, not yet committed."""

    future: Future[int]
    ids: list[int]          # rows it changes: not due while it runs, whatever the outbox still says
    acks: list[str]         # the server's acks it writes (for acks_unknown)


@dataclass
class RelayStats:
    published: int = 0
    acked_by_broker: int = 0
    publish_failures: int = 0
    confirmed: int = 0
    rejected: int = 0                     # events the central server refused (acked "rejected")
    acks_unknown: int = 0                 # server acks that confirmed nothing (server-ack delivery only)
    last_error: str = ""
    connected: bool = False
    counts: dict[str, int] = field(default_factory=dict)


class Relay:
    """Moves outbox rows to the broker and confirmations back into the outbox."""

    def __init__(
        self,
        store: OutboxStore,
        publisher: Publisher,
        topics: Topics,
        settings: RelaySettings = RelaySettings(),
        *,
        status: Callable[[], dict[str, Any]] | None = None,
        sender: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = utcnow,
        on_problem: Callable[[DeliveryProblem], None] | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.topics = topics
        self.settings = settings
        self._status = status
        self._sender = sender
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_problem = on_problem
        # Replaced, never changed in place: other threads read it (the status, the screens).
        self._problems: dict[str, DeliveryProblem] = {}
        self._problems_on_disk: set[str] = set()      # open in the database (this run's or an earlier one's)
        self._problem_written: dict[str, float] = {}
        self._inflight: dict[int, _InFlight] = {}
        # eventID -> when to stop waiting for the server's ack (monotonic); insertion order is deadline order.
        self._awaiting: dict[str, float] = {}
        self._early_acks: set[str] = set()
        self._stop = threading.Event()
        self._hint = threading.Event()
        self._hint.set()
        self._more_due = True
        self._last_due_query: float | None = None
        self._last_write = 0.0
        self._thread: threading.Thread | None = None
        self._published_acks: list[tuple[_InFlight, bool, str]] = []
        self._confirmed: list[str] = []
        self._rejected: dict[str, list[str]] = {}     # the server's reason -> eventIDs it refused, not yet written
        self._rejection_reasons: set[str] = set()     # announced this run
        self._writing: _Write | None = None
        self._unwritten = 0  # events in _published_acks
        self._drained_some = False
        # Due rows read ahead, oldest first, and the eventIDs among them still to publish: one the server acks
        # meanwhile (the ack of a send from before a restart) leaves the set and is skipped.
        self._queued: deque[OutboxItem] = deque()
        self._queued_events: set[str] = set()
        self._last_status: float | None = None
        self._status_dirty = True
        self.stats = RelayStats()

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Deliver on the relay's own thread until stop()."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self) -> None:
        """New rows are in the outbox: look now instead of at the next periodic look (a quarter second)."""
        self._hint.set()

    def status_changed(self) -> None:
        """The station's state changed: publish the retained status soon (at most twice a second)."""
        self._status_dirty = True

    @property
    def problems(self) -> list[DeliveryProblem]:
        """The delivery problems that last now (empty once the broker accepts again)."""
        return list(self._problems.values())

    def drained(self) -> bool:
        """True when every outbox row is confirmed."""
        return self.store.all_confirmed()

    def wait_drained(self, timeout: float) -> bool:
        """Until every outbox row is confirmed (True), the timeout passed, or the broker refuses delivery (False):
        a refused login or an ACL denial lasts until someone changes the configuration, so waiting on is useless."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.drained():
                return True
            if self._problems:
                return False
            time.sleep(0.05)
        return self.drained()

    # -- the relay's thread ---------------------------------------------------------------------------------

    def begin(self) -> None:
        """What the relay's thread does before its first turn: subscribe to the server's acks, and make every
        unconfirmed event due now (after a restart nothing waits out a schedule from before). Call it once to drive
        the relay with step() on your own thread instead of start()."""
        self.publisher.subscribe(self.topics.acks, qos=1)
        self._problems_on_disk = {p.code for p in self.store.delivery_problems()}
        rescheduled = self.store.reschedule_unconfirmed(self._wall_clock())
        if rescheduled:
            log.info("%d unconfirmed events from before are due again", rescheduled)

    def finish(self) -> None:
        """What the relay's thread does after its last turn: handle the records already queued and write them."""
        self._drain_records(timeout=0)
        self._flush(wait=True)

    def _run(self) -> None:
        try:
            self.begin()
        except Exception as exc:
            self.stats.last_error = str(exc)
            log.exception("relay start failed")
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # keep delivering: a failed step is retried on the next tick
                self.stats.last_error = str(exc)
                log.exception("relay step failed")
                self._stop.wait(0.5)
        try:
            self.finish()
        except Exception:
            log.exception("relay final flush failed")

    def step(self) -> None:
        """One turn: take the broker's records (waiting up to flush_interval_s for the first), write what they
        changed, expire what had no PUBACK in time, hand due rows to the client and publish the status."""
        if self._drained_some and 2 * len(self._inflight) >= self.settings.max_inflight:
            # PUBACKs are streaming in on a well-filled window: gather them for a moment and refill the window
            # in a burst, rather than waking up (and taking the GIL from paho's thread) once for every PUBACK.
            time.sleep(self.settings.gather_s)
            self._drained_some = self._drain_records(timeout=0)
        else:
            self._drained_some = self._drain_records(timeout=self.settings.flush_interval_s)
        self._collect_write()
        pending = len(self._published_acks) + len(self._confirmed) + len(self._rejected)
        if pending and self._writing is None and (
                time.monotonic() - self._last_write >= self.settings.write_interval_s or pending >= 500):
            self._flush()
        self._expire_inflight()
        if self.publisher.connected:
            self._fill_window()
            self._publish_status()

    def _drain_records(self, timeout: float) -> bool:
        """Handle every record the client has queued, waiting up to timeout for the first; False if none came."""
        records = self.publisher.records
        try:
            record = records.get(timeout=timeout) if timeout > 0 else records.get_nowait()
        except queue.Empty:
            return False
        while True:
            self._on_record(record)
            try:
                record = records.get_nowait()
            except queue.Empty:
                return True

    def _on_record(self, record: PublisherRecord) -> None:
        if isinstance(record, PublishAcked):
            item = self._inflight.pop(record.mid, None)
            if item is not None:
                self._published_acks.append((item, record.ok, record.reason))
                self._unwritten += len(item.ids)
                if record.code == NOT_AUTHORISED:
                    self._problem(PUBLISH_DENIED, record.reason, topic=self.topics.events)
                elif PUBLISH_DENIED in self._problems or PUBLISH_DENIED in self._problems_on_disk:
                    self._clear_problems({PUBLISH_DENIED})
        elif isinstance(record, MessageReceived):
            if record.topic == self.topics.acks:
                self._on_ack(record.payload)
        elif isinstance(record, ConnectFailed):
            self.stats.connected = False
            if record.refused and record.code is not None:
                reason = f"{record.reason} (0x{record.code:02X})"
                self.stats.last_error = f"broker refused the connection: {reason}"
                code = CONNECT_REFUSALS.get(record.code, "mqtt_connection_refused")
                self._clear_problems(CONNECT_PROBLEMS - {code})
                self._problem(code, reason)
            else:
                self.stats.last_error = record.reason
        elif isinstance(record, Connected):
            self.stats.connected = True
            self._status_dirty = True
            self._clear_problems(CONNECT_PROBLEMS)
            # paho sends what it still holds again now: the wait for those PUBACKs starts over.
            now = self._clock()
            for item in self._inflight.values():
                item.published_at = now
            log.info("relay connected to the broker (session present: %s, %d messages in flight resent by the "
                     "client)", record.session_present, len(self._inflight))
        elif isinstance(record, Disconnected):
            self.stats.connected = False
            # What was in flight stays in the window: paho resends it after reconnecting and its PUBACK comes
            # then (or puback_timeout_s after the reconnect, it is due again from the outbox).
            if self._inflight:
                log.info("broker connection lost with %d messages in flight; the client resends them after "
                         "reconnecting", len(self._inflight))
            # Rows read ahead are read again after reconnecting: the outbox may have moved on meanwhile.
            self._queued.clear()
            self._queued_events.clear()

    def _problem(self, code: str, reason: str, topic: str = "") -> None:
        """The broker refuses delivery: kept, recorded on disk, announced once (not on every retry)."""
        known = self._problems.get(code)
        problem = DeliveryProblem(code, reason, known.since if known else self._wall_clock(), topic)
        now = self._clock()
        if known is None:
            self._problems = {**self._problems, code: problem}
            self._status_dirty = True
            log.warning("delivery refused by the broker (%s): %s; the events stay in the outbox", code, problem.detail)
        elif now - self._problem_written.get(code, now) < PROBLEM_RECORD_INTERVAL_S:
            return
        self._problem_written[code] = now
        try:
            self.store.record_delivery_problem(code, problem.detail, self._wall_clock())
            self._problems_on_disk.add(code)
        except Exception:
            log.exception("recording the delivery problem %s failed", code)
        if known is None and self._on_problem is not None:
            try:
                self._on_problem(problem)
            except Exception:
                log.exception("a delivery problem listener failed")

    def _clear_problems(self, codes: set[str] | frozenset[str]) -> None:
        """The broker accepts again: these problems end (in memory and on disk)."""
        gone = codes & self._problems.keys()
        if gone:
            self._problems = {c: p for c, p in self._problems.items() if c not in gone}
            self._status_dirty = True
            log.info("the broker accepts delivery again (%s over)", ", ".join(sorted(gone)))
        for code in gone:
            self._problem_written.pop(code, None)
        on_disk = codes & self._problems_on_disk
        if on_disk:
            try:
                self.store.clear_delivery_problems(sorted(on_disk), self._wall_clock())
                self._problems_on_disk -= on_disk
            except Exception:
                log.exception("recording the end of delivery problems %s failed", ", ".join(sorted(on_disk)))

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = json.loads(payload)
            event_id = ack["eventID"]
            status = ack.get("status")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored an ack that is not {\"eventID\": …, \"status\": …}: %r (%s)", payload[:200], exc)
            return
        if status in ("stored", "rejected") and isinstance(event_id, str):
            if status == "stored":
                self._confirmed.append(event_id)
            else:
                self._on_rejected(event_id, ack.get("reason"), ours=self._sent_now(event_id))
            # Read ahead before the ack came (the ack of a send from before a restart): not published again.
            self._queued_events.discard(event_id)
            if self._awaiting.pop(event_id, None) is None:
                # The server's ack overtook our record of the PUBACK: it must not start waiting afterwards.
                self._early_acks.add(event_id)
                if len(self._early_acks) > 20_000:
                    self._early_acks.clear()
        else:
            # A rejection naming no eventID (the payload was not JSON): nothing of ours to mark; ours are valid JSON.
            log.warning("server answered %r for %s: %s", status, event_id, ack.get("reason", ""))

    def _sent_now(self, event_id: str) -> bool:
        """The event went out in this run and waits for the server's answer (PUBACKed, or still in flight)."""
        return event_id in self._awaiting or any(event_id in f.event_ids for f in self._inflight.values()) or any(
            event_id in item.event_ids for item, _, _ in self._published_acks)

    def _on_rejected(self, event_id: str, reason: object, *, ours: bool) -> None:
        """The server refused the event: written rejected with the reason (a row of ours only: the update names
        the eventID); the alarm once per reason this run, for an event this run sent: not for noise on the acks
        topic, nor for the answer to a send from before a restart (written all the same; station status lists
        it)."""
        text = reason if isinstance(reason, str) and reason.strip() else "no reason given"
        self._rejected.setdefault(text, []).append(event_id)
        log.error("the central server rejected event %s: %s; it is kept in the outbox as rejected, not resent",
                  event_id, text)
        if not ours or text in self._rejection_reasons or len(self._rejection_reasons) >= 100:
            return
        self._rejection_reasons.add(text)
        if self._on_problem is not None:
            try:
                self._on_problem(DeliveryProblem(EVENT_REJECTED, f"event {event_id}: {text}", self._wall_clock()))
            except Exception:
                log.exception("a delivery problem listener failed")

    def _flush(self, *, wait: bool = False) -> None:
        """Queue the PUBACKs and acks that came since the last write as one write on the store's writer thread.

        Not waited for (wait=True: at the end of the run): the relay goes on publishing while the write is
        committed, and collects it in `_collect_write`. One write at a time; the rows it changes stay out of the
        due set until it is committed, and if it fails they are simply due again (sent once more).
        """
        if self._writing is not None:
            if not wait:
                return
            self._collect_write(wait=True)
        if not self._published_acks and not self._confirmed and not self._rejected:
            return
        self._last_write = time.monotonic()
        now = self._wall_clock()
        acks, self._published_acks, self._unwritten = self._published_acks, [], 0
        confirmed, self._confirmed = self._confirmed, []
        rejected, self._rejected = self._rejected, {}
        self.stats.rejected += sum(len(ids) for ids in rejected.values())
        ok_ids = [i for item, ok, _ in acks if ok for i in item.ids]
        ok_events = [e for item, ok, _ in acks if ok for e in item.event_ids]
        self.stats.acked_by_broker += len(ok_ids)
        sent: list[int] = []
        confirm = confirmed
        if self.settings.broker_ack_confirms:
            confirm = ok_events + confirmed
        else:
            sent = ok_ids
            deadline = self._clock() + self.settings.ack_timeout_s
            for event_id in ok_events:
                if event_id in self._early_acks:
                    self._early_acks.discard(event_id)
                    continue
                self._awaiting.pop(event_id, None)  # re-inserted at the end: keeps deadline order
                self._awaiting[event_id] = deadline
        # Refused messages (0x10, 0x87, …): grouped by reason and back-off step.
        refused: dict[tuple[str, int], list[int]] = {}
        for item, ok, reason in acks:
            if not ok:
                refused.setdefault((reason, item.attempts), []).extend(item.ids)
        failed = []
        for (reason, attempts), ids in refused.items():
            self.stats.publish_failures += len(ids)
            self.stats.last_error = f"broker refused: {reason}"
            log.warning("broker refused %d events: %s; next attempt in %s", len(ids), reason,
                        self._backoff(attempts))
            failed.append((ids, f"broker refused: {reason}", now + self._backoff(attempts)))
        # The server's ack is awaited ack_timeout_s after a first send, twice that after a resend, and so on up
        # to retry_max_s: a server that is down is not sent the same backlog again every ack_timeout_s.
        resent: dict[int, list[int]] = {}
        if sent:
            for item, ok, _ in acks:
                if ok:
                    resent.setdefault(item.attempts, []).extend(item.ids)
        future = self.store.record_delivery_async(
            sent_groups=[(ids, now + self._ack_wait(attempts)) for attempts, ids in resent.items()], sent_at=now,
            failed=failed, confirmed=confirm, confirmed_at=now,
            rejected=[(ids, reason) for reason, ids in rejected.items()],
        )
        self._writing = _Write(future, [i for item, _, _ in acks for i in item.ids], confirmed)
        if wait:
            self._collect_write(wait=True)

    def _collect_write(self, *, wait: bool = False) -> None:
        """Take the result of the queued write once it is committed (or, with wait, wait for it)."""
        write = self._writing
        if write is None or not (wait or write.future.done()):
            return
        self._writing = None
        self._status_dirty = True
        try:
            changed = write.future.result()
        except Exception as exc:
            # Nothing of it was written (one transaction): its rows are due again and go once more.
            self.stats.last_error = f"outbox write failed: {exc}"
            log.error("writing the delivery of %d outbox rows and %d acks failed (%s); they are due again",
                      len(write.ids), len(write.acks), exc)
            return
        self.stats.confirmed += changed
        if not self.settings.broker_ack_confirms:
            self.stats.acks_unknown += len(set(write.acks)) - changed

    def _ack_wait(self, attempts: int) -> dt.timedelta:
        """How long the server's ack is awaited after the (attempts + 1)-th send."""
        first = self.settings.ack_timeout_s
        return dt.timedelta(seconds=min(max(first, self.settings.retry_max_s), first * (2 ** min(attempts, 20))))

    def _backoff(self, attempts: int) -> dt.timedelta:
        seconds = min(self.settings.retry_max_s, self.settings.retry_initial_s * (2 ** min(attempts, 20)))
        return dt.timedelta(seconds=seconds)

    def _expire_inflight(self) -> None:
        if not self.publisher.connected:
            return  # nothing can be acknowledged now; the clock starts again on reconnect
        limit = self._clock() - self.settings.puback_timeout_s
        expired = [m for m, item in self._inflight.items() if item.published_at < limit]
        if not expired:
            return
        ids = [i for m in expired for i in self._inflight.pop(m).ids]
        self.stats.last_error = f"no PUBACK from the broker within {self.settings.puback_timeout_s:g} s"
        log.warning("%d messages had no PUBACK within %g s; they are due again", len(expired),
                    self.settings.puback_timeout_s)
        self.store.mark_publish_failed(ids, self.stats.last_error, self._wall_clock())

    def _unconfirmed_room(self) -> int | None:
        """How many more events may be out before the server acks some (None: no limit)."""
        if self.settings.max_unconfirmed <= 0 or self.settings.broker_ack_confirms:
            return None
        now = self._clock()
        while self._awaiting:  # the server did not ack these in time: they are due again from the outbox
            event_id, deadline = next(iter(self._awaiting.items()))
            if deadline > now:
                break
            del self._awaiting[event_id]
        in_flight = sum(len(item.ids) for item in self._inflight.values())
        in_flight += self._unwritten  # acknowledged, not yet written
        return self.settings.max_unconfirmed - len(self._awaiting) - in_flight

    def _fill_window(self) -> None:
        room = self.settings.max_inflight - len(self._inflight)
        if room <= 0:
            return
        limit = room * self.settings.events_per_message
        unwritten = self._unwritten + (len(self._writing.ids) if self._writing is not None else 0)
        if unwritten >= self.settings.max_unwritten:
            return
        unconfirmed_room = self._unconfirmed_room()
        if unconfirmed_room is not None:
            limit = min(limit, unconfirmed_room)
            if limit <= 0:
                return
        if len(self._queued) < limit:
            self._read_due(limit)
        step = self.settings.events_per_message
        created_at = self._wall_clock().replace(tzinfo=dt.timezone.utc)
        queued, wanted = self._queued, self._queued_events
        taken = 0
        while queued and taken < limit:
            size = min(step, limit - taken)
            group: list[OutboxItem] = []
            while queued and len(group) < size:
                item = queued.popleft()
                if item.event_id in wanted:  # else the server acked it while it waited here
                    wanted.discard(item.event_id)
                    group.append(item)
            if not group:
                break
            if not self._publish(group, created_at):
                queued.extendleft(reversed(group))  # refused by the client: first in line next time
                wanted.update(item.event_id for item in group)
                break
            taken += len(group)

    def _read_due(self, limit: int) -> None:
        """Read due rows into the read-ahead queue: when told of new rows, while the last look found as many as
        it asked for, and otherwise four times a second for retries coming due (not on every 20 ms tick of an
        idle line)."""
        now = self._clock()
        if not (self._hint.is_set() or self._more_due or self._last_due_query is None
                or now - self._last_due_query >= 0.25):
            return
        self._hint.clear()
        self._last_due_query = now
        # In flight, acknowledged but not yet written, being written, or already read ahead: none is due,
        # whatever the outbox still says.
        busy = [i for item in self._inflight.values() for i in item.ids]
        busy += [i for item, _, _ in self._published_acks for i in item.ids]
        if self._writing is not None:
            busy += self._writing.ids
        busy += [item.id for item in self._queued]
        fetch = max(limit, self.settings.read_ahead)
        due = self.store.due_outbox(self._wall_clock(), limit=fetch, exclude_ids=busy)
        self._more_due = len(due) >= fetch
        # Acked by the server but not yet written as confirmed: not due either.
        acked = set(self._confirmed)
        if self._writing is not None:
            acked.update(self._writing.acks)
        if acked:
            due = [item for item in due if item.event_id not in acked]
        self._queued.extend(due)
        self._queued_events.update(item.event_id for item in due)

    def _publish(self, group: list[OutboxItem], created_at: dt.datetime) -> bool:
        payload = epcis.document_json([item.event_json for item in group], created_at=created_at,
                                      sender=self._sender)
        try:
            mid = self.publisher.publish(self.topics.events, payload, qos=1, retain=False)
        except PublisherError as exc:
            self.stats.last_error = str(exc)
            log.debug("publish refused: %s", exc)
            return False
        self._inflight[mid] = _InFlight(
            ids=[item.id for item in group], event_ids=[item.event_id for item in group],
            attempts=max(item.attempts for item in group), published_at=self._clock(),
        )
        self.stats.published += len(group)
        return True

    def _publish_status(self) -> None:
        now = self._clock()
        last = self._last_status
        if last is not None and not self._status_dirty and now - last < self.settings.status_interval_s:
            return
        if last is not None and now - last < 0.5:  # at most twice a second, however busy the line is
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
        payload["at"] = self._wall_clock().replace(tzinfo=dt.timezone.utc).isoformat(timespec="milliseconds")
        return payload
