"""`station demo`: the whole simulated line in one command, the simulators (`station sim line`) in a child process
of their own, as separate devices would be, and the station in this one: the operator screen where there is a
display, headless otherwise."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import local_central
from app.busy import busy, describe
from app.children import die_with_parent
from app.sim import CONTROL_PORTS, DEFAULT_LINK, line_endpoints, send_hint, stop_process
from station.config import load_config


def add_parser(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    demo_p = with_config(sub.add_parser(
        "demo", help="the whole simulated line: broker, simulators, the central service and the station"))
    demo_p.add_argument("--count", type=int, default=None, help="items to pack (default: until Ctrl-C)")
    demo_p.add_argument("--lot", default=None)
    demo_p.add_argument("--product", default=None)
    demo_p.add_argument("--headless", action="store_true", default=None,
                        help="no screen (default: the operator screen when a display is available)")
    demo_p.add_argument("--camera", action="store_true",
                        help="verify with the camera simulator over a conveyor with a photo-eye and a reject gate "
                             "(instead of the scanner)")
    demo_p.add_argument("--rate", type=float, default=5.0, help="conveyor items/s with --camera (default 5)")
    demo_p.add_argument("--start", action="store_true",
                        help="with the screen: press Start once the station is ready (a demo that runs by itself)")
    where = demo_p.add_argument_group(
        "ports and paths", "what the simulators take (each is checked free before anything starts; a second demo "
                           "beside the first needs other ones)")
    where.add_argument("--printer-port", type=int, default=9100, help="printer's raw ZPL port (default 9100)")
    where.add_argument("--printer-control-port", type=int, default=CONTROL_PORTS["printer"],
                       help="printer's control port (default 9101)")
    where.add_argument("--scanner-link", default=DEFAULT_LINK, help=f"scanner's pty link (default {DEFAULT_LINK})")
    where.add_argument("--scanner-control-port", type=int, default=CONTROL_PORTS["scanner"],
                       help="scanner's control port (default 9102)")
    where.add_argument("--camera-port", type=int, default=8081, help="with --camera: MJPEG stream (default 8081)")
    where.add_argument("--camera-control-port", type=int, default=CONTROL_PORTS["camera"],
                       help="with --camera: camera's control port (default 9103)")
    where.add_argument("--conveyor-port", type=int, default=9104,
                       help="with --camera: conveyor's line I/O port (default 9104)")
    where.add_argument("--conveyor-control-port", type=int, default=CONTROL_PORTS["conveyor"],
                       help="with --camera: conveyor's control port (default 9105)")
    where.add_argument("--central-port", type=int, default=local_central.DEFAULT_PORT,
                       help=f"the central service's trace pages, `central serve` (default {local_central.DEFAULT_PORT})")
    demo_p.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    """Simulators in a child process (as separate devices would be), then the station in this one: the operator
    screen where there is a display, headless otherwise.

    Exit codes: 0 when the demo ends as demos do (its count reached, or stopped with Ctrl-C, SIGTERM or SIGHUP: the
    line stops cleanly and the summary is printed), 1 when the line stopped on an alarm or the simulators did not
    start, 2 on a configuration error or a port or path already taken.
    """
    from app.cli import EXIT_INTERRUPTED, EXIT_OK, cmd_run, open_screen

    config = load_config(args.config)
    sim_args = argparse.Namespace(camera=args.camera, conveyor=args.camera, **{
        name: getattr(args, name) for name in (
            "printer_port", "printer_control_port", "scanner_link", "scanner_control_port", "camera_port",
            "camera_control_port", "conveyor_port", "conveyor_control_port", "central_port")})
    taken = busy(line_endpoints(sim_args, "line"))
    if taken:
        print(describe(taken, "station demo"), file=sys.stderr)
        return 2
    headless = args.headless
    if headless is None:
        from app.display import display_problem

        problem = display_problem()
        headless = problem is not None
        if problem is not None:
            print(f"demo: no display for the operator screen ({problem}): running headless", flush=True)
    ready = Path(tempfile.mkdtemp(prefix="station-demo-")) / "ready.json"
    command = [sys.executable, "-m", "app.cli", "sim", "line", "--ready-file", str(ready),
               "--printer-port", str(args.printer_port), "--printer-control-port", str(args.printer_control_port),
               "--scanner-link", args.scanner_link, "--scanner-control-port", str(args.scanner_control_port),
               "--camera-port", str(args.camera_port), "--camera-control-port", str(args.camera_control_port),
               "--conveyor-port", str(args.conveyor_port), "--conveyor-control-port", str(args.conveyor_control_port),
               "--central-port", str(args.central_port)]
    if args.config:
        command += ["--config", str(args.config)]
    if args.camera:
        # A belt 3,000 px/s under a 1280x720 camera: at 5 items/s a label shows in about twenty frames.
        command += ["--camera", "--conveyor", "--rate", str(args.rate), "--camera-fps", "30", "--camera-scale", "0.9",
                    "--camera-delay", "0.3", "--camera-speed", str(max(3000.0, 500.0 * args.rate))]
    # Its own session: the terminal's Ctrl-C reaches the station only, which stops the line while the simulators
    # still verify the stamps in flight, and stops them after. They die with this process whatever ends it.
    sims = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent())
    announcer: local_central.TraceAnnouncer | None = None
    try:
        deadline = time.monotonic() + 60     # the central service migrates and loads first
        while not ready.exists():
            if sims.poll() is not None:
                print("station demo: the simulators did not start (see the messages above)", file=sys.stderr)
                return 2 if sims.returncode == 2 else 1
            if time.monotonic() > deadline:
                print("station demo: the simulators and the central service were not ready within 60 s",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
        addresses = json.loads(ready.read_text(encoding="utf-8"))
        os.environ.setdefault("STATION_DEVICES__PRINTER__URL", addresses["printer_url"])
        verifier = addresses["camera_url"] if args.camera else addresses["scanner_url"]
        os.environ.setdefault("STATION_DEVICES__VERIFIER__URL", verifier)
        if args.camera:
            os.environ.setdefault("STATION_DEVICES__LINE_IO__URL", addresses["line_io_url"])
            os.environ.setdefault("STATION_LINE__TRIGGER", "photo_eye")
            os.environ.setdefault("STATION_LINE__PRINT_AHEAD", "16")
            os.environ.setdefault("STATION_LINE__VERIFY_TIMEOUT_S", "3")
        if args.camera:
            hint = f"  smudge some stamps:    {send_hint('camera', addresses['camera_control'], 'smudge 0.2')}"
        else:
            hint = f"  make the scanner miss: {send_hint('scanner', addresses['scanner_control'], 'no_read 0.2')}"
        trace_base = addresses["trace_base"]
        print(f"demo: printer {addresses['printer_url']}, verifier {verifier}, broker {config.mqtt.url}; the central "
              f"service (central ingest and central serve, database {addresses['central']['database']}) shows the "
              f"trace pages on {trace_base}: the stamps' https://{addresses['resolver']}/… links open there as "
              f"{trace_base}/…; {'Ctrl-C stops' if headless else 'opening the operator screen'}.\n"
              f"  pull the paper:        {send_hint('printer', addresses['printer_control'], 'paper_out on')}"
              "   (and paper_out off)\n" + hint, flush=True)
        station_db = Path(config.database.path)
        announcer = local_central.TraceAnnouncer(station_db, addresses["resolver"], trace_base).start()
        if not headless:
            # Ready to press Start: the demo's batch (today's, as headless) chosen, or started with --start.
            return open_screen(args.config, demo_batch=(args.product, args.lot), count=args.count,
                               start_line=args.start)
        run_args = argparse.Namespace(
            config=args.config, headless=True, count=args.count, product=args.product, lot=args.lot,
            drain_timeout=30.0, progress_every=2.0, auto_resume=True,
        )
        code = cmd_run(run_args)
        # Ctrl-C is how a demo is ended (and `make run` would report "Error 130" for it): a normal end.
        return EXIT_OK if code == EXIT_INTERRUPTED else code
    finally:
        if announcer is not None:
            announcer.stop()
        stop_process(sims)
        shutil.rmtree(ready.parent, ignore_errors=True)


__all__ = ["add_parser", "demo"]
