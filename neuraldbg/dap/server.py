"""Serve the debug adapter over stdio (one session, the editor spawned us)
or over TCP on a loopback port (inside the language server, so that VS
Code's DebugAdapterServer connects to the process that owns the traces)."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from neuraldbg.dap.adapter import DebugAdapter
from neuraldbg.dap.protocol import Connection, PollingReader
from neuraldbg.session.registry import DebugRegistry
from neuraldbg.session.session import Session

log = logging.getLogger(__name__)


def run_stdio() -> int:
    """Serve one debug session on stdin/stdout until the client disconnects."""
    stdout = sys.stdout.buffer
    stdin: Any = PollingReader(sys.stdin.fileno()) if os.name == "posix" else sys.stdin.buffer
    # Anything printed by library code must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    DebugAdapter(Connection(stdin, stdout)).serve()
    return 0


def start_tcp_server(host: str = "127.0.0.1", port: int = 0, session: Session | None = None,
                     registry: DebugRegistry | None = None) -> tuple[int, Callable[[], None]]:
    """Listen for debug-adapter clients; returns (port, stop).

    ``session``: the language server's :class:`neuraldbg.session.session.Session`
    (its settings, documents, traces and model are shared), or None (each
    connection gets a standalone session).
    ``registry``: where each stop's frames are published for inline values.
    Each connection is one debug session served on its own threads.
    """
    if registry is None:
        registry = DebugRegistry()
    listener = socket.create_server((host, port))
    listener.settimeout(0.5)  # so that stop() is noticed
    bound = listener.getsockname()[1]
    stopping = threading.Event()
    lock = threading.Lock()
    clients: list[tuple[socket.socket, threading.Thread]] = []

    def serve_one(sock: socket.socket) -> None:
        reader, writer = sock.makefile("rb"), sock.makefile("wb")
        try:
            DebugAdapter(Connection(reader, writer), session=session, registry=registry).serve()
        except Exception:  # one broken session must not stop the server
            log.exception("debug session failed")
        finally:
            for f in (reader, writer):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                sock, _addr = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            t = threading.Thread(target=serve_one, args=(sock,), name="dap-session", daemon=True)
            with lock:
                clients[:] = [(s, th) for s, th in clients if th.is_alive()]
                clients.append((sock, t))
            t.start()

    acceptor = threading.Thread(target=accept_loop, name=f"dap-listen-{bound}", daemon=True)
    acceptor.start()
    log.info("debug adapter listening on %s:%d", host, bound)

    def stop() -> None:
        stopping.set()
        try:
            listener.close()
        except OSError:
            pass
        acceptor.join(timeout=2)
        with lock:
            live = list(clients)
        for sock, _t in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # ends the session's reader: it cancels its work
            except OSError:
                pass
        for _sock, t in live:
            t.join(timeout=5)

    return bound, stop
