"""The `central` command: migrate, ingest, serve, and load master data."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from central.errors import CentralError
from contracts.errors import ContractError

DB_HELP = "SQLAlchemy URL: postgresql+psycopg://user@host/db (sqlite:///file.db for a demo only)"


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help=DB_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="central", description="The central traceability service.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every batch")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="bring the database to the current schema (Alembic)")
    _add_db(migrate)

    ingest = commands.add_parser("ingest", help="store the stations' EPCIS events from MQTT and ack them")
    _add_db(ingest)
    ingest.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port or mqtts://host:port"
                        " (the password may come from CENTRAL_MQTT_PASSWORD)")
    ingest.add_argument("--prefix", default="truyxuat", help="topic prefix (default %(default)s)")
    ingest.add_argument("--group", default="ingest", help="shared subscription group (default %(default)s)")
    ingest.add_argument("--workers", type=int, default=1, help="worker processes (default %(default)s)")
    ingest.add_argument("--client-id", default=None, help="MQTT client id (workers add -N)")
    ingest.add_argument("--batch-size", type=int, default=500, help="messages per transaction at most")
    ingest.add_argument("--batch-wait", type=float, default=0.005, help="seconds a batch waits for more")
    ingest.add_argument("--session-expiry", type=int, default=3600, help="seconds the broker keeps a session")
    ingest.add_argument("--ca-file", default=None, help="CA certificate for mqtts://")
    ingest.add_argument("--no-ack", action="store_true", help="store but send no acks (a fault, for tests)")
    ingest.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")

    serve = commands.add_parser("serve", help="answer the stamps' Digital Links: the trace page, linksets, events")
    _add_db(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--public-url", default=None, help="the base URL links point to (default http://HOST:PORT)")
    serve.add_argument("--copy-threshold", type=int, default=50,
                       help="checks of one stamp after which the page warns of a copied stamp")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")

    report = commands.add_parser("report", help="the programme's periodic figures: text, CSV and an EPCIS document")
    _add_db(report)
    report.add_argument("--from", dest="start", required=True, type=_date, help="first day, YYYY-MM-DD")
    report.add_argument("--to", dest="end", required=True, type=_date, help="last day (included), YYYY-MM-DD")
    report.add_argument("--offset", default="+07:00", help="the days' UTC offset (default %(default)s)")
    report.add_argument("--csv", type=Path, default=None, help="write the rows as CSV here")
    report.add_argument("--epcis", type=Path, default=None, help="write the period's events as an EPCIS document here")
    report.add_argument("--plan-per-year", type=int, default=100_000, help="stamps a year in the plan")
    report.add_argument("--plan-producers", type=int, default=5, help="producers in the plan")
    report.add_argument("--copy-threshold", type=int, default=50, help="checks that make a stamp a suspected copy")

    load = commands.add_parser("load", help="load master data (producers, products, batches, diaries) from JSON/YAML")
    _add_db(load)
    load.add_argument("file", help="a JSON or YAML file: {producers: [...], products: [...], batches: [...]}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return _dispatch(args)
    except (CentralError, ContractError) as exc:
        print(f"central {args.command}: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from central import db

    if args.command == "migrate":
        engine = db.make_engine(args.db)
        db.upgrade(engine)
        print(f"central migrate: {db.describe(engine)} is at the current schema")
        return 0
    if args.command == "ingest":
        from central.ingest import IngestSettings, run

        if args.workers < 1:
            raise CentralError("--workers must be at least 1")
        settings = IngestSettings(
            db=args.db, broker=args.broker, prefix=args.prefix, group=args.group, client_id=args.client_id,
            batch_size=args.batch_size, batch_wait_s=args.batch_wait, session_expiry_s=args.session_expiry,
            ca_file=args.ca_file, send_acks=not args.no_ack,
        )
        return run(settings, args.workers, migrate=not args.no_migrate)
    if args.command == "serve":
        from central.web import serve

        return serve(args)
    if args.command == "report":
        from central import report

        if not re.fullmatch(r"[+-]\d{2}:\d{2}", args.offset):
            raise CentralError(f"--offset {args.offset!r}: expected ±HH:MM")
        engine = db.make_engine(args.db)
        built = report.build(engine, args.start, args.end, offset=args.offset, copy_threshold=args.copy_threshold,
                             plan_per_year=args.plan_per_year, plan_producers=args.plan_producers)
        print(report.text(built), end="")
        if args.csv is not None:
            with args.csv.open("w", encoding="utf-8", newline="") as out:
                report.write_csv(built, out)
            print(f"CSV: {args.csv}")
        if args.epcis is not None:
            count = report.write_epcis(engine, built, args.epcis)
            print(f"EPCIS: {args.epcis} ({count:,} events)")
        return 0
    if args.command == "load":
        from central.masterdata import load_file

        engine = db.make_engine(args.db)
        db.upgrade(engine)
        counts = load_file(engine, args.file)
        print("central load: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
