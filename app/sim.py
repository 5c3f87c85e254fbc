"""`station sim …`: the simulated devices, alone or together (`station demo`, in app/demo.py, runs `sim line`).

About 470 lines: each simulator's options and the one function that starts any set of them in this process or in
children of their own, which read those options; the control-port clients are in simulators/client.py.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import local_central
from app.busy import Endpoint, busy, describe
from app.children import die_with_parent
from station.config import StationConfig, load_config

log = logging.getLogger(__name__)

DEFAULT_LINK = "/tmp/packing-station/scanner"
# The simulators' control ports (fault injection, status), as `station sim send DEVICE …` reaches them by default.
CONTROL_PORTS = {"printer": 9101, "scanner": 9102, "camera": 9103, "conveyor": 9105}


def add_parsers(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("sim", help="start simulated devices (printer, scanner, camera, conveyor) for testing")
    simsub = sim.add_subparsers(dest="sim_command", required=True)

    def printer_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--printer-port", type=int, default=9100, help="raw ZPL port (default 9100)")
        p.add_argument("--printer-control-port", type=int, default=CONTROL_PORTS["printer"],
                       help="fault-injection port: `station sim send printer paper_out on` (default 9101)")
        p.add_argument("--ips", type=float, default=None, help="print speed in inches per second (default: instant)")

    def scanner_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scanner-link", default=DEFAULT_LINK, help=f"stable path of the scanner's pty ({DEFAULT_LINK})")
        p.add_argument("--scanner-control-port", type=int, default=CONTROL_PORTS["scanner"],
                       help="scanner fault-injection port: no_read 0.1, misread 0.05, garbage 0.02, inject TEXT")
        p.add_argument("--read-delay", type=float, default=0.05, help="seconds from print to read (the conveyor)")
        p.add_argument("--no-read-rate", type=float, default=0.0)
        p.add_argument("--misread-rate", type=float, default=0.0)
        p.add_argument("--garbage-rate", type=float, default=0.0)
        p.add_argument("--seed", type=int, default=None, help="random seed for repeatable fault sequences")

    def central_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--broker", default=None, help="broker URL (default: the configuration's mqtt.url)")
        p.add_argument("--prefix", default=None, help="topic prefix (default: the configuration's mqtt.prefix)")
        p.add_argument("--central-db", default="sqlite:///var/central.db",
                       help="the central service's database (default %(default)s; postgresql+psycopg://… works too)")
        p.add_argument("--central-port", type=int, default=local_central.DEFAULT_PORT,
                       help=f"`central serve`'s port: the trace pages (default {local_central.DEFAULT_PORT})")
        p.add_argument("--no-ack", action="store_true",
                       help="`central ingest --no-ack`: store events but never ack (a server that lost its ack path)")
        p.add_argument("--central-client-id", default=None,
                       help="MQTT client id of `central ingest` (default central-demo-<prefix>; two with one id "
                            "take the session from each other)")

    def camera_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--camera-port", type=int, default=8081, help="MJPEG stream port (default 8081)")
        p.add_argument("--camera-control-port", type=int, default=CONTROL_PORTS["camera"],
                       help="camera fault-injection port: smudge 0.1, cut 0.05, foreign 0.01, no_label 0.1")
        p.add_argument("--camera-fps", type=float, default=30.0)
        p.add_argument("--camera-width", type=int, default=1280, help="frame width in pixels (default 1280)")
        p.add_argument("--camera-height", type=int, default=720,
                       help="frame height in pixels (default 720; a machine-vision camera's AOI over the belt can be "
                            "lower, for a higher frame rate)")
        p.add_argument("--camera-speed", type=float, default=3000.0, help="belt speed in the frame, pixels/s")
        p.add_argument("--camera-scale", type=float, default=1.1, help="label size in the frame (1 = 1 px a dot)")
        p.add_argument("--camera-delay", type=float, default=0.2, help="seconds from print to the camera's view")
        p.add_argument("--camera-mono", action="store_true",
                       help="a monochrome camera (gray JPEGs), as most industrial code readers are")

    def conveyor_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--conveyor-port", type=int, default=9104, help="line I/O port (lineio+tcp://, default 9104)")
        p.add_argument("--conveyor-control-port", type=int, default=CONTROL_PORTS["conveyor"],
                       help="conveyor control: rate 20, pause…")
        p.add_argument("--rate", type=float, default=5.0, help="items per second on the conveyor (default 5)")
        p.add_argument("--conveyor-paused", action="store_true",
                       help="start with the belt stopped (send 'resume' to the control port)")

    line = with_config(simsub.add_parser(
        "line", help="printer + verification scanner, and the central service (`central ingest` and `central serve` "
                     "on a SQLite file)"))
    printer_opts(line)
    scanner_opts(line)
    central_opts(line)
    camera_opts(line)
    conveyor_opts(line)
    line.add_argument("--camera", action="store_true",
                      help="verify with the camera simulator (an MJPEG stream) instead of the scanner")
    line.add_argument("--conveyor", action="store_true",
                      help="start the conveyor simulator: photo-eye triggers and a reject gate over lineio+tcp://")
    line.add_argument("--no-central", action="store_true", help="do not start the central service")
    line.add_argument("--no-broker", action="store_true",
                      help="never start a broker (by default one is started when none answers on loopback)")
    line.add_argument("--one-process", action="store_true",
                      help="run every simulator in this process (by default the camera and the conveyor run in "
                           "processes of their own, as separate devices would, so they use other cores; the central "
                           "service always does)")
    line.set_defaults(func=run)

    printer = simsub.add_parser("printer", help="a Zebra printer on TCP that keeps and renders every label")
    printer_opts(printer)
    printer.add_argument("--save-labels", type=Path, default=None, help="write each printed label here as PNG")
    printer.set_defaults(func=run)

    scanner = simsub.add_parser("scanner", help="a verification scanner on a pty, reading a printer simulator's labels")
    scanner_opts(scanner)
    scanner.add_argument("--printer-control", default="127.0.0.1:9101",
                         help="control address of the printer simulator whose labels it reads (host:port)")
    scanner.set_defaults(func=run)

    camera = simsub.add_parser("camera", help="a camera over the conveyor (MJPEG over HTTP), showing printed labels")
    camera_opts(camera)
    camera.add_argument("--printer-control", default="127.0.0.1:9101",
                        help="control address of the printer simulator whose labels it shows (host:port)")
    camera.set_defaults(func=run)

    conveyor = simsub.add_parser("conveyor", help="a conveyor: photo-eye triggers and a reject gate (lineio+tcp://)")
    conveyor_opts(conveyor)
    conveyor.set_defaults(func=run)

    send = simsub.add_parser(
        "send", help="send one command to a running simulator's control port and print its reply, "
                     "e.g. `station sim send printer paper_out on`",
        description="Send one command to a simulator's control port (the fault injection and status that the "
                    "demo prints) and print the reply. `station sim send DEVICE help` lists the commands.")
    send.add_argument("device", choices=sorted(CONTROL_PORTS), help="which simulator")
    send.add_argument("words", nargs="+", metavar="WORD", help="the command and its arguments, e.g. paper_out on")
    send.add_argument("--host", default="127.0.0.1", help="where the simulator runs (default 127.0.0.1)")
    send.add_argument("--port", type=int, default=None,
                      help="its control port (default: " + ", ".join(f"{d} {p}" for d, p in CONTROL_PORTS.items())
                           + ")")
    send.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the reply (default 5)")
    send.set_defaults(func=send_command)

    for parser in (camera, conveyor):
        parser.add_argument("--seed", type=int, default=None, help="random seed for repeatable sequences")
    for parser in (line, printer, scanner, camera, conveyor):
        parser.add_argument("--ready-file", type=Path, default=None,
                            help="write the addresses here as JSON once ready")


# -- building blocks -------------------------------------------------------------------------------------------

def _scanner_control(scanner: Any) -> dict[str, Callable[[list[str]], str]]:
    def rate(name: str) -> Callable[[list[str]], str]:
        def handler(args: list[str]) -> str:
            if not args:
                return str(scanner.rates[f"{name}_rate"])
            scanner.set_rates(**{f"{name}_rate": float(args[0])})
            return "ok"
        return handler

    def inject(args: list[str]) -> str:
        scanner.inject(" ".join(args))
        return "ok"

    return {
        "no_read": rate("no_read"), "misread": rate("misread"), "garbage": rate("garbage"), "inject": inject,
        "status": lambda _a: json.dumps({"port": scanner.port, "link": scanner.link, "rates": scanner.rates,
                                         "counts": scanner.counts}),
    }


def send_command(args: argparse.Namespace) -> int:
    """`station sim send DEVICE WORD…`: one command to a simulator's control port, its reply on stdout."""
    from simulators.client import send_command as send_line

    port = args.port if args.port is not None else CONTROL_PORTS[args.device]
    where = f"{args.host}:{port}"
    command = " ".join(args.words)
    if args.words[0].lower() in ("subscribe", "quit"):
        print(f"station sim send: {args.words[0]!r} is for simulators following the printer, not a command to send",
              file=sys.stderr)
        return 2
    try:
        text = send_line(args.host, port, command, args.timeout)
    except ConnectionRefusedError:
        print(f"station sim send: nothing listens on {where}, the {args.device} simulator's control port: start the "
              f"demo, `station sim line` or `station sim {args.device}` first, or give its port with --port",
              file=sys.stderr)
        return 1
    except socket.timeout:
        print(f"station sim send: no reply from {where} within {args.timeout:g} s", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"station sim send: cannot reach {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if not text:
        print(f"station sim send: {where} closed the connection without a reply (is it a simulator's control "
              "port?)", file=sys.stderr)
        return 1
    print(text)
    return 1 if text.startswith("error") else 0


def _station_command() -> str:
    """This command as the user's shell can call it again (`make run` runs .venv/bin/station)."""
    argv0 = sys.argv[0]
    if Path(argv0).name == "station":
        found = shutil.which("station")
        return "station" if found and Path(found).resolve() == Path(argv0).resolve() else argv0
    return f"{shlex.quote(sys.executable)} -m app.cli"


def send_hint(device: str, control_url: str, command: str) -> str:
    """The `station sim send` line that gives `command` to the simulator at control_url (tcp://host:port)."""
    host, _, port = control_url.removeprefix("tcp://").rpartition(":")
    where = "" if host in ("127.0.0.1", "") else f" --host {host}"
    if int(port) != CONTROL_PORTS[device]:
        where += f" --port {port}"
    return f"{_station_command()} sim send {device}{where} {command}"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)   # Ctrl-C; systemd, timeout, kill; a closed terminal


def _wait_forever(stop: threading.Event) -> None:
    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    while not stop.wait(0.5):
        pass


def _start_child(sim_args: list[str], what: str, timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`station sim <sim_args>` in a process of its own; returns it and the addresses it wrote once ready."""
    from simulators.errors import SimulatorError

    ready = Path(tempfile.mkdtemp(prefix="station-sim-")) / "ready.json"
    command = [sys.executable, "-m", "app.cli", "sim", *sim_args, "--ready-file", str(ready)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=die_with_parent())
    deadline = time.monotonic() + timeout
    try:
        while not ready.exists():
            if child.poll() is not None:
                raise SimulatorError(f"the {what} simulator exited with code {child.returncode} before it was "
                                     "ready (its messages are above)")
            if time.monotonic() > deadline:
                raise SimulatorError(f"the {what} simulator was not ready within {timeout:g} s")
            time.sleep(0.05)
        addresses: dict[str, Any] = json.loads(ready.read_text(encoding="utf-8"))
    except BaseException:
        stop_process(child)
        raise
    finally:
        shutil.rmtree(ready.parent, ignore_errors=True)
    log.info("%s simulator running as pid %d", what, child.pid)
    return child, addresses


def stop_process(child: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def line_endpoints(args: argparse.Namespace, kind: str) -> list[Endpoint]:
    """Every port and path `station sim <kind>` (and so the demo) will take, each with its option."""
    endpoints: list[Endpoint] = []
    if kind in ("line", "printer"):
        endpoints += [
            Endpoint("the printer simulator's ZPL port", "--printer-port", port=args.printer_port),
            Endpoint("the printer simulator's control port", "--printer-control-port", port=args.printer_control_port),
        ]
    if kind == "scanner" or (kind == "line" and not args.camera):
        endpoints += [
            Endpoint("the scanner simulator's serial port link", "--scanner-link", path=args.scanner_link or None),
            Endpoint("the scanner simulator's control port", "--scanner-control-port", port=args.scanner_control_port),
        ]
    if kind == "camera" or (kind == "line" and args.camera):
        endpoints += [
            Endpoint("the camera simulator's MJPEG stream", "--camera-port", port=args.camera_port),
            Endpoint("the camera simulator's control port", "--camera-control-port", port=args.camera_control_port),
        ]
    if kind == "conveyor" or (kind == "line" and args.conveyor):
        endpoints += [
            Endpoint("the conveyor simulator's line I/O port", "--conveyor-port", port=args.conveyor_port),
            Endpoint("the conveyor simulator's control port", "--conveyor-control-port",
                     port=args.conveyor_control_port),
        ]
    if kind == "line" and not getattr(args, "no_central", False):
        endpoints.append(Endpoint("the central service's trace pages (`central serve`)", "--central-port",
                                  port=args.central_port))
    return endpoints


def run(args: argparse.Namespace) -> int:
    """`station sim line|printer|scanner|camera|conveyor`: check that every port and path it takes is free,
    start, print the addresses, run until Ctrl-C (or SIGTERM, SIGHUP)."""
    from app.broker import BrokerError
    from simulators.errors import SimulatorError

    command = f"station sim {args.sim_command}"
    taken = busy(line_endpoints(args, args.sim_command))
    if taken:
        print(describe(taken, command), file=sys.stderr)
        return 2
    try:
        return _run(args)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"{command}: {exc.strerror} while the simulators started (taken since the check?): run it again, or "
              "choose other ports (--help lists the options)", file=sys.stderr)
        return 2
    except (SimulatorError, BrokerError, local_central.CentralStartError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from simulators.client import follow_printer
    from simulators.control import CommandServer

    kind = args.sim_command
    stop = threading.Event()
    started: list[Any] = []
    children: list[subprocess.Popen[bytes]] = []
    addresses: dict[str, Any] = {}
    broker_proc = None
    config: StationConfig | None = None
    try:
        if kind == "line":
            config = load_config(args.config)
        if kind in ("line", "printer"):
            from simulators.printer import PrinterSimulator

            printer = PrinterSimulator(port=args.printer_port, control_port=args.printer_control_port, ips=args.ips)
            printer.start()
            started.append(printer)
            addresses["printer_url"] = printer.url
            addresses["printer_control"] = printer.control_url
            if getattr(args, "save_labels", None):
                folder: Path = args.save_labels
                folder.mkdir(parents=True, exist_ok=True)
                printer.add_listener(lambda label: label.image and label.image.save(folder / f"{label.index:06d}.png"))
        apart = kind == "line" and not args.one_process
        if kind == "line" and args.camera and apart:
            # Its own process: rendering 100+ frames a second must not share a GIL with the printer.
            child, child_addresses = _start_child(
                ["camera", "--printer-control", printer.control_url.removeprefix("tcp://"),
                 "--camera-port", str(args.camera_port), "--camera-control-port", str(args.camera_control_port),
                 "--camera-fps", str(args.camera_fps), "--camera-width", str(args.camera_width),
                 "--camera-height", str(args.camera_height), "--camera-speed", str(args.camera_speed),
                 "--camera-scale", str(args.camera_scale), "--camera-delay", str(args.camera_delay)]
                + (["--camera-mono"] if args.camera_mono else [])
                + (["--seed", str(args.seed)] if args.seed is not None else []), "camera")
            children.append(child)
            addresses.update(child_addresses)
        elif kind == "camera" or (kind == "line" and args.camera):
            from simulators.camera import CameraSimulator

            camera = CameraSimulator(width=args.camera_width, height=args.camera_height, fps=args.camera_fps,
                                     port=args.camera_port, seed=getattr(args, "seed", None),
                                     delay=args.camera_delay, control_port=args.camera_control_port,
                                     speed=args.camera_speed, scale=args.camera_scale, mono=args.camera_mono)
            camera.start()
            started.append(camera)
            addresses["camera_url"] = camera.url
            addresses["camera_control"] = f"tcp://127.0.0.1:{camera.control_port}"
            if kind == "line":
                printer.add_listener(camera.on_label)
            else:
                follow_printer(args.printer_control, camera.on_label, stop)
        if kind == "line" and args.conveyor and apart:
            child, child_addresses = _start_child(
                ["conveyor", "--conveyor-port", str(args.conveyor_port), "--conveyor-control-port",
                 str(args.conveyor_control_port), "--rate", str(args.rate)]
                + (["--conveyor-paused"] if args.conveyor_paused else [])
                + (["--seed", str(args.seed)] if args.seed is not None else []), "conveyor")
            children.append(child)
            addresses.update(child_addresses)
        elif kind == "conveyor" or (kind == "line" and args.conveyor):
            from simulators.conveyor import ConveyorSimulator

            conveyor = ConveyorSimulator(port=args.conveyor_port, rate=args.rate, control_port=args.conveyor_control_port,
                                         seed=getattr(args, "seed", None), paused=args.conveyor_paused)
            conveyor.start()
            started.append(conveyor)
            addresses["line_io_url"] = conveyor.url
            addresses["conveyor_control"] = conveyor.control_url
        if kind == "scanner" or (kind == "line" and not args.camera):
            from simulators.scanner import ScannerSimulator

            scanner = ScannerSimulator(link=args.scanner_link, no_read_rate=args.no_read_rate,
                                       misread_rate=args.misread_rate, garbage_rate=args.garbage_rate,
                                       read_delay=args.read_delay, seed=args.seed)
            scanner.start()
            started.append(scanner)
            control = CommandServer(_scanner_control(scanner), port=args.scanner_control_port,
                                    name="scanner-control").start()
            started.append(control)
            addresses["scanner_url"] = f"serial://{scanner.link or scanner.port}?baud=115200"
            addresses["scanner_port"] = scanner.port
            addresses["scanner_control"] = f"tcp://127.0.0.1:{control.port}"
            if kind == "line":
                printer.add_listener(scanner.on_label)
            else:
                follow_printer(args.printer_control, scanner.on_label, stop)
        if kind == "line" and not args.no_central:
            from app.broker import ensure_broker
            from station.config import load_products

            assert config is not None
            broker_url = args.broker or config.mqtt.url
            if not args.no_broker:
                broker_proc = ensure_broker(broker_url, Path("var/broker"))
                if broker_proc is not None:
                    addresses["broker_started"] = f"mosquitto pid {broker_proc.pid}"
            prefix = args.prefix or config.mqtt.prefix
            # The real service, in processes of its own (the station never imports it): ingest stores and acks the
            # station's events, serve answers the stamps' Digital Links on 127.0.0.1.
            central = local_central.start(
                db_url=args.central_db, broker_url=broker_url, prefix=prefix,
                client_id=args.central_client_id or f"central-demo-{prefix.replace('/', '-')}",
                port=args.central_port, products=load_products(config.resolve(config.products_file)),
                send_acks=not args.no_ack)
            children.extend(central.children)
            addresses["central"] = central.describe()
            addresses["trace_base"] = central.web_url
            addresses["resolver"] = config.station.resolver
            addresses["broker"] = broker_url
        print("simulated devices ready:")
        for key, value in addresses.items():
            print(f"  {key}: {value}")
        if "printer_url" in addresses:
            print("configure the station with, for example:")
            print(f"  STATION_DEVICES__PRINTER__URL={addresses['printer_url']}")
        if "scanner_url" in addresses:
            print(f"  STATION_DEVICES__VERIFIER__URL={addresses['scanner_url']}")
        if "camera_url" in addresses:
            print(f"  STATION_DEVICES__VERIFIER__URL={addresses['camera_url']}")
        if "line_io_url" in addresses:
            print(f"  STATION_DEVICES__LINE_IO__URL={addresses['line_io_url']}  STATION_LINE__TRIGGER=photo_eye")
        sys.stdout.flush()
        ready_file = getattr(args, "ready_file", None)
        if ready_file:
            tmp = Path(f"{ready_file}.tmp")
            tmp.write_text(json.dumps(addresses), encoding="utf-8")
            tmp.replace(ready_file)
        _wait_forever(stop)
        return 0
    finally:
        stop.set()
        for child in reversed(children):   # first: the camera follows the printer stopped below
            stop_process(child)
        for device in reversed(started):
            try:
                device.stop()
            except Exception:
                log.exception("stopping %s failed", type(device).__name__)
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(5)
