"""Before the simulated line starts anything: is every port and path it will take free, and if not, who holds it.

A second demo, or a demo beside a program on one of its ports, used to end in a raw ``OSError: Address already in
use`` from whichever simulator lost the race. ``busy(endpoints)`` finds each one in use, names what holds it
where Linux's /proc can tell (the listening socket's inode in /proc/net/tcp, then the process with that socket
open), and ``describe`` says which option chooses another.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Endpoint:
    """One port (host, port) or one path the simulated line takes, with the option that sets it."""

    what: str                 # "the printer simulator's control port"
    option: str               # "--printer-control-port"
    port: int | None = None
    path: str | None = None
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Busy:
    endpoint: Endpoint
    reason: str               # "in use by pid 4242 (station demo)", "not allowed (ports below 1024 need root)"


def _port_problem(host: str, port: int) -> str | None:
    # The simulators bind with SO_REUSEADDR (socket.create_server does): a port in TIME_WAIT is free for them too.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                holder = who_holds_port(port)
                return f"in use by {holder}" if holder else "in use"
            if exc.errno == errno.EACCES:
                return "not allowed (ports below 1024 need root)"
            return exc.strerror or str(exc)
    return None


def _path_problem(path: str) -> str | None:
    link = Path(path)
    if link.is_symlink():
        target = os.readlink(link)
        if not os.path.exists(target):
            return None                       # a stale link left by a crashed run: the scanner simulator replaces it
        holder = who_holds_file(target)
        return f"in use: it points to the live pty {target}" + (f", held by {holder}" if holder else "")
    if link.exists():
        return "exists and is not a symlink (the scanner simulator never replaces a file)"
    return None


def busy(endpoints: list[Endpoint]) -> list[Busy]:
    """The endpoints that are taken, each with why; empty when all are free."""
    found = []
    for endpoint in endpoints:
        if endpoint.port is not None and endpoint.port != 0:
            reason = _port_problem(endpoint.host, endpoint.port)
        elif endpoint.path:
            reason = _path_problem(endpoint.path)
        else:
            reason = None
        if reason:
            found.append(Busy(endpoint, reason))
    return found


def describe(taken: list[Busy], command: str) -> str:
    """The message for the user: each endpoint taken, and how to choose another."""
    lines = []
    for item in taken:
        e = item.endpoint
        where = f"port {e.port}" if e.port is not None else e.path
        value = "PORT" if e.port is not None else "PATH"
        lines.append(f"{command}: {where} ({e.what}) is {item.reason}: choose another with {e.option} {value}")
    lines.append(f"{command}: nothing was started. Stop what holds {'it' if len(taken) == 1 else 'them'} "
                 "(another demo?), or give this one other ports.")
    return "\n".join(lines)


# -- who holds it (Linux /proc; None where it cannot tell, e.g. another user's process) ---------------------------

def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _processes_with(targets: set[str]) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                try:
                    if os.readlink(fd.path) in targets:
                        pids.append(int(entry.name))
                        break
                except OSError:
                    continue
        except OSError:
            continue
    return sorted(pids)


def _describe_pid(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = " ".join(w.decode(errors="replace") for w in words if w)
    except OSError:
        command = ""
    if len(command) > 90:
        command = command[:87] + "…"
    return f"pid {pid} ({command})" if command else f"pid {pid}"


def who_holds_port(port: int) -> str | None:
    inodes = _listening_inodes(port)
    pids = _processes_with({f"socket:[{inode}]" for inode in inodes}) if inodes else []
    return ", ".join(_describe_pid(pid) for pid in pids) or None


def who_holds_file(path: str) -> str | None:
    pids = [pid for pid in _processes_with({path}) if pid != os.getpid()]
    return ", ".join(_describe_pid(pid) for pid in pids) or None


__all__ = ["Endpoint", "Busy", "busy", "describe", "who_holds_port", "who_holds_file"]
