"""The neuraldbg language server (LSP over stdio, TCP or WebSocket).

``run_server("stdio")`` is what ``neuraldbg serve`` runs. The protocol
contract (capabilities, settings, custom methods) is lsp/README.md.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

Transport = Literal["stdio", "tcp", "ws"]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2087


def run_server(transport: Transport = "stdio", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Serve one client until it exits; returns the process exit status.

    Logs go to stderr (and to the client as window/logMessage); stdout
    carries only the protocol on stdio."""
    from neuraldbg.server.app import create_server

    # pygls logs every message body at INFO: keep it quiet unless debugging
    logging.getLogger("pygls").setLevel(max(logging.WARNING, logging.getLogger().level))
    if transport not in ("stdio", "tcp", "ws"):
        print(f"neuraldbg: error: unknown transport {transport!r} (use stdio, tcp or ws)", file=sys.stderr)
        return 2
    if transport == "ws":
        import importlib.util

        if importlib.util.find_spec("websockets") is None:  # pygls would only log it and exit
            print("neuraldbg: error: --ws needs the 'websockets' package (pip install 'pygls[ws]')", file=sys.stderr)
            return 2
    server = create_server()
    try:
        if transport == "stdio":
            server.start_io()
        elif transport == "tcp":
            server.start_tcp(host, port)
        else:
            server.start_ws(host, port)
    except OSError as exc:  # e.g. the port is taken
        print(f"neuraldbg: error: cannot serve on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["run_server", "Transport", "DEFAULT_HOST", "DEFAULT_PORT"]
