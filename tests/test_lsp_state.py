"""The language server's state and its background events, without a client
process: a debugger stop asks the client to refresh inline values (when it
can take the request), and a hole fill reads the session on the event loop,
never from its worker thread."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from neuraldbg.backends.base import BackendError
from neuraldbg.config import Settings
from neuraldbg.server.fills import FillService
from neuraldbg.server.state import ServerState
from neuraldbg.server.wiring import connect
from neuraldbg.session.registry import FrameRef
from neuraldbg.session.session import Session
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.trace.frames import Frame, Trace


class _Server:
    """The server methods the state calls, counting the inline-value refreshes."""

    def __init__(self) -> None:
        self.inline_value_refreshes = 0
        self.protocol = SimpleNamespace(notify=lambda *args, **kwargs: None)

    def workspace_inline_value_refresh(self, params: Any) -> None:
        self.inline_value_refreshes += 1


def _stop(state: ServerState) -> list[FrameRef]:
    trace = Trace(function="f", call="f(1)", backend="exec",
                  frames=[Frame(event="call", line=1, function="f", depth=0, locals={"x": "1"})])
    return [FrameRef(state.registry.next_id(), "dap-1", trace, 0, "/w/f.py", "f", 1, True)]


def _publish_from_the_adapter_thread(state: ServerState) -> None:
    """Publish a stop the way the debug adapter does: on a thread of its own."""
    worker = threading.Thread(target=lambda: state.registry.publish("dap-1", _stop(state)))
    worker.start()
    worker.join()


async def _loop_turn(loop: asyncio.AbstractEventLoop) -> None:
    """Wait until callbacks scheduled from other threads before now have run."""
    done = asyncio.Event()
    loop.call_soon_threadsafe(done.set)
    await done.wait()


async def test_a_debugger_stop_refreshes_the_inline_values_of_a_client_that_supports_it() -> None:
    server = _Server()
    state = connect(server)
    state.client = replace(state.client, inline_value_refresh=True)
    state.loop = asyncio.get_running_loop()
    _publish_from_the_adapter_thread(state)
    await _loop_turn(state.loop)
    assert server.inline_value_refreshes == 1


async def test_no_inline_value_refresh_for_a_client_without_support() -> None:
    server = _Server()
    state = connect(server)
    state.loop = asyncio.get_running_loop()
    assert state.client.inline_value_refresh is False
    _publish_from_the_adapter_thread(state)
    await _loop_turn(state.loop)
    assert server.inline_value_refreshes == 0
    assert state.registry.current() is not None  # the stop itself was published


class _NoModel(EngineFactory):
    def backend(self, settings: Settings) -> Any:
        raise BackendError("no model here")


async def test_a_fill_reads_the_session_on_the_event_loop_not_in_the_fill_thread() -> None:
    session = Session(Settings(backend="local", profile="tiny"), engines=_NoModel())
    uri = "file:///w/hole.py"
    doc = session.open(uri, "def f(x):\n    return ??\n")
    readers: list[str] = []
    cached = session.cached

    def spy(*args: Any, **kwargs: Any) -> Any:
        readers.append(threading.current_thread().name)
        return cached(*args, **kwargs)

    session.cached = spy  # type: ignore[method-assign]
    service = FillService(session, lambda u: "/w/hole.py")
    try:
        with pytest.raises(BackendError, match="no model here"):  # the model is loaded in the fill thread
            await service.fill(uri, doc.index.function("f"), (doc.index.holes[0],))
    finally:
        service.shutdown()
    assert readers == [threading.current_thread().name]
