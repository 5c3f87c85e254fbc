"""The simulators' TCP listener: one accept loop, a thread for each connection, and a stop that ends them all.

The printer, camera and conveyor simulators and the control servers differ only in what they say on a
connection; `TcpServer` does the rest. `serve(conn)` runs on the connection's own thread; when it returns (or
raises OSError: the peer went away) the server closes the connection. `refuse()`, asked at each accept, closes a
connection at once instead (a device switched off: the port answers, then hangs up). `stop()` shuts the
listener, then every open connection, so blocked reads return, and joins the threads; `start()` again listens
on the same port, so a restarted simulator is the same device coming back.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from simulators.errors import SimulatorError

__all__ = ["TcpServer", "join", "shutdown", "start_worker"]

log = logging.getLogger(__name__)


def shutdown(sock: socket.socket) -> None:
    """Shut a socket both ways (a read blocked on it returns), ignoring one that is already gone."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def start_worker(target: Callable[[], None], name: str) -> threading.Thread:
    """A simulator's own worker (its print loop, its belt, its frame clock) on a daemon thread, started."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def join(thread: threading.Thread | None, timeout: float = 5.0) -> None:
    """Wait for a worker to end; nothing when stop() runs on that very thread (a command it carried out)."""
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)


class TcpServer:
    """See the module docstring. `name` names the threads and the messages."""

    def __init__(self, serve: Callable[[socket.socket], None], host: str = "127.0.0.1", port: int = 0, *,
                 name: str, refuse: Callable[[], bool] = lambda: False, backlog: int = 8) -> None:
        self.host = host
        self.name = name
        self._serve = serve
        self._refuse = refuse
        self._backlog = backlog
        self._port = port
        self._server: socket.socket | None = None
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._accepting: threading.Thread | None = None
        self._running = False

    @property
    def port(self) -> int:
        """The port it listens on (after a stop: the one it will listen on again)."""
        if self._server is None:
            raise SimulatorError(f"{self.name} not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._running

    @property
    def connections(self) -> list[socket.socket]:
        """The connections open now."""
        with self._lock:
            return list(self._conns)

    def start(self) -> TcpServer:
        if self._running:
            raise SimulatorError(f"{self.name} already started")
        try:
            server = socket.create_server((self.host, self._port), backlog=self._backlog)
        except OSError as exc:
            raise SimulatorError(f"{self.name} cannot listen on {self.host}:{self._port}: {exc}") from exc
        self._server, self._running = server, True
        self._port = int(server.getsockname()[1])   # a restart comes back on the same port
        self._accepting = threading.Thread(target=self._accept, name=f"{self.name}-accept", daemon=True)
        self._accepting.start()
        return self

    def disconnect(self) -> None:
        """Drop every open connection now; the listener stays up, so a client can connect again."""
        for conn in self.connections:
            shutdown(conn)

    def stop(self, timeout: float = 5.0) -> None:
        if not self._running:
            return
        self._running = False
        assert self._server is not None
        shutdown(self._server)   # wakes the accept
        if self._accepting is not None and self._accepting is not threading.current_thread():
            self._accepting.join(timeout)   # no new connection after this
        self.disconnect()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout)
        self._threads.clear()
        self._server.close()

    def _accept(self) -> None:
        assert self._server is not None
        server = self._server
        while self._running:
            try:
                conn, _ = server.accept()
            except OSError:
                return   # the listener was shut down by stop()
            if not self._running or self._refuse():
                shutdown(conn)
                conn.close()
                continue
            with self._lock:
                self._conns.add(conn)
            thread = threading.Thread(target=self._run, args=(conn,), name=f"{self.name}-conn", daemon=True)
            # Finished connection threads are pruned, so a long run with many reconnects holds no dead threads.
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        except OSError:
            pass   # the peer went away, or stop() shut the connection
        except Exception:
            log.exception("%s: a connection failed", self.name)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
