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
from typing import TYPE_CHECKING, Any

from drivers.errors import DeviceError
from station.config import ConfigError, StationConfig, dump_config, load_config, load_products, redact_url
from station.domain import StampState
from station.errors import LabelDoesNotFit, StationError

if TYPE_CHECKING:
    from app.runtime import Station
    from station.domain import Batch, Product
    from station.store import Store

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

def open_screen(config_path: Path | None, **options: Any) -> int:
    """Run the station with its screens (`ui.app.main`, its options). The one place app/ reaches ui/: the screens
    are built on the station (ui/ imports app/), and Qt is loaded only by a command that opens them."""
    from ui.app import main as ui_main

    return ui_main(config_path, **options)


def cmd_run(args: argparse.Namespace) -> int:
    if not args.headless:
        return open_screen(args.config, kiosk=args.kiosk, language=args.language)
    from app.runtime import RunOptions, Station
    from station.engine import AlarmRaised, LineEvent, LineState, StateChanged

    config = _config(args)
    # With nobody at the screen, a headless line resumes by itself once the printer is ready again.
    station = Station(config, RunOptions(auto_resume=True if args.auto_resume is None else args.auto_resume))
    if getattr(args, "mode", "printed") == "preprinted":
        station.enable_preprinted()
    line = station.line
    interrupted = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        try:
            print("\nstopping: stamps in flight get their verification window (Ctrl-C again to abort)",
                  file=sys.stderr)
        except OSError:          # the terminal that hung up (SIGHUP) takes no more output: stop all the same
            pass
        line.stop()

    stop_alarms: dict[str, str] = {}

    def on_event(event: LineEvent) -> None:
        if isinstance(event, AlarmRaised) and event.alarm.severity.value == "stop":
            stop_alarms[event.alarm.code] = str(event.alarm)
            print(f"ALARM {event.alarm}", file=sys.stderr, flush=True)
        elif isinstance(event, StateChanged) and event.state is LineState.FAULT and not event.clears_by_itself:
            # Only a person resumes from this fault (a foreign or duplicated stamp, a product mix-up, a refusal, a
            # batch locked, a printer fault without auto-resume), and a headless line has nobody: it stops, the
            # stamps in flight get their window, and the run ends on the alarm (exit 1).
            print(f"the line stopped on {event.reason}: a headless line cannot be resumed, ending the run",
                  file=sys.stderr, flush=True)
            line.stop(event.reason)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)      # a closed terminal or a logout: stop as cleanly
    line.add_listener(on_event)
    try:
        product, batch = _run_batch(station, args)
        station.start()
        print(f"station {config.station.site}/{config.station.id}: {product.name} ({product.gtin}), lot {batch.lot}, "
              f"printer {redact_url(config.devices.printer.url)}, verifier {redact_url(config.devices.verifier.url)}, "
              f"broker {station.mqtt.url}", flush=True)
        line.start(batch.id, args.count)
        last = 0.0
        while not line.wait(0.2):
            if time.monotonic() - last >= args.progress_every:
                last = time.monotonic()
                s = line.summary
                counts = station.store.outbox_counts()
                # The run's own figures, then the station's whole outbox (earlier runs' events too), said as such.
                print(f"[{line.state.value}] this run: printed {s.printed}, activated {s.activated}, "
                      f"voided {s.voided_total}; station outbox (all runs): "
                      f"{', '.join(f'{k.value} {v}' for k, v in counts.items())}", flush=True)
        if not interrupted.is_set() and args.drain_timeout > 0:
            station.relay.wait_drained(args.drain_timeout)
        summary = line.refresh_delivery()
        summary.delivery_problem = "; ".join(station.delivery_problems())
        summary.stop_alarm = stop_alarms.get(summary.stopped_by, "")
        print("summary:")
        for text in summary.lines():
            print(f"  {text}")
        sys.stdout.flush()
        if interrupted.is_set():
            return EXIT_INTERRUPTED
        if summary.stopped_by or summary.delivery_problem or (args.count is not None
                                                              and summary.activated < args.count):
            return EXIT_FAILED
        return EXIT_OK
    finally:
        station.stop()


def _run_batch(station: Station, args: argparse.Namespace) -> tuple[Product, Batch]:
    """The product and batch a headless run asked for, chosen before any device is opened. A product or lot the
    station refuses is an error in what the run was given, as a configuration error is: exit 2, nothing started."""
    try:
        product = station.product(args.product)
        return product, station.open_batch(product, args.lot)
    except (ConfigError, LabelDoesNotFit):   # LabelDoesNotFit has its own heading in main(): "batch refused"
        raise
    except StationError as exc:
        raise ConfigError(f"the run was not started: {exc}") from None


# -- station config / status -----------------------------------------------------------------------------------

def cmd_config_check(args: argparse.Namespace) -> int:
    config = _config(args)
    products = load_products(config.resolve(config.products_file))
    if args.show:
        print(dump_config(config), end="")
    print(f"{config.source}: valid; {len(products)} products; printer {redact_url(config.devices.printer.url)}; "
          f"verifier {redact_url(config.devices.verifier.url)}; broker {redact_url(config.mqtt.url)}")
    return EXIT_OK


def _existing_database(config: StationConfig) -> Path:
    """The station's database file for a command that only reads it: never created here (an empty one would
    answer with zeros, as if the station had done nothing). StationError naming the file it looked for."""
    path = config.database.path
    found = path.resolve()
    if found.is_file():
        return found
    where = f" (database.path in {config.source})" if config.source else ""
    relative = "" if path.is_absolute() else (f"; {path} is relative to the working directory {Path.cwd()}: run "
                                              f"the command in the station's folder, or set database.path to an "
                                              f"absolute path")
    raise StationError(f"no station database at {found}{where}{relative}")


def cmd_status(args: argparse.Namespace) -> int:
    from station.store import Store

    config = _config(args)
    with Store(_existing_database(config)) as store:
        counts = store.counts()
        print(f"database {store.path}")
        for state, n in sorted(counts.by_state.items(), key=lambda kv: kv[0].value):
            note = " (reserved, never printed: kept, not published, never reused)" if state.value == "unused" else ""
            print(f"  stamps {state.value}: {n}{note}")
        for reason, n in sorted(counts.voided_by_reason.items()):
            print(f"    voided {reason}: {n}")
        for state, n in store.outbox_counts().items():
            print(f"  outbox {state.value}: {n}")
        _print_delivery_problems(store)
        for rejected in store.rejected_events():
            when = f" at {rejected.at:%Y-%m-%d %H:%M:%S} UTC" if rejected.at else ""
            print(f"  rejected by the central server{when}, not resent: {rejected.kind} {rejected.event_id}: "
                  f"{rejected.reason}")
        if args.lot is not None:
            _print_batch(store, args.product, args.lot)
    return EXIT_OK


def _print_batch(store: Store, product: str | None, lot: str) -> None:
    """One batch's figures (``station status --lot``): what was printed of it, what became of it, its events."""
    from station.domain import DeliveryState
    from station.gs1 import normalize_gtin

    gtins = [normalize_gtin(product)] if product else [p.gtin for p in store.products()]
    found = [b for b in (store.find_batch(g, lot) for g in gtins) if b is not None]
    if not found:
        raise StationError(f"no batch with lot {lot!r}" + (f" for product {product}" if product else ""))
    for batch in found:
        counts = store.counts(batch.id)
        voids = ", ".join(f"{k} {v}" for k, v in sorted(counts.voided_by_reason.items())) or "none"
        allocated = counts.state(StampState.ALLOCATED)
        print(f"batch {batch.id} ({batch.gtin} lot {batch.lot}"
              + (", closed" if batch.closed else "") + (f", locked: {batch.lock_reason}" if batch.locked else "") + ")")
        in_flight = counts.state(StampState.SENT_TO_PRINTER) + counts.state(StampState.VERIFIED)
        print(f"  printed {counts.printed}: activated {counts.state(StampState.ACTIVATED)}, voided "
              f"{counts.state(StampState.VOIDED)} ({voids})" + (f", in flight {in_flight}" if in_flight else ""))
        print(f"  unused {counts.unused} (reserved, never printed: kept, not published, never reused)"
              + (f"; reserved now {allocated}" if allocated else ""))
        print("  events " + ", ".join(f"{state.value} {counts.delivery.get(state, 0)}" for state in DeliveryState))


def _print_delivery_problems(store: Store) -> None:
    """What the relay recorded of a broker refusing delivery, still open when it last tried (it may be another
    process, or a run that has ended)."""
    from station.alarms import CATALOGUE, Alarm

    problems = store.delivery_problems()
    if not problems:
        print("  delivery: no refusal by the broker recorded")
    for p in problems:
        said = str(Alarm.raise_(p.code, p.detail)) if p.code in CATALOGUE else f"[{p.code}] {p.detail}"
        print(f"  delivery refused by the broker since {p.started_at:%Y-%m-%d %H:%M:%S} UTC (last seen "
              f"{p.last_seen_at:%Y-%m-%d %H:%M:%S} UTC), events wait in the outbox: {said}")


# -- station camera … ------------------------------------------------------------------------------------------

def _camera_url(args: argparse.Namespace) -> str:
    from app.camera_tools import camera_url_of

    configured = None
    if not args.url:
        configured = _config(args).devices.verifier.url
    return camera_url_of(configured, args.url)


def cmd_camera_check(args: argparse.Namespace) -> int:
    from app.camera_tools import check_camera

    url = _camera_url(args)
    decoder = args.decoder or (_config(args).devices.verifier.decoder.value if not args.url else "zxing")
    print(f"checking {redact_url(url)} for {args.seconds:g} s with {decoder} …", flush=True)
    report = check_camera(url, args.seconds, decoder=decoder, progress=lambda line: print(line, flush=True))
    print("\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_camera_record(args: argparse.Namespace) -> int:
    from app.camera_tools import RecordError, record_camera

    url = _camera_url(args)
    seconds = None if args.frames and args.seconds is None else (args.seconds or 10.0)
    try:
        report = record_camera(url, args.to, seconds=seconds, frames=args.frames,
                               progress=lambda line: print(line, flush=True))
    except RecordError as exc:
        print(f"station: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print("\n".join(report.lines()))
    return EXIT_OK if report.frames else EXIT_FAILED


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
    run.add_argument("--mode", choices=["printed", "preprinted"], default="printed",
                     help="print each stamp (default), or activate stamps from registered pre-printed rolls")
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
    status.add_argument("--lot", default=None, help="and the figures of this batch (printed, activated, voided by "
                                                    "reason, unused, its events)")
    status.add_argument("--product", default=None, help="GTIN of the batch's product (with --lot; default any)")
    status.set_defaults(func=cmd_status)

    from app.cli_rolls import add_roll_parsers

    add_roll_parsers(sub, with_config)

    camera = sub.add_parser("camera", help="commissioning a verification camera: check what it sees, record it")
    camera_sub = camera.add_subparsers(dest="camera_command", required=True)
    cam_check = with_config(camera_sub.add_parser(
        "check", help="decode for a few seconds as the line would; report fps, resolution, reads, decode time, grades"))
    cam_check.add_argument("--url", default=None, help="camera URL (default: devices.verifier.url)")
    cam_check.add_argument("--seconds", type=float, default=10.0)
    cam_check.add_argument("--decoder", choices=["zxing", "pyzbar"], default=None,
                           help="decoder engine (default: devices.verifier.decoder)")
    cam_check.set_defaults(func=cmd_camera_check)
    cam_record = with_config(camera_sub.add_parser(
        "record", help="write the camera's frames to a folder, to replay later as folder:///…"))
    cam_record.add_argument("--to", type=Path, required=True, help="folder for frame_00000.jpg… and frames.json")
    cam_record.add_argument("--url", default=None, help="camera URL (default: devices.verifier.url)")
    cam_record.add_argument("--seconds", type=float, default=None, help="how long (default 10 s)")
    cam_record.add_argument("--frames", type=int, default=None, help="how many frames (instead of --seconds)")
    cam_record.set_defaults(func=cmd_camera_record)

    from app import demo, sim

    sim.add_parsers(sub, with_config)
    demo.add_parser(sub, with_config)
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
    except LabelDoesNotFit as exc:   # a batch given at start that the label cannot carry: like a bad setting, 2
        print(f"station: batch refused:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StationError, DeviceError) as exc:
        print(f"station: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
