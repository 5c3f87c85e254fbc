"""Outbox drain benchmark: N events (default 100,000) from the outbox to Mosquitto, against plain paho.

Everything runs against a private Mosquitto on a free port (persistence off, max_queued_messages above N), so
the machine's broker is not flooded. A plain subscriber in another process (paho, QoS 1, it only counts)
is subscribed to the events topic throughout, because Mosquitto answers a QoS 1 PUBLISH nobody is subscribed
to with PUBACK 0x10 (no matching subscribers), which the relay rightly treats as a failure.

  baseline   a plain paho 2.x client (MQTT v5) publishing the same N payloads (EPCIS documents of one event,
             as the relay builds them) at QoS 1 with at most `--window` (100) unacknowledged, counting PUBACKs;
             DESIGN.md: an unbounded loop stalls, so the bounded one is the fair baseline
  ours       a Store whose outbox holds N pending rows with real EPCIS event JSON (written straight into the
             table in big transactions, untimed), drained by Relay + MqttPublisher(MqttClient) in broker-ack
             delivery (RelaySettings(broker_ack_confirms=True, events_per_message=1, max_inflight=100)), timed from
             relay.start() until every row is confirmed (the relay's PUBACK rows committed to the outbox)
  server-ack (--server-ack M, default 10,000; 0 skips it) the same relay in the default server-ack delivery,
             with the real central service (`central ingest`, a SQLite file, every document validated) in its
             own process: a row counts when its ack is committed to the outbox

The relay runs once the counting subscriber has caught up with the baseline's messages, so neither run shares
the machine with the other's backlog. Besides the rates, the CPU this process spends per event (all its threads:
for ours the relay's, paho's and the database writer's) is printed: on a shared machine it moves less than the rates.

Targets (README.md, Benchmarks): ours >= 50 % of the baseline's rate, and N = 100,000 in <= 30 s. Figures are
printed; the exit code says only whether the benchmark itself ran.

    .venv/bin/python bench/outbox_bench.py [--events 100000] [--server-ack 10000] [--window 100]

One script of about 460 lines: the baseline, the relay's run and the server-ack run share the broker, the
filled outbox and the printout of the same conditions.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from tests.integration.mqtt_fixtures import MOSQUITTO, Broker  # noqa: E402

from conditions import cpu_model, disk_of, loadavg, version  # noqa: E402 (bench/ is the script's folder)

TARGET = "target: ours >= 50 % of the plain paho QoS 1 loop's rate, and 100,000 events in <= 30 s"
GTIN = "08938603001013"
LOT = "MX2611A"
RESOLVER = "truyxuat.hue.example.vn"
SITE, STATION = "hue-01", "line-1"
READ_POINT = f"https://{RESOLVER}/station/{SITE}/{STATION}"


# -- conditions ----------------------------------------------------------------------------------------------


def mosquitto_version() -> str:
    try:
        out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=5)
        first = (out.stdout or out.stderr).splitlines()[0]
        return first.replace("mosquitto version", "").strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def process_cpu() -> float:
    """CPU seconds of this process, all its threads (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def caught_up(count, expected: int, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Wait until the counting subscriber has (to its 500-message granularity) everything published so far, so
    the next run does not share the machine with its backlog; returns the seconds waited."""
    started = time.monotonic()
    while count.value < expected - 499 and time.monotonic() - started < timeout:
        time.sleep(0.01)
    return time.monotonic() - started




# -- a private broker ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def private_broker(folder: Path, max_queued: int):
    """The tests' Mosquitto launcher, persistence off, queues above the run's events."""
    broker = Broker(folder / "broker", persistence=False, log_types=("error", "warning"),
                    extra_config=f"max_queued_messages {max_queued}\n")
    with broker.start(timeout=10):
        yield broker.port, broker.config_lines


# -- the counting subscriber (its own process) ---------------------------------------------------------------


def subscriber_main(port: int, topic: str, ready, stop, count) -> None:  # type: ignore[no-untyped-def]
    received = 0
    subscribed = threading.Event()

    def on_message(client, userdata, message):  # type: ignore[no-untyped-def]
        nonlocal received
        received += 1
        if received % 500 == 0:
            count.value = received

    def on_subscribe(client, userdata, mid, reasons, properties):  # type: ignore[no-untyped-def]
        subscribed.set()

    def on_connect(client, userdata, flags, reason, properties):  # type: ignore[no-untyped-def]
        client.subscribe(topic, qos=1)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-counter-{uuid.uuid4().hex[:8]}",
                         protocol=paho.MQTTv5)
    client.on_message, client.on_subscribe, client.on_connect = on_message, on_subscribe, on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    if subscribed.wait(10):
        ready.set()
    stop.wait()
    count.value = received
    client.disconnect()
    client.loop_stop()


@contextlib.contextmanager
def counting_subscriber(port: int, topic: str):
    ctx = mp.get_context("spawn")
    ready, stop, count = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
    process = ctx.Process(target=subscriber_main, args=(port, topic, ready, stop, count), daemon=True,
                          name="bench-subscriber")
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the counting subscriber did not subscribe within 30 s")
        yield count
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)


# -- the payloads ---------------------------------------------------------------------------------------------


def make_events(count: int) -> list[dict]:
    """`count` activation events as the engine writes them: real station.epcis events with fresh eventIDs, serials
    and times. epcis.activation_event costs ~0.4 ms (biip builds and re-parses the EPC URI), so one real event
    per 1,000 is built that way and the others are that event with its eventID, EPC and time replaced."""
    from station import epcis
    from station.serials import SerialGenerator

    tz = dt.timezone(dt.timedelta(hours=7))
    serials = SerialGenerator(10)
    events: list[dict] = []
    template: dict = {}
    template_serial = ""
    for i in range(count):
        serial = serials.next()
        now = dt.datetime.now(tz)
        if i % 1000 == 0:
            template_serial = serial
            template = epcis.activation_event(
                gtin=GTIN, serial=serial, lot=LOT, expiry=dt.date(2027, 5, 28), event_time=now, tz_offset="+07:00",
                read_point=READ_POINT,
                extensions={f"{epcis.EXT_PREFIX}:site": SITE, f"{epcis.EXT_PREFIX}:station": STATION,
                            f"{epcis.EXT_PREFIX}:batchId": 1,
                            f"{epcis.EXT_PREFIX}:verification": {"result": "matched", "source": "verifier"}},
            )
            events.append(template)
            continue
        event = dict(template)
        event["eventID"] = f"urn:uuid:{uuid.uuid4()}"
        event["eventTime"] = epcis.format_time(now, "+07:00")
        event["epcList"] = [template["epcList"][0].replace(template_serial, serial)]
        events.append(event)
    return events


def documents(events: list[dict]) -> list[bytes]:
    """The payloads the relay publishes with events_per_message=1."""
    from station import epcis

    created = dt.datetime.now(dt.timezone.utc)
    return [json.dumps(epcis.document([e], created_at=created, sender=READ_POINT), ensure_ascii=False,
                       separators=(",", ":")).encode() for e in events]


def fill_outbox(path: Path, events: list[dict]) -> None:
    """A migrated station database whose outbox holds every event as a pending activation row (not timed)."""
    from station.store import Store

    Store(path).close()  # creates the file and runs the migrations
    past = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)).isoformat(" ")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for start in range(0, len(events), 20_000):
            chunk = events[start:start + 20_000]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO outbox (event_id, stamp_id, kind, event_json, state, attempts, created_at, "
                "next_attempt_at, last_error) VALUES (?, NULL, 'activation', ?, 'pending', 0, ?, ?, '')",
                [(e["eventID"], json.dumps(e, ensure_ascii=False, separators=(",", ":")), past, past) for e in chunk],
            )
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# -- the runs -------------------------------------------------------------------------------------------------


def run_baseline(port: int, topic: str, payloads: list[bytes], window: int, limit_s: float) -> dict:
    acks: Counter[int] = Counter()
    done = threading.Event()
    slots = threading.Semaphore(window)
    connected = threading.Event()
    total = len(payloads)
    acked = 0
    lock = threading.Lock()

    def on_connect(client, userdata, flags, reason, properties):  # type: ignore[no-untyped-def]
        connected.set()

    def on_publish(client, userdata, mid, reason, properties):  # type: ignore[no-untyped-def]
        nonlocal acked
        with lock:
            acks[reason.value] += 1
            acked += 1
            if acked >= total:
                done.set()
        slots.release()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-plain-{uuid.uuid4().hex[:8]}",
                         protocol=paho.MQTTv5)
    client.max_inflight_messages_set(window)
    client.on_connect, client.on_publish = on_connect, on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("baseline client did not connect")
        started, cpu = time.perf_counter(), process_cpu()
        deadline = time.monotonic() + limit_s
        for payload in payloads:
            while not slots.acquire(timeout=1.0):
                if time.monotonic() > deadline:
                    break
            if time.monotonic() > deadline:
                break
            client.publish(topic, payload, qos=1)
        done.wait(max(0.0, deadline - time.monotonic()))
        elapsed, cpu = time.perf_counter() - started, process_cpu() - cpu
    finally:
        client.disconnect()
        client.loop_stop()
    ok = sum(n for code, n in acks.items() if code < 0x80 and code != 0x10)
    return {"elapsed": elapsed, "cpu": cpu, "acked": acked, "ok": ok, "codes": dict(acks),
            "finished": acked >= total}


def run_relay(port: int, db: Path, prefix: str, count: int, window: int, broker_ack: bool, limit_s: float) -> dict:
    from app.devices import MqttPublisher
    from drivers.mqtt import MqttClient
    from station.domain import DeliveryState
    from station.relay import Relay, RelaySettings, Topics
    from station.store import Store

    store = Store(db)
    client = MqttClient(f"mqtt://127.0.0.1:{port}", f"bench-relay-{uuid.uuid4().hex[:8]}",
                        max_inflight=window, max_queued=window * 2 + 10, session_expiry=0)
    relay = Relay(store, MqttPublisher(client), Topics.for_station(prefix, SITE, STATION),
                  RelaySettings(broker_ack_confirms=broker_ack, events_per_message=1, max_inflight=window),
                  sender=READ_POINT)
    try:
        client.start()
        if not client.wait_connected(10):
            raise RuntimeError("the relay's MQTT client did not connect")
        started, cpu = time.perf_counter(), process_cpu()
        relay.start()
        deadline = time.monotonic() + limit_s
        while relay.stats.confirmed < count and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed, cpu = time.perf_counter() - started, process_cpu() - cpu
        relay.stop()
        counts = store.outbox_counts()
        stats = relay.stats
        return {"elapsed": elapsed, "cpu": cpu, "settings": relay.settings,
                "confirmed": counts[DeliveryState.CONFIRMED],
                "pending": counts[DeliveryState.PENDING], "sent": counts[DeliveryState.SENT],
                "published": stats.published, "failures": stats.publish_failures, "last_error": stats.last_error,
                "finished": counts[DeliveryState.CONFIRMED] >= count}
    finally:
        relay.stop()
        client.stop()
        store.close()


@contextlib.contextmanager
def central_process(port: int, prefix: str, folder: Path):
    """`central ingest` in its own process, on a SQLite file (the demo's database; PostgreSQL is
    bench/central_ingest_bench.py's subject)."""
    log = open(folder / "central.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "central", "ingest", "--broker", f"mqtt://127.0.0.1:{port}", "--prefix", prefix,
         "--db", f"sqlite:///{folder / 'central.db'}", "--client-id", f"bench-central-{uuid.uuid4().hex[:8]}",
         "--session-expiry", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # it prints one line once subscribed
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"central ingest exited: {(folder / 'central.log').read_text()[-500:]}")
            if " subscribed to " in line:
                break
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to drain (default %(default)s)")
    parser.add_argument("--server-ack", type=int, default=10_000,
                        help="events for the server-ack run with `central ingest` (0: skip)")
    parser.add_argument("--window", type=int, default=100, help="messages in flight (default %(default)s)")
    parser.add_argument("--limit", type=float, default=240.0, help="give a run up after this many seconds")
    args = parser.parse_args(argv)
    n, window = args.events, args.window
    m = min(args.server_ack, n)

    load_before = loadavg()
    setup_started = time.perf_counter()
    events = make_events(n)
    payloads = documents(events)
    sizes = [len(p) for p in payloads]
    row_size = len(json.dumps(events[0], ensure_ascii=False, separators=(",", ":")).encode())
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}/{SITE}/{STATION}/events"
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="station-outbox-bench-") as tmp:
        folder = Path(tmp)
        fill_outbox(folder / "station.db", events)
        if m:
            fill_outbox(folder / "station-ack.db", events[:m])
        setup_s = time.perf_counter() - setup_started
        with private_broker(folder, max_queued=max(1000, 2 * n)) as (port, broker_lines):
            with counting_subscriber(port, f"{prefix}/+/+/events") as count:
                before = count.value
                results["baseline"] = run_baseline(port, topic, payloads, window, args.limit)
                lag = before + results["baseline"]["acked"] - count.value
                waited = caught_up(count, before + results["baseline"]["acked"], timeout=60)
                results["between"] = {"lag": lag, "waited": waited}
                results["ours"] = run_relay(port, folder / "station.db", prefix, n, window, True, args.limit)
            results["received"] = {"count": count.value - before}
            if m:
                with central_process(port, prefix, folder):
                    results["server_ack"] = run_relay(port, folder / "station-ack.db", prefix, m, window, False,
                                                      args.limit)
        disk = disk_of(folder)
    load_after = loadavg()

    base, ours = results["baseline"], results["ours"]
    base_rate = base["acked"] / base["elapsed"]
    ours_rate = ours["confirmed"] / ours["elapsed"]
    ratio = ours_rate / base_rate if base_rate else 0.0
    print()
    print(f"Outbox drain benchmark — {n:,} events to a private Mosquitto")
    print(f"  machine   {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
          f"load average before {load_before}, after {load_after}")
    print(f"  python    {platform.python_version()}; paho-mqtt {version('paho-mqtt')} (MQTT v5), Mosquitto "
          f"{mosquitto_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy {version('sqlalchemy')}")
    print(f"  broker    127.0.0.1:{port}: " + "; ".join(l for l in broker_lines if not l.startswith(("log_", "user"))))
    print(f"  events    N={n:,}; payload {min(sizes)}–{max(sizes)} bytes (mean {sum(sizes) / len(sizes):.0f}): an "
          f"EPCISDocument with one activation ObjectEvent ({row_size}-byte event JSON in the outbox row)")
    print(f"  window    {window} messages in flight (paho max_inflight {window}), QoS 1; a counting subscriber "
          f"(QoS 1, own process) on {prefix}/+/+/events")
    print(f"  database  {folder} on {disk} (WAL, synchronous=FULL); outbox filled in {setup_s:.1f} s, untimed")
    shown = ("max_inflight", "events_per_message", "broker_ack_confirms", "read_ahead", "write_interval_s", "gather_s")
    settings = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(ours["settings"]).items() if k in shown)
    print(f"  relay     RelaySettings({settings}); MqttClient max_inflight {window}")
    between = results["between"]
    print(f"  order     baseline, then ours once the subscriber had caught up (it was {max(0, between['lag']):,} "
          f"messages behind when the baseline ended; waited {between['waited']:.1f} s)")
    print(f"  {TARGET}")
    print()
    header = f"{'what':<52}{'events':>9}{'time s':>9}{'events/s':>10}{'vs baseline':>13}"
    print(header)
    print("-" * len(header))
    print(f"{'baseline: plain paho QoS 1 loop, window ' + str(window):<52}{base['acked']:>9,}{base['elapsed']:>9.2f}"
          f"{base_rate:>10,.0f}{'1.00':>13}")
    print(f"{'ours: Relay, broker-ack delivery':<52}{ours['confirmed']:>9,}{ours['elapsed']:>9.2f}"
          f"{ours_rate:>10,.0f}{ratio:>13.2f}")
    if "server_ack" in results:
        sa = results["server_ack"]
        sa_rate = sa["confirmed"] / sa["elapsed"]
        print(f"{'ours: Relay, server-ack delivery (central ingest)':<52}{sa['confirmed']:>9,}{sa['elapsed']:>9.2f}"
              f"{sa_rate:>10,.0f}{sa_rate / base_rate if base_rate else 0:>13.2f}")
    print()
    base_us, ours_us = 1e6 * base["cpu"] / max(1, base["acked"]), 1e6 * ours["cpu"] / max(1, ours["confirmed"])
    print(f"  CPU of this process (every thread) per event: baseline {base_us:.0f} µs ({base['cpu']:.2f} s), ours "
          f"{ours_us:.0f} µs ({ours['cpu']:.2f} s); the broker and the subscriber are other processes")
    print(f"  baseline PUBACK reason codes: {', '.join(f'0x{c:02X} x{k}' for c, k in sorted(base['codes'].items()))}"
          f"{'' if base['finished'] else f' (gave up after {args.limit:g} s)'}")
    print(f"  ours: published {ours['published']:,}, refused by the broker {ours['failures']}, outbox confirmed "
          f"{ours['confirmed']:,} / sent {ours['sent']} / pending {ours['pending']}"
          f"{'' if ours['finished'] else f' (gave up after {args.limit:g} s)'}"
          f"{'; last error: ' + ours['last_error'] if ours['last_error'] else ''}")
    print(f"  counting subscriber received {results['received']['count']:,} messages (baseline + ours = {base['acked'] + ours['published']:,} published)")
    if "server_ack" in results:
        sa = results["server_ack"]
        print(f"  server-ack: {m:,} events, published {sa['published']:,} (a resend after ack_timeout counts "
              f"again), confirmed {sa['confirmed']:,}, pending {sa['pending']}, sent-not-acked {sa['sent']}"
              f"{'' if sa['finished'] else f' (gave up after {args.limit:g} s)'}")
    print()
    within = ours["finished"] and ours["elapsed"] * (100_000 / n) <= 30.0
    scaled = "" if n == 100_000 else f" (N={n:,}: {ours['elapsed']:.1f} s, scaled to 100,000: {ours['elapsed'] * 100_000 / n:.1f} s)"
    print(f"summary: drain rate {ours_rate:,.0f} events/s vs plain paho {base_rate:,.0f}/s = {ratio:.0%} "
          f"(target >= 50 %): {'met' if ratio >= 0.5 else 'NOT met'}")
    print(f"summary: {n:,} events drained in {ours['elapsed']:.1f} s (target <= 30 s for 100,000){scaled}: "
          f"{'met' if within else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
