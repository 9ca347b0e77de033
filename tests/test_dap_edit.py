"""Edit and re-simulate (setVariable): on the replay backend over stdio, and
on the tiny random CWM through LocalBackend (its output is noise: the
machinery is checked, not the values)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dap_client.pyclient import EXAMPLES, DapClient
from neuraldbg.backends.base import Sampling
from neuraldbg.config import Settings
from neuraldbg.dap import start_tcp_server
from neuraldbg.engines.factory import EngineFactory
from neuraldbg.engines.model_engine import ModelEngine
from neuraldbg.tracer import run_trace

STRAWBERRY = EXAMPLES / "strawberry.py"
CALL = 'count_letter("strawberry", "r")'


@pytest.fixture
def dap() -> Iterator[DapClient]:
    client = DapClient.spawn()
    yield client
    client.shutdown()
    client.assert_one_response_each()


def scope_ref(dap: DapClient) -> int:
    return dap.req("scopes", {"frameId": dap.stack()[0]["id"]})["scopes"][0]["variablesReference"]


def test_set_variable_on_replay_drops_the_future_and_resimulates(dap: DapClient) -> None:
    truth = run_trace(STRAWBERRY.read_text(), CALL, function="count_letter", path=str(STRAWBERRY))
    hit = next(i for i, f in enumerate(truth.frames) if f.line == 13)
    dap.start(STRAWBERRY, function="count_letter", args=CALL, backend="replay", breakpoints=[{"line": 13}])
    # predict a few frames ahead, then come back: those frames are the future
    for _ in range(3):
        dap.step("next")
    for _ in range(3):
        dap.step("stepBack")
    assert dap.where() == (13, truth.locals_at(hit))
    assert dap.trace()["step"] == hit

    ref = scope_ref(dap)
    body = dap.req("setVariable", {"variablesReference": ref, "name": "count", "value": "  10 "})
    assert body["value"] == "10" and body["type"] == "int"
    assert dap.locals()["count"] == "10"
    data = dap.trace()
    assert data["step"] == hit and len(data["trace"]["frames"]) == hit + 1  # later frames dropped
    assert data["trace"]["frames"][hit]["locals"]["count"] == "10"
    # a list value, canonicalised
    body = dap.req("setVariable", {"variablesReference": ref, "name": "word", "value": "['s','t']"})
    assert body["value"] == "['s', 't']" and body["variablesReference"] > 0

    # going on re-simulates from the edited frame
    assert dap.step("next")["reason"] == "step"
    data = dap.trace()
    assert len(data["trace"]["frames"]) == hit + 2
    assert data["trace"]["frames"][hit]["locals"]["word"] == "['s', 't']"
    assert dap.step("stepBack")["reason"] == "step"
    assert dap.locals()["count"] == "10"

    # bad edits: clear errors, nothing changes
    ref = scope_ref(dap)
    assert "not a Python literal" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": "len(x)"})
    assert "not a Python literal" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": "[1,"})
    assert "the new value is empty" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": " "})
    assert "no local 'nope'" in dap.fail("setVariable", {"variablesReference": ref, "name": "nope", "value": "1"})
    word = next(v for v in dap.req("variables", {"variablesReference": ref})["variables"] if v["name"] == "word")
    assert "item inside it" in dap.fail("setVariable", {"variablesReference": word["variablesReference"], "name": "0",
                                                        "value": "'x'"})
    assert "needs 'name' and 'value'" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": 3})
    assert dap.locals()["count"] == "10"


def test_set_variable_only_in_the_current_frame(dap: DapClient) -> None:
    program = EXAMPLES / "recursion.py"
    dap.start(program, function="fib_list", args="fib_list(2)", backend="replay", breakpoints=[{"line": 25}])
    outer = dap.stack()[1]["id"]
    ref = dap.req("scopes", {"frameId": outer})["scopes"][0]["variablesReference"]
    assert "only the current frame" in dap.fail("setVariable", {"variablesReference": ref, "name": "k", "value": "5"})
    # a return frame has no state of its own to edit
    dap.step("stepIn")
    stack = dap.stack()
    assert stack[0]["name"] == "fib"
    names = dap.locals()
    assert "(return)" in names
    message = dap.fail("setVariable", {"variablesReference": scope_ref(dap), "name": "a", "value": "5"})
    assert "call or line frame" in message


# -- the tiny random CWM ---------------------------------------------------------
FRAME_TOKENS = 12  # the noise never closes a frame: keep each request short


class TinyFactory(EngineFactory):
    """Builds the real ModelEngine on the tiny CWM with a small frame cap."""

    def __init__(self, backend: Any) -> None:
        super().__init__(require_permission=False)
        self.tiny = backend
        self.made: list[ModelEngine] = []

    def make(self, settings: Settings, *, source: str, index: Any, function: Any, call: str, path: str,
             cancel: Any = None) -> ModelEngine:  # type: ignore[override]
        engine = ModelEngine(self.tiny, self.tiny.tokenizer, source=source, function=function,
                             functions=index.functions, call=call, sampling=Sampling(temperature=0.0, seed=0),
                             backend_kind="local", frame_token_cap=FRAME_TOKENS)
        self.made.append(engine)
        return engine


@dataclass
class FakeSession:
    engines: EngineFactory
    settings: Settings = field(default_factory=lambda: Settings(backend="local"))
    documents: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def tiny_backend(tiny_cwm_dir) -> Iterator[Any]:
    from neuraldbg.backends.local import LocalBackend

    backend = LocalBackend.load(tiny_cwm_dir)
    yield backend
    backend.close()


def test_set_variable_on_the_tiny_model(tiny_backend: Any) -> None:
    factory = TinyFactory(tiny_backend)
    port, stop = start_tcp_server(session=FakeSession(factory))
    dap = DapClient.connect(port)
    stats = tiny_backend.stats
    try:
        stop_body = dap.start(STRAWBERRY, function="count_letter", args="count_letter('ab', 'a')", backend="local",
                              stopOnEntry=True)
        assert stop_body["reason"] == "entry"
        assert dap.where() == (4, {"word": "'ab'", "letter": "'a'"})  # the call frame is forced, not generated
        engine = factory.made[0]

        # one step = one model request; noise gives no complete frame, which is
        # reported and leaves the session at the last good frame
        before = stats.requests
        outcome = dap.step("stepIn")
        assert stats.requests == before + 1
        frames_after_step = len(dap.trace()["trace"]["frames"])
        if outcome["reason"] == "pause":
            assert "did not finish a frame" in outcome["description"]
            assert frames_after_step == 1
        else:
            assert frames_after_step == 2
            dap.step("stepBack")

        ref = scope_ref(dap)
        assert dap.req("setVariable", {"variablesReference": ref, "name": "word", "value": '"zz"'})["value"] == "'zz'"
        data = dap.trace()
        assert len(data["trace"]["frames"]) == 1
        assert data["trace"]["frames"][0]["locals"] == {"word": "'zz'", "letter": "'a'"}
        assert dap.locals()["word"] == "'zz'"
        # the model's prompt now carries the edited call frame
        assert "'zz'" in tiny_backend.tokenizer.decode(engine.prompt())
        assert "'ab'" not in tiny_backend.tokenizer.decode(engine.prompt()[len(engine.context):])

        # stepping on asks the model again from the edited state (nothing reused)
        before = stats.requests
        dap.step("stepIn")
        assert stats.requests == before + 1
        assert dap.trace()["trace"]["frames"][0]["locals"]["word"] == "'zz'"
        assert dap.req("threads")["threads"][0]["name"] == "simulated count_letter"
        # a restart re-samples: a fresh simulation from the forced call frame
        dap.req("restart", {})
        assert dap.wait_stop()["reason"] == "entry"
        assert dap.locals()["word"] == "'ab'"
    finally:
        dap.shutdown()
        stop()
    dap.assert_one_response_each()
