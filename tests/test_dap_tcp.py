"""The adapter served on a loopback port inside another process (as the
language server runs it): the frame registry for inline values, the
editor's unsaved text, a backend failing mid-session, pause and disconnect
during a long continue."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dap_client.pyclient import EXAMPLES, DapClient
from neuraldbg.backends.base import BackendError, CancelToken
from neuraldbg.config import Settings
from neuraldbg.dap import start_tcp_server
from neuraldbg.session.registry import DebugRegistry
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.session.session import Session
from neuraldbg.simulation.simulation import Engine, Step
from neuraldbg.trace.frames import Event, Frame
from neuraldbg.tracer import run_trace

STRAWBERRY = EXAMPLES / "strawberry.py"
CALL = 'count_letter("strawberry", "r")'


@pytest.fixture
def server() -> Iterator[tuple[int, DebugRegistry]]:
    registry = DebugRegistry()
    port, stop = start_tcp_server(registry=registry)
    yield port, registry
    stop()


def test_each_stop_publishes_its_frames_for_inline_values(server: tuple[int, DebugRegistry]) -> None:
    port, registry = server
    dap = DapClient.connect(port)
    try:
        truth = run_trace(STRAWBERRY.read_text(), CALL, function="count_letter", path=str(STRAWBERRY))
        hits = [i for i, f in enumerate(truth.frames) if f.line == 13]
        dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=CALL, breakpoints=[{"line": 13}])
        frame_id = dap.stack()[0]["id"]
        ref = registry.get(frame_id)
        assert ref is not None and ref.top and ref.line == 13 and ref.path == str(STRAWBERRY)
        assert ref.step == hits[0] and ref.locals() == truth.locals_at(hits[0]) == dap.locals(frame_id)
        assert registry.current() == ref
        dap.step("continue")
        assert registry.get(frame_id) is None  # frame ids are valid only while stopped there
        new = registry.get(dap.stack()[0]["id"])
        assert new is not None and new.locals() == truth.locals_at(hits[1])
        assert new.frame_id != frame_id
        dap.shutdown()
        assert registry.current() is None
    finally:
        dap.close()
    dap.assert_one_response_each()


def test_two_clients_are_two_sessions(server: tuple[int, DebugRegistry]) -> None:
    port, registry = server
    a, b = DapClient.connect(port), DapClient.connect(port)
    try:
        a.start(STRAWBERRY, allowExecution=True, function="count_letter", args=CALL, breakpoints=[{"line": 13}])
        b.start(STRAWBERRY, allowExecution=True, function="count_letter", args='count_letter("rr", "r")', breakpoints=[{"line": 13}])
        a.step("continue")
        assert a.where()[1]["count"] == "1" and b.where()[1]["word"] == "'rr'"
        ids = {a.stack()[0]["id"], b.stack()[0]["id"]}
        assert len(ids) == 2 and all(registry.get(i) is not None for i in ids)
    finally:
        a.shutdown()
        b.shutdown()
    a.assert_one_response_each()
    b.assert_one_response_each()


def test_the_editors_unsaved_text_is_what_runs(tmp_path: Path) -> None:
    program = tmp_path / "counting.py"
    program.write_text(STRAWBERRY.read_text())
    session = Session(Settings(allow_execution=True))  # a workspace that allows running its code
    edited = STRAWBERRY.read_text().replace("count += 1", "count += 2")
    session.open(program.as_uri(), edited)
    port, stop = start_tcp_server(session=session)
    dap = DapClient.connect(port)
    try:
        dap.start(program, function="count_letter", args=CALL, breakpoints=[{"line": 13}])
        dap.step("continue")
        assert dap.where()[1]["count"] == "2"
    finally:
        dap.shutdown()
        stop()
    dap.assert_one_response_each()


# -- engines that misbehave --------------------------------------------------------
@dataclass
class Misbehaving:
    """The real run, through a wrapper that acts like a model backend that
    fails once at frame ``fail_at`` or is slow."""

    inner: Any
    fail_at: int = -1
    mode: str = "raise"  # "raise": an exception; "end": the engine reports an error
    delay: float = 0.0
    backend: str = "flaky"
    model: str | None = "flaky-model"
    predicted: bool = True
    supports_edit: bool = False
    failures: int = 0
    frames_made: int = 0  # what a test waits on (the run is going) instead of sleeping
    cancels: list[CancelToken] = field(default_factory=list)  # the tokens the run was given

    def first(self, cancel: CancelToken | None) -> Step:
        return self.inner.first(cancel)

    def next(self, frames: list[Frame], forced: Event | None, cancel: CancelToken | None) -> Step:
        self.frames_made += 1
        if cancel is not None and cancel not in self.cancels:
            self.cancels.append(cancel)
        if self.delay:
            time.sleep(self.delay)
            if cancel is not None:
                cancel.raise_if_cancelled()
        if len(frames) == self.fail_at and self.failures == 0:
            self.failures += 1
            if self.mode == "raise":
                raise BackendError("the model server went away")
            return Step(None, error="connection reset by the model server", status="error")
        return self.inner.next(frames, forced, cancel)

    def truncate(self, n: int) -> None:
        self.inner.truncate(n)

    def redo(self) -> None:
        self.inner.redo()

    def replace(self, step: int, frame: Frame) -> None:
        self.inner.replace(step, frame)

    def reseed(self, seed: int | None) -> None:
        pass


class WrappingFactory(EngineFactory):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.made: list[Misbehaving] = []

    def make(self, settings: Settings, **kw: Any) -> Engine:  # type: ignore[override]
        engine = Misbehaving(super().make(settings, **kw), **self.kwargs)
        self.made.append(engine)
        return engine


def workspace(factory: WrappingFactory, *programs: Path) -> Session:
    """A language server's session on ``factory``'s engines: a workspace that
    allows running its code (the real run inside the wrapper), with the
    programs open in the editor."""
    session = Session(Settings(allow_execution=True), engines=factory)
    for program in programs:
        session.open(program.as_uri(), program.read_text())
    return session


@pytest.mark.parametrize("mode, message", [("raise", "the model server went away"),
                                           ("end", "connection reset by the model server")])
def test_a_backend_failing_mid_session_is_reported_and_retried(mode: str, message: str) -> None:
    truth = run_trace(STRAWBERRY.read_text(), CALL, function="count_letter", path=str(STRAWBERRY))
    first_hit = next(i for i, f in enumerate(truth.frames) if f.line == 13)
    factory = WrappingFactory(fail_at=4, mode=mode)
    port, stop = start_tcp_server(session=workspace(factory, STRAWBERRY))
    dap = DapClient.connect(port)
    try:
        stop_body = dap.start(STRAWBERRY, function="count_letter", args=CALL, breakpoints=[{"line": 13}])
        assert stop_body["reason"] == "pause"
        assert message in stop_body["description"]
        assert any(message in o for o in dap.outputs("stderr"))
        # still usable: the last good frame is shown, and going on retries the backend
        assert dap.where() == (truth.frames[3].line, truth.locals_at(3))
        assert dap.trace()["trace"]["status"] in ("error", "streaming")
        again = dap.step("continue")
        assert again["reason"] == "breakpoint"
        assert dap.where() == (13, truth.locals_at(first_hit))
        assert factory.made[0].failures == 1
    finally:
        dap.shutdown()
        stop()
    dap.assert_one_response_each()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, what
        time.sleep(0.01)


LONG = "def spin(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"


def test_pause_and_disconnect_during_a_long_continue(tmp_path: Path) -> None:
    program = tmp_path / "spin.py"
    program.write_text(LONG)
    factory = WrappingFactory(delay=0.01)
    port, stop = start_tcp_server(session=workspace(factory, program))
    dap = DapClient.connect(port)
    try:
        assert dap.start(program, function="spin", args="spin(1000)", stopOnEntry=True)["reason"] == "entry"
        (engine,) = factory.made
        dap.req("continue", {"threadId": 1})
        wait_for(lambda: engine.frames_made > 5, "the continue did not start")
        dap.req("pause", {"threadId": 1})
        body = dap.wait_stop()
        assert body["reason"] == "pause"
        paused_at = dap.trace()["step"]
        assert 5 < paused_at < 2000 and dap.trace()["trace"]["status"] == "streaming"
        # disconnect while running: answered, the run is abandoned (its cancel token is set)
        dap.req("continue", {"threadId": 1})
        wait_for(lambda: engine.frames_made > paused_at + 5, "the second continue did not start")
        assert engine.cancels and not any(c.cancelled for c in engine.cancels)
        seq = dap.send("disconnect", {})
        assert dap.response(seq, timeout=30)["success"]
        wait_for(lambda: all(c.cancelled for c in engine.cancels), "the run went on after the disconnect")
        assert engine.frames_made < 1999, "the disconnect waited for the run to reach the frame cap"
    finally:
        dap.close()
        stop()
    dap.assert_one_response_each()


def test_stop_closes_the_port() -> None:
    port, stop = start_tcp_server()
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
