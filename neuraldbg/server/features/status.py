"""``neuraldbg/status`` and progress bars: model loading, traces starting
and finishing, the tracer's sandbox level."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from neuraldbg.server.notify import model_name
from neuraldbg.server.state import ServerState
from neuraldbg.session.policy import RefusalKind, has_model
from neuraldbg.session.session import TraceEntry
from neuraldbg.tracer import isolation

log = logging.getLogger(__name__)

QUIET_ERRORS = ("cancelled", "document closed")  # trace failures the status does not report


def loading_message(state: ServerState) -> str:
    return f"loading {model_name(state.settings) or state.settings.backend}"


def on_trace(state: ServerState, entry: TraceEntry) -> None:
    """A trace started, streamed a frame or finished."""
    key, trace, status = entry.key, entry.trace, state.status
    status.busy_with = key.function
    if entry.done.is_set():
        state.bars.end(key, f"{key.function}: {len(trace.frames)} frames ({trace.status})")
        if trace.status == "error" and trace.error not in QUIET_ERRORS:
            if entry.refusal is not RefusalKind.EXECUTION_NOT_ALLOWED:
                status.error = f"{key.function}: {trace.error}"
                status.send_now()  # never lost behind the rate limit
        elif trace.status in ("complete", "truncated"):
            status.error = None
    else:
        n = len(trace.frames)
        state.bars.start(key, "neuraldbg", f"tracing {key.function}")
        state.bars.report(key, f"tracing {key.function}: {n} frame{'s' if n != 1 else ''}")
    status.changed()


def on_load(state: ServerState, progress: Any) -> None:
    """A model-load progress report (on the loop)."""
    state.status.loading = progress.message
    state.status.load_fraction = progress.fraction
    if progress.fraction is not None and progress.fraction >= 1.0:
        state.status.send_now()  # "loaded" must not be coalesced into the "ready" that follows
    else:
        state.status.changed()
    state.bars.start("load", "neuraldbg: loading model", progress.message)
    pct = int(progress.fraction * 100) if progress.fraction is not None else None
    state.bars.report("load", progress.message, pct)


async def preload(state: ServerState) -> None:
    """Load the model of a model backend up front (status 'loading')."""
    s = state.settings
    if not has_model(s.backend):
        return
    state.status.loading = loading_message(state)
    state.status.send_now()
    try:
        await asyncio.get_running_loop().run_in_executor(None, state.session.engines.backend, s)
    except Exception as exc:
        if state.settings is s:
            state.status.error = f"{s.backend} backend: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            state.log_to_client(state.status.error, types.MessageType.Error)
    finally:
        if state.settings is s:
            state.status.loading = None
            state.status.load_fraction = None
            state.bars.end("load", "model loaded")
            state.status.send_now()


async def probe_sandbox(state: ServerState) -> None:
    """Probe the isolation level off the loop (it starts test children)."""
    await asyncio.to_thread(isolation.current)
    state.status.changed()
    tell_weak_sandbox(state)


def tell_weak_sandbox(state: ServerState) -> None:
    """Once per server: this workspace's code runs with audit hooks only."""
    level = isolation.known()
    if state.weak_sandbox_told or level is None or not level.weak or not state.settings.allow_execution:
        return
    state.weak_sandbox_told = True
    message = (f"neuraldbg: workspace code runs with weak isolation (audit hooks only: {level.weaknesses()}). "
               "Install bubblewrap (apt-get install bubblewrap) for a real sandbox.")
    log.warning("%s", message)
    try:
        state.server.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))
    except Exception:
        log.debug("message not sent", exc_info=True)
