"""Central ingest benchmark: N events (default 100,000) from 20 simulated stations into PostgreSQL.

Everything runs on a private Mosquitto on a free port (persistence off, queues above N) and a throwaway database
on the machine's PostgreSQL (127.0.0.1:5432, or CENTRAL_BENCH_POSTGRES), dropped at the end. Three runs of the
same messages, one after another:

  transport  a plain paho 2.x subscriber (MQTT v5, QoS 1, another process) that only counts the messages, on the
             same shared subscription: the broker's and paho's limit
  database   a plain psycopg COPY of the same event rows into a copy of the events table: the database's limit
  ours       `central ingest --workers 2` (its own processes): validated, stored, committed, acked; timed until
             the stations have every event's `stored` ack. Then 1 % of the messages again (an outbox resending):
             each acked again, none stored twice.

The stations are 20 paho clients in one process, each publishing its share with at most 100 messages
unacknowledged (as the relay does), `--events-per-message` events a document (default: config/station.yaml's
mqtt.events_per_message). CPU seconds of each process tree are printed: every run shares the machine's cores
with the stations' publisher.

Targets (docs/central.md, Benchmarks): ours >= 50 % of the transport's rate and >= 10,000 events/s; every event
stored exactly once, duplicates acked. Figures are printed; the exit code says only whether the benchmark itself ran.

    .venv/bin/python bench/central_ingest_bench.py [--events 100000] [--stations 20] [--events-per-message N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402


from tests.central.throwaway import throwaway_database  # noqa: E402
from tests.integration.mqtt_fixtures import Broker  # noqa: E402

from conditions import cpu_model, loadavg, version  # noqa: E402

TARGET = "target: ours >= 50 % of the transport's rate and >= 10,000 events/s, every event stored once"
GTIN = "08938603001013"
ADMIN = os.environ.get("CENTRAL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "bench"
ICT = dt.timezone(dt.timedelta(hours=7))




def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        if current in stats:
            total += stats[current][1]
        pending += [p for p, (parent, _) in stats.items() if parent == current]
    return total


@contextlib.contextmanager
def private_broker(folder: Path, max_queued: int):
    """The tests' Mosquitto launcher, persistence off, queues and in-flight windows above the run's messages."""
    broker = Broker(folder / "broker", persistence=False, log_types=("error",),
                    extra_config=f"max_queued_messages {max_queued}\nmax_inflight_messages 1000\n")
    with broker.start(timeout=10):
        yield broker.port


def build_messages(events: int, stations: int, per_message: int) -> list[tuple[str, bytes, list[str]]]:
    """(topic, payload, eventIDs): station.epcis documents, as the relay sends them."""
    from station import epcis

    at = dt.datetime(2026, 11, 29, 8, 30, tzinfo=ICT)
    messages = []
    per_station = events // stations
    for s in range(stations):
        topic = f"{PREFIX}/hue-01/line-{s:02d}/events"
        batch: list[dict] = []
        for i in range(per_station):
            batch.append(epcis.activation_event(
                gtin=GTIN, serial=f"S{s:02d}{i:07d}", lot="MX2611A", expiry=dt.date(2027, 5, 28), event_time=at,
                read_point=f"https://truyxuat.hue.example.vn/station/hue-01/line-{s:02d}",
                extensions={"stn:site": "hue-01", "stn:station": f"line-{s:02d}", "stn:batchId": "7"}))
            if len(batch) == per_message or i == per_station - 1:
                body = epcis.document_json([json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in batch],
                                           at)
                messages.append((topic, body, [e["eventID"] for e in batch]))
                batch = []
    return messages


def stations_process(port: int, messages: list[tuple[str, bytes, list[str]]], stations: int, window: int,
                     started: mp.Value, acks: mp.Value, go: mp.Event, done: mp.Event) -> None:
    """20 station clients publishing their messages (bounded window each), counting the acks they get."""
    clients = []
    for s in range(stations):
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-station-{s}", protocol=paho.MQTTv5)
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(0)
        client.on_message = lambda _c, _u, _m: _count(acks)
        client.connect("127.0.0.1", port)
        client.subscribe(f"{PREFIX}/hue-01/line-{s:02d}/acks", qos=1)
        client.loop_start()
        clients.append(client)
    own = [[m for m in messages if m[0] == f"{PREFIX}/hue-01/line-{s:02d}/events"] for s in range(stations)]
    go.wait()
    started.value = time.monotonic()

    def publish(index: int) -> None:
        sem = threading.Semaphore(window)
        client = clients[index]
        client.on_publish = lambda _c, _u, _mid, _rc, _p: sem.release()
        for topic, body, _ in own[index]:
            sem.acquire()
            client.publish(topic, body, qos=1)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(stations)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.wait()
    for client in clients:
        client.disconnect()
        client.loop_stop()


_lock = threading.Lock()


def _count(counter: mp.Value, by: int = 1) -> None:
    with _lock:
        counter.value += by


def counting_subscriber(port: int, count: mp.Value, ready: mp.Event, done: mp.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter", protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, _m: _count(count)
    client.on_subscribe = lambda *_: ready.set()
    client.connect("127.0.0.1", port)
    client.subscribe(f"$share/count/{PREFIX}/+/+/events", qos=1)
    client.loop_start()
    done.wait()
    client.disconnect()
    client.loop_stop()


def run_transport(port: int, messages, stations: int, window: int, timeout: float) -> dict:
    ctx = mp.get_context("fork")
    count, started, acks = ctx.Value("q", 0), ctx.Value("d", 0.0), ctx.Value("q", 0)
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    counter = ctx.Process(target=counting_subscriber, args=(port, count, ready, done))
    counter.start()
    ready.wait(10)
    publisher = ctx.Process(target=stations_process, args=(port, messages, stations, window, started, acks, go, done))
    publisher.start()
    time.sleep(1.0)  # the 20 clients connect and subscribe (untimed)
    go.set()
    deadline = time.monotonic() + timeout
    while count.value < len(messages) and time.monotonic() < deadline:
        time.sleep(0.005)
    end = time.monotonic()
    cpu = {"subscriber": tree_cpu(counter.pid), "stations": tree_cpu(publisher.pid)}
    done.set()
    publisher.join(30)
    counter.join(30)
    return {"messages": count.value, "elapsed": end - started.value, "cpu": cpu}


def run_copy(url: str, messages) -> dict:
    from central.store import prepare

    now = dt.datetime.now(dt.timezone.utc)
    rows = [row for topic, body, _ in messages for row in prepare(topic, body, PREFIX, now).event_rows]
    columns = ["event_id", "site", "station", "event_type", "action", "biz_step", "disposition", "epc", "event_time",
               "event_time_zone_offset", "payload", "received_at"]
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE events_copy (LIKE events INCLUDING ALL)")
        conn.commit()
        started = time.monotonic()
        with conn.cursor() as cur, cur.copy(f"COPY events_copy ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c], ensure_ascii=False) if c == "payload" else row[c] for c in columns])
        conn.commit()
        elapsed = time.monotonic() - started
        stored = conn.execute("SELECT count(*) FROM events_copy").fetchone()[0]
        conn.execute("DROP TABLE events_copy")
    return {"rows": stored, "elapsed": elapsed}


def run_ours(port: int, url: str, messages, stations: int, window: int, workers: int, timeout: float) -> dict:
    sqlalchemy_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "central", "ingest", "--db", sqlalchemy_url, "--broker", f"mqtt://127.0.0.1:{port}",
         "--prefix", PREFIX, "--workers", str(workers), "--client-id", "bench-ingest", "--session-expiry", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        subscribed = 0
        assert ingest.stdout is not None
        for line in ingest.stdout:
            subscribed += "subscribed to" in line
            if subscribed == workers:
                break
        events = sum(len(ids) for *_, ids in messages)
        duplicates = messages[: max(1, len(messages) // 100)]
        ctx = mp.get_context("fork")
        started, acks = ctx.Value("d", 0.0), ctx.Value("q", 0)
        go, done = ctx.Event(), ctx.Event()
        publisher = ctx.Process(target=stations_process,
                                args=(port, messages + duplicates, stations, window, started, acks, go, done))
        publisher.start()
        time.sleep(1.0)
        idle_cpu = tree_cpu(ingest.pid)  # start-up (imports, migration, connections) kept out of the figure
        go.set()
        deadline = time.monotonic() + timeout
        stored_at = None
        expected = events + sum(len(ids) for *_, ids in duplicates)
        while acks.value < expected and time.monotonic() < deadline:
            if stored_at is None and acks.value >= events:
                stored_at = time.monotonic()
            time.sleep(0.005)
        end = time.monotonic()
        work_cpu = tree_cpu(ingest.pid) - idle_cpu
        cpu = {"ingest (2 workers)": round(work_cpu, 2), "stations": tree_cpu(publisher.pid),
               "ingest µs an event acked": round(work_cpu * 1e6 / max(1, acks.value))}
        done.set()
        publisher.join(30)
        with psycopg.connect(url) as conn:
            total, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        # The first `events` acks came for the first run of every message but the duplicated ones, which went last:
        # the rate is taken over every ack, first and duplicate, as they are all work done.
        return {"events": events, "acks": acks.value, "expected_acks": expected, "elapsed": end - started.value,
                "stored": total, "distinct": distinct, "cpu": cpu}
    finally:
        os.killpg(ingest.pid, signal.SIGTERM)
        ingest.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--stations", type=int, default=20)
    from station.config import load_yaml

    configured = load_yaml((ROOT / "config" / "station.yaml").read_text())["mqtt"].get("events_per_message", 1)
    parser.add_argument("--events-per-message", type=int, default=configured)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    print("central ingest benchmark")
    print(f"  machine: {cpu_model()}, {os.cpu_count()} cores, load {loadavg()}")
    print(f"  paho-mqtt {version('paho-mqtt')}, psycopg {version('psycopg')}, SQLAlchemy {version('SQLAlchemy')}, "
          f"jsonschema-rs {version('jsonschema_rs')}")
    messages = build_messages(args.events, args.stations, args.events_per_message)
    events = sum(len(ids) for *_, ids in messages)
    print(f"  {events:,} events in {len(messages):,} messages ({args.events_per_message} a message, "
          f"{sum(len(b) for _, b, _ in messages) / len(messages):,.0f} bytes each) from {args.stations} stations, "
          f"window {args.window} each")
    with tempfile.TemporaryDirectory() as folder, private_broker(Path(folder), 10 * len(messages)) as port, \
            throwaway_database(ADMIN, "central_bench") as url:
        from central import db

        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        transport = run_transport(port, messages, args.stations, args.window, args.timeout)
        t_rate = transport["messages"] * args.events_per_message / transport["elapsed"]
        print(f"transport: {transport['messages']:,} messages counted in {transport['elapsed']:.2f} s = "
              f"{t_rate:,.0f} events/s; CPU s {transport['cpu']}")
        copy = run_copy(url, messages)
        c_rate = copy["rows"] / copy["elapsed"]
        print(f"database:  COPY of {copy['rows']:,} rows in {copy['elapsed']:.2f} s = {c_rate:,.0f} rows/s")
        ours = run_ours(port, url, messages, args.stations, args.window, args.workers, args.timeout)
        o_rate = ours["acks"] / ours["elapsed"]
        print(f"ours:      {ours['acks']:,} of {ours['expected_acks']:,} acks ({ours['events']:,} events and 1 % "
              f"resent) in {ours['elapsed']:.2f} s = {o_rate:,.0f} events/s; stored {ours['stored']:,} rows, "
              f"{ours['distinct']:,} distinct; CPU s {ours['cpu']}")
    once = ours["stored"] == ours["distinct"] == events and ours["acks"] == ours["expected_acks"]
    ratio = o_rate / t_rate if t_rate else 0.0
    met = ratio >= 0.5 and o_rate >= 10_000 and once
    print(f"summary: ingest {o_rate:,.0f} events/s stored and acked vs transport {t_rate:,.0f}/s = {ratio:.0%}, "
          f"vs COPY {c_rate:,.0f} rows/s = {o_rate / c_rate:.0%}; exactly once: {'yes' if once else 'NO'} "
          f"({TARGET}: {'met' if met else 'not met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
