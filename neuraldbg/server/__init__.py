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
    server = create_server()
    if transport == "stdio":
        server.start_io()
    elif transport == "tcp":
        server.start_tcp(host, port)
    elif transport == "ws":
        try:
            import websockets  # noqa: F401
        except ImportError:
            print("neuraldbg: error: --ws needs the 'websockets' package (pip install 'pygls[ws]')", file=sys.stderr)
            return 2
        server.start_ws(host, port)
    else:
        print(f"neuraldbg: error: unknown transport {transport!r} (use stdio, tcp or ws)", file=sys.stderr)
        return 2
    return 0


__all__ = ["run_server", "Transport", "DEFAULT_HOST", "DEFAULT_PORT"]
