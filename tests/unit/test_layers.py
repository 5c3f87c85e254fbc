"""The layers stay clean: only ui/ imports Qt; station/ does no device I/O; drivers/ know nothing of batches."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["station", "drivers", "simulators", "app", "ui"]


def imports(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}: {name}" for path, name in imports(package)
            if name.split(".")[0] in forbidden]


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "ui"])
def test_only_ui_imports_qt(package: str) -> None:
    assert offenders(package, ("PyQt5", "PyQt6", "PySide2", "PySide6")) == []


def test_station_does_no_device_io() -> None:
    assert offenders("station", ("drivers", "simulators", "app", "ui", "serial", "socket", "paho", "zebra",
                                 "cv2", "pyzbar", "zxingcpp")) == []


def test_drivers_know_nothing_of_the_domain() -> None:
    assert offenders("drivers", ("station", "simulators", "app", "ui")) == []


def test_products_import_no_simulator() -> None:
    # The screens and the station command are the product: a simulator is a stand-in for a device, reached by its
    # URL. The one exception is app/sim.py, the `station sim …` and `station demo` commands, which start them.
    launches_simulators = {"app/sim.py"}
    found = [hit for package in ("ui", "app") for hit in offenders(package, ("simulators",))
             if hit.split(":")[0] not in launches_simulators]
    assert found == []


def test_the_screens_do_no_io() -> None:
    # The screens show and ask: what reaches a device, the broker, a file or the database is in app/ (or drivers/),
    # run on the bridge's worker. ui/app.py's socket is the wake-up pair that lets signals into Qt's loop.
    io = ("socket", "ssl", "serial", "paho", "subprocess", "sqlite3", "sqlalchemy", "tempfile", "yaml", "ruamel",
          "zebra", "cv2")
    found = [f"{path.relative_to(ROOT)}: {name}" for path, name in imports("ui")
             if name.split(".")[0] in io or name.startswith("station.store")]
    assert [hit for hit in found if hit != "ui/app.py: socket"] == []


def test_app_reaches_ui_only_to_open_the_screens() -> None:
    # ui/ is built on app/ (the screens drive app.runtime.Station); the one way back is the function that opens the
    # screens for `station run` and `station demo`, importing Qt only when a screen is asked for.
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                     else [])
            for name in names:
                if name.split(".")[0] != "ui":
                    continue
                inside = [f.name for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]
                found.append((str(path.relative_to(ROOT)), name, inside))
    assert found == [("app/cli.py", "ui.app", ["open_screen"])]


def test_simulators_stand_alone() -> None:
    assert offenders("simulators", ("station", "app", "ui")) == []


def test_no_simulator_branches_in_production_code() -> None:
    hits = []
    for package in ("station", "drivers"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#")[0].lower()
                if code.lstrip().startswith(("if ", "elif ")) and "simulat" in code:
                    hits.append(f"{path.relative_to(ROOT)}:{number}")
    assert hits == []


def test_central_stands_alone() -> None:
    # The second deployable shares only contracts/ with the station: no station code runs in it, and back.
    assert offenders("central", ("station", "drivers", "simulators", "app", "ui", "PyQt5")) == []
    for package in PACKAGES:
        assert offenders(package, ("central",)) == [], package


def test_contracts_are_pure() -> None:
    # Both deployables import contracts/: it may not pull in either of them, nor any I/O.
    assert offenders("contracts", ("central", "station", "drivers", "simulators", "app", "ui", "paho", "sqlalchemy",
                                   "socket", "serial", "fastapi")) == []
