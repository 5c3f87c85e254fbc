"""The `station` command: run the line, start the simulators, check a configuration, show counts."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from drivers.errors import DeviceError
from station.config import ConfigError, StationConfig, dump_config, load_config, load_products
from station.errors import StationError

log = logging.getLogger("station")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> StationConfig:
    return load_config(args.config)


# -- station run -----------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    if not args.headless:
        from ui.app import main as ui_main

        return ui_main(args.config, kiosk=args.kiosk, language=args.language)
    from app.runtime import RunOptions, Station
    from station.engine import AlarmRaised, LineEvent

    config = _config(args)
    # With nobody at the screen, a headless line resumes by itself once the printer is ready again.
    station = Station(config, RunOptions(auto_resume=True if args.auto_resume is None else args.auto_resume))
    interrupted = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        print("\nstopping: stamps in flight get their verification window (Ctrl-C again to abort)",
              file=sys.stderr)
        station.engine.stop()

    def on_event(event: LineEvent) -> None:
        if isinstance(event, AlarmRaised) and event.alarm.severity.value == "stop":
            print(f"ALARM {event.alarm}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    station.engine.add_listener(on_event)
    try:
        station.start()
        product = station.product(args.product)
        batch = station.open_batch(product, args.lot)
        print(f"station {config.station.site}/{config.station.id}: {product.name} ({product.gtin}), lot {batch.lot}, "
              f"printer {config.devices.printer.url}, verifier {config.devices.verifier.url}, "
              f"broker {station.mqtt.url}", flush=True)
        station.engine.start(batch.id, args.count)
        last = 0.0
        while not station.engine.wait(0.2):
            if time.monotonic() - last >= args.progress_every:
                last = time.monotonic()
                s = station.engine.summary
                counts = station.store.outbox_counts()
                print(f"[{station.engine.state.value}] printed {s.printed}, activated {s.activated}, "
                      f"voided {s.voided_total}, outbox {', '.join(f'{k.value} {v}' for k, v in counts.items())}",
                      flush=True)
        if not interrupted.is_set() and args.drain_timeout > 0:
            station.relay.wait_drained(args.drain_timeout)
        summary = station.engine.refresh_delivery()
        print("summary:")
        for line in summary.lines():
            print(f"  {line}")
        sys.stdout.flush()
        if interrupted.is_set():
            return EXIT_INTERRUPTED
        if summary.stopped_by or (args.count is not None and summary.activated < args.count):
            return EXIT_FAILED
        return EXIT_OK
    finally:
        station.stop()


# -- station config / status -----------------------------------------------------------------------------------

def cmd_config_check(args: argparse.Namespace) -> int:
    config = _config(args)
    products = load_products(config.resolve(config.products_file))
    if args.show:
        print(dump_config(config), end="")
    print(f"{config.source}: valid; {len(products)} products; printer {config.devices.printer.url}; "
          f"verifier {config.devices.verifier.url}; broker {config.mqtt.url}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from station.store import Store

    config = _config(args)
    with Store(config.database.path) as store:
        counts = store.counts()
        print(f"database {config.database.path}")
        for state, n in sorted(counts.by_state.items(), key=lambda kv: kv[0].value):
            print(f"  stamps {state.value}: {n}")
        for reason, n in sorted(counts.voided_by_reason.items()):
            print(f"    voided {reason}: {n}")
        for state, n in store.outbox_counts().items():
            print(f"  outbox {state.value}: {n}")
    return EXIT_OK


# -- station sim … ---------------------------------------------------------------------------------------------

def cmd_sim(args: argparse.Namespace) -> int:
    from app import sim

    return sim.run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from app import sim

    return sim.demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="station", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("-c", "--config", type=Path, default=None,
                       help="configuration file (default: $STATION_CONFIG or config/station.yaml)")
        return p

    run = with_config(sub.add_parser("run", help="run the line on the configured devices"))
    run.add_argument("--headless", action="store_true", help="no screen: log progress, print a summary at the end")
    run.add_argument("--kiosk", action="store_true", default=None,
                     help="full screen without window decorations (default: ui.kiosk)")
    run.add_argument("--language", choices=["vi", "en"], default=None, help="screen language (default: ui.language)")
    run.add_argument("--count", type=int, default=None, help="items to pack (activated stamps); default: until Ctrl-C")
    run.add_argument("--product", default=None, help="GTIN of the product (default: the first in the product list)")
    run.add_argument("--lot", default=None, help="batch lot (created if new; default L<yymmdd>)")
    run.add_argument("--drain-timeout", type=float, default=30.0,
                     help="seconds to wait at the end for the server to confirm every event (default 30)")
    run.add_argument("--progress-every", type=float, default=2.0, help="seconds between progress lines")
    resume = run.add_mutually_exclusive_group()
    resume.add_argument("--auto-resume", dest="auto_resume", action="store_true", default=None,
                        help="resume by itself when the printer is ready again (headless default)")
    resume.add_argument("--manual-resume", dest="auto_resume", action="store_false")
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = with_config(config_sub.add_parser("check", help="validate the configuration and the product list"))
    check.add_argument("--show", action="store_true", help="print the effective configuration (file + environment)")
    check.set_defaults(func=cmd_config_check)

    status = with_config(sub.add_parser("status", help="stamp and outbox counts from the local database"))
    status.set_defaults(func=cmd_status)

    from app import sim

    sim.add_parsers(sub, with_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"station: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StationError, DeviceError) as exc:
        print(f"station: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
