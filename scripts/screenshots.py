"""Screenshots of the operator's and the technician's screens for the README, on the simulated line.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--language vi|en] [--size 1280x800]
                                            [--panels 1024x600,800x480]

Runs offscreen (no display needed): starts the printer, scanner and central simulators, uses the MQTT broker on
127.0.0.1:1883 (or starts a private Mosquitto), creates a batch, runs it, pulls the printer's paper, and saves
PNGs of each screen. The running line is also shot on each of the smaller panels (``operator-running-1024x600.png``
…), as a kiosk would show it full screen, and the paper-out alarm on the smallest. Run it again whenever the screens
change.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.line_harness import sim_line  # noqa: E402
from tests.integration.mqtt_fixtures import MACHINE_BROKER, Broker, listening  # noqa: E402
from ui.app import build_window  # noqa: E402
from ui.qt import QApplication, QDate  # noqa: E402


def wait(app: QApplication, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what or predicate}")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.strip().lower().split("x"))
    return width, height


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--language", choices=("vi", "en"), default="vi")
    parser.add_argument("--size", default="1280x800", help="window size, e.g. 1024x600 for a 7-inch panel")
    parser.add_argument("--panels", default="1024x600,800x480",
                        help="smaller panels to shoot the operator's screen on too (comma-separated, '' for none)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = parse_size(args.size)
    panels = [parse_size(p) for p in args.panels.split(",") if p.strip()]
    suffix = "" if args.language == "vi" else "-en"

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="station-shots-")))
        if listening(*MACHINE_BROKER):
            broker_url = f"mqtt://{MACHINE_BROKER[0]}:{MACHINE_BROKER[1]}"
        else:
            broker_url = stack.enter_context(Broker(folder / "broker")).url
        line = stack.enter_context(contextlib.contextmanager(sim_line)(folder, broker_url, read_delay=0.05))
        app = QApplication.instance() or QApplication(sys.argv[:1])
        window = build_window(line.config(), language=args.language, snapshot_ms=300)
        stack.callback(window.shutdown)
        window.resize(width, height)
        window.show()
        op = window.operator
        wait(app, lambda: op._ready and op.batches is not None, what="the station to start")
        shots: list[Path] = []

        def shot(name: str, widget=None) -> None:
            settle(app, 0.4)
            path = out / f"{name}{suffix}.png"
            (widget or window).grab().save(str(path))
            shots.append(path)

        def shot_on_panel(name: str, size: tuple[int, int]) -> None:
            """The window at a panel's size (what a kiosk shows full screen there), then back to the main size."""
            window.resize(*size)
            settle(app, 0.6)
            shot(f"{name}-{size[0]}x{size[1]}")
            window.resize(width, height)
            settle(app, 0.3)

        # a new batch, with two stages of its production diary
        dialog = op.new_batch()
        assert dialog is not None
        dialog.lot_edit.setText("MX2611A")
        dialog.planned_spin.setValue(500)
        dialog.add_stage("Thu hoạch mè", "02/11/2025", "Quảng Điền", "mè đen")
        dialog.add_stage("Rang và cán kẹo", QDate.currentDate().toString("dd/MM/yyyy"), "TP Huế")
        dialog.resize(900, 640)
        shot("operator-new-batch", dialog)
        dialog.submit()
        wait(app, lambda: (b := op.current_batch()) is not None and b.lot == "MX2611A", what="the new batch")

        # running
        line.scanner.set_rates(0.03, 0.0, 0.0)       # a few stamps not read, as on a real line
        op.count_spin.setValue(0)
        op.start_line()
        wait(app, lambda: op._snapshot is not None and op._snapshot.batch is not None
             and op._snapshot.batch.activated >= 60, timeout=60, what="60 activated stamps")
        settle(app, 1.0)
        shot("operator-running")
        if panels:
            # On the panels, the running line without a warning on top (an unread stamp raises one): the banner
            # is shown with the paper-out alarm.
            line.scanner.set_rates(0.0, 0.0, 0.0)
            settle(app, 3.0)
            op.acknowledge()
            for panel in panels:
                shot_on_panel("operator-running", panel)

        # paper out
        line.printer.paper_out = True
        wait(app, lambda: op.alarm_banner.isVisible() and op.state.value == "fault", what="the paper-out alarm")
        shot("operator-paper-out")
        if panels:
            shot_on_panel("operator-paper-out", min(panels))
        line.printer.paper_out = False
        op.stop_line()
        wait(app, lambda: op.state.value == "stopped", what="the line to stop")

        # technician
        window.show_technician()
        tech = window.technician
        tech._set_pin("00")
        shot("technician-pin")
        tech.submit_pin("0000")
        wait(app, lambda: tech.logged_in, what="the technician login")
        for text in ("https://truyxuat.hue.example.vn/01/08938603001013/10/MX2611A/21/TEST", "garbage\x01\x02"):
            line.scanner.inject(text)
        wait(app, lambda: tech.printer_status.rowCount() > 3 and tech.raw_lines.blockCount() >= 2,
             what="the devices tab")
        shot("technician-devices")
        tech.tabs.setCurrentIndex(1)
        tech.check_connection()
        wait(app, tech.check_button.isEnabled, what="the broker check")
        shot("technician-mqtt")
        tech.tabs.setCurrentIndex(2)
        wait(app, lambda: tech.label_image.pixmap() is not None and not tech.label_image.pixmap().isNull(),
             what="the label preview")
        shot("technician-label")
    for path in shots:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
