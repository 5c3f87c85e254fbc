"""A small text-line command server, so a tester can change a running simulator from `nc` or a script."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Handler = Callable[[list[str]], str]


class CommandServer:
    """One command per line, one reply line per command (`ok`, a value, or `error: why`)."""

    def __init__(self, handlers: dict[str, Handler], host: str = "127.0.0.1", port: int = 0,
                 name: str = "control") -> None:
        self.handlers = {"help": lambda _args: "commands: " + " ".join(sorted(handlers)), **handlers}
        self.host = host
        self.name = name
        self._requested_port = port
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = False

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} server not started")
        return int(self._server.getsockname()[1])

    def start(self) -> CommandServer:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self._requested_port))
        server.listen(4)
        self._server, self._running = server, True
        thread = threading.Thread(target=self._accept, name=f"{self.name}-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._running = False
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
        with self._lock:
            for conn in list(self._conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
        for thread in self._threads:
            thread.join(2)

    def execute(self, line: str) -> str:
        words = line.strip().split()
        if not words:
            return "error: empty command (try help)"
        handler = self.handlers.get(words[0].lower())
        if handler is None:
            return f"error: unknown command {words[0]!r} (try help)"
        try:
            return handler(words[1:])
        except (ValueError, IndexError) as exc:
            return f"error: {exc}"

    def _accept(self) -> None:
        assert self._server is not None
        while self._running:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name=f"{self.name}-conn", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while self._running:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    text = line.decode("utf-8", "replace").strip()
                    if text == "quit":
                        return
                    conn.sendall(self.execute(text).encode() + b"\n")
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
