"""A small text-line command server, so a tester can change a running simulator from `nc` or a script."""

from __future__ import annotations

import socket
from collections.abc import Callable

from simulators.tcp import TcpServer

Handler = Callable[[list[str]], str]


class CommandServer:
    """One command per line, one reply line per command (`ok`, a value, or `error: why`)."""

    def __init__(self, handlers: dict[str, Handler], host: str = "127.0.0.1", port: int = 0,
                 name: str = "control") -> None:
        self.handlers = {"help": lambda _args: "commands: " + " ".join(sorted(handlers)), **handlers}
        self.host = host
        self.name = name
        self._server = TcpServer(self._serve, host, port, name=name, backlog=4)

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> CommandServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(timeout=2)

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

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        while self._server.running:
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
