"""What every benchmark prints about the machine it ran on: CPU, load, library versions, the disk under a file."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def disk_of(path: Path) -> str:
    """The mount (device, file system, options) holding path, from /proc/mounts; longest mount point wins."""
    real = os.path.realpath(path)
    best = None
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype, options, *_ = line.split()
            if real == mount or real.startswith(mount.rstrip("/") + "/"):
                if best is None or len(mount) > len(best[1]):
                    best = (device, mount, fstype, options)
    except OSError:
        return "unknown"
    if best is None:
        return "unknown"
    device, mount, fstype, options = best
    rotational = ""
    name = Path(device).name
    for candidate in (name, name.rstrip("0123456789")):
        flag = Path(f"/sys/block/{candidate}/queue/rotational")
        if flag.exists():
            rotational = ", rotational" if flag.read_text().strip() == "1" else ", non-rotational"
            break
    return f"{device} {fstype} mounted on {mount} ({options.split(',')[0]}{rotational})"
