"""``neuraldbg/debugAdapter``: the in-process debug adapter (one TCP server,
started on the first request, sharing the Session and the debug registry),
and its stop at shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pygls.exceptions import JsonRpcException

from neuraldbg.server.state import ServerState

log = logging.getLogger(__name__)


async def debug_adapter(state: ServerState, params: Any) -> dict[str, Any]:
    handle = state.adapter
    if handle.port is not None:
        return {"port": handle.port}
    start = _adapter_start_fn()
    if start is None:
        raise JsonRpcException("debug adapter not available", code=-32001)
    try:
        port, stop = await asyncio.get_running_loop().run_in_executor(
            None, lambda: start("127.0.0.1", 0, session=state.session, registry=state.registry))
    except Exception as exc:
        raise JsonRpcException(f"debug adapter not available: {exc}", code=-32001) from None
    handle.port, handle.stop = int(port), stop
    return {"port": handle.port}


def stop(state: ServerState) -> None:
    if state.adapter.stop is None:
        return
    try:
        state.adapter.stop()
    except Exception:
        log.debug("adapter stop failed", exc_info=True)


def _adapter_start_fn() -> Any:
    """The debug adapter's in-process TCP server:
    ``neuraldbg.dap.start_tcp_server(host, port, session=..., registry=...) -> (port, stop)``."""
    try:
        import neuraldbg.dap as dap
    except Exception:  # the adapter is optional for the language server
        log.exception("the debug adapter cannot be imported")
        return None
    return getattr(dap, "start_tcp_server", None)
