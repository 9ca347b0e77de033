"""``python -m neuraldbg.server [--stdio | --tcp | --ws] [--host H] [--port N]``
(the same options as ``neuraldbg serve``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from neuraldbg.server import DEFAULT_HOST, DEFAULT_PORT, run_server


def add_serve_args(p: argparse.ArgumentParser) -> None:
    """The ``serve`` options (shared with the CLI)."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stdio", dest="transport", action="store_const", const="stdio", help="LSP over stdin/stdout (default)")
    mode.add_argument("--tcp", dest="transport", action="store_const", const="tcp", help="LSP over TCP on --host/--port")
    mode.add_argument("--ws", dest="transport", action="store_const", const="ws", help="LSP over WebSocket on --host/--port")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address for --tcp/--ws (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port for --tcp/--ws (default {DEFAULT_PORT})")
    p.set_defaults(transport="stdio")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neuraldbg.server", description="the neuraldbg language server")
    add_serve_args(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_server(args.transport, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
