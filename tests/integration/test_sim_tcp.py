"""simulators.tcp.TcpServer, the one listener of the printer, camera, conveyor and control servers."""

from __future__ import annotations

import socket
import threading

import pytest

from simulators.errors import SimulatorError
from simulators.tcp import TcpServer

pytestmark = pytest.mark.integration


def echo(conn: socket.socket) -> None:
    while data := conn.recv(1024):
        conn.sendall(data)


def test_serves_refuses_drops_and_comes_back_on_the_same_port() -> None:
    off = threading.Event()
    server = TcpServer(echo, name="echo", refuse=off.is_set)
    with pytest.raises(SimulatorError, match="echo not started"):
        _ = server.port
    server.start()
    port = server.port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"ping")
            assert conn.recv(16) == b"ping"
            server.disconnect()                 # the cable pulled: the client sees the end
            assert conn.recv(16) == b""
        off.set()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            assert conn.recv(16) == b""        # switched off: the port answers, then hangs up
        off.clear()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"x")
            assert conn.recv(16) == b"x"
            server.stop()                       # a blocked serve() ends, the connection closes
            assert conn.recv(16) == b""
            assert server.connections == []
        assert server.port == port
        server.start()                          # the same device back
        assert server.port == port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"again")
            assert conn.recv(16) == b"again"
    finally:
        server.stop()


def test_a_port_in_use_is_a_simulator_error() -> None:
    first = TcpServer(echo, name="first").start()
    try:
        with pytest.raises(SimulatorError, match=f"second cannot listen on 127.0.0.1:{first.port}"):
            TcpServer(echo, port=first.port, name="second").start()
    finally:
        first.stop()
