"""Edit and re-simulate (setVariable): on the replay backend over stdio, and
on the oracle-forced tiny CWM through LocalBackend (the model writes the real
run's frames, so the values after an edit of the arguments are checked
against the real run on the edited input)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dap_client.pyclient import EXAMPLES, DapClient
from neuraldbg.backends.base import Sampling
from neuraldbg.config import Settings
from neuraldbg.session.session import Session
from neuraldbg.dap import start_tcp_server
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP, ModelEngine
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.trace.frames import Frame
from neuraldbg.tracer import run_trace

STRAWBERRY = EXAMPLES / "strawberry.py"
CALL = 'count_letter("strawberry", "r")'


def scope_ref(dap: DapClient) -> int:
    return dap.req("scopes", {"frameId": dap.stack()[0]["id"]})["scopes"][0]["variablesReference"]


def test_set_variable_on_replay_is_refused_where_it_cannot_resimulate(dap: DapClient) -> None:
    # The replay goes on with the real run's frames after an edit (count = 1
    # where 10 was set): past the call's first frame it cannot re-simulate,
    # so it says so and changes nothing (the model path's edit is tested on
    # the oracle CWM below; an edit of the arguments in test_dap_semantics).
    truth = run_trace(STRAWBERRY.read_text(), CALL, function="count_letter", path=str(STRAWBERRY))
    hit = next(i for i, f in enumerate(truth.frames) if f.line == 13)
    dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=CALL, backend="replay", breakpoints=[{"line": 13}])
    for _ in range(3):
        dap.step("next")
    for _ in range(3):
        dap.step("stepBack")
    assert dap.where() == (13, truth.locals_at(hit))
    ref = scope_ref(dap)
    message = dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": "  10 "})
    assert "not supported on the replay backend" in message and "\n" not in message
    assert dap.locals()["count"] == "0"
    assert dap.trace()["step"] == hit

    # bad edits: clear errors, nothing changes
    assert "not a Python literal" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": "len(x)"})
    assert "not a Python literal" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": "[1,"})
    assert "the new value is empty" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": " "})
    assert "no local 'nope'" in dap.fail("setVariable", {"variablesReference": ref, "name": "nope", "value": "1"})
    assert "needs 'name' and 'value'" in dap.fail("setVariable", {"variablesReference": ref, "name": "count", "value": 3})
    assert dap.locals()["count"] == "0"
    assert dap.step("next")["reason"] == "step"  # the real run goes on as it was
    assert dap.where() == (truth.frames[hit + 1].line, truth.locals_at(hit + 1))


def test_set_variable_only_in_the_current_frame(dap: DapClient) -> None:
    program = EXAMPLES / "recursion.py"
    dap.start(program, allowExecution=True, function="fib_list", args="fib_list(2)", backend="replay", breakpoints=[{"line": 25}])
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


# -- the oracle-forced CWM ----------------------------------------------------------
# A real CwmForCausalLM in the real local decode loop, logits masked to the real
# run (neuraldbg.backends.oracle): the frames the adapter shows were written by
# the model, so they can be checked against the real run value by value.


class ModelFactory(EngineFactory):
    """Builds the real ModelEngine on an in-process token backend, greedy."""

    def __init__(self, backend: Any, frame_token_cap: int = FRAME_TOKEN_CAP) -> None:
        super().__init__()
        self.model = backend
        self.frame_token_cap = frame_token_cap
        self.made: list[ModelEngine] = []

    def make(self, settings: Settings, *, source: str, index: Any, function: Any, call: str, path: str,
             truth: Any = None, options: Any = None, setup: str = "", cancel: Any = None) -> ModelEngine:  # type: ignore[override]
        engine = ModelEngine(self.model, self.model.tokenizer, source=source, function=function,
                             functions=index.functions, call=call, sampling=Sampling(temperature=0.0, seed=0),
                             backend_kind="local", frame_token_cap=self.frame_token_cap)
        self.made.append(engine)
        return engine


def model_session(factory: ModelFactory) -> Session:
    """A real session whose engines come from ``factory`` (the in-process model)."""
    return Session(Settings(backend="local"), engines=factory)


def shown_frames(dap: DapClient) -> list[Any]:
    """What CWM can express of the frames the adapter holds (return frames carry no locals)."""
    return cwm_view(Frame.from_json(f) for f in dap.trace()["trace"]["frames"])


def test_set_variable_on_the_model_resimulates_the_real_run_of_the_edited_input(oracle_cwm: Any) -> None:
    backend, oracle = oracle_cwm
    factory = ModelFactory(backend)
    port, stop = start_tcp_server(session=model_session(factory))
    dap = DapClient.connect(port)
    source = STRAWBERRY.read_text()
    before_edit = run_trace(source, "count_letter('ab', 'a')", function="count_letter", path=str(STRAWBERRY))
    after_edit = run_trace(source, "count_letter('z', 'a')", function="count_letter", path=str(STRAWBERRY))
    stats = backend.stats
    try:
        stop_body = dap.start(STRAWBERRY, function="count_letter", args="count_letter('ab', 'a')", backend="local",
                              stopOnEntry=True)
        assert stop_body["reason"] == "entry"
        assert dap.where() == (4, {"word": "'ab'", "letter": "'a'"})  # the call frame is forced, not generated
        engine = factory.made[0]

        # one step = one model request, and the frame it wrote is the real run's
        requests, generated, forced = stats.requests, stats.generated_tokens, oracle.stats.forced
        assert dap.step("stepIn")["reason"] == "step"
        assert stats.requests == requests + 1
        assert stats.generated_tokens - generated == oracle.stats.forced - forced > 10  # written by the decode loop
        first = before_edit.frames[1]
        assert dap.where() == (first.line, first.locals)
        assert shown_frames(dap) == cwm_view(before_edit.frames[:2])
        dap.step("stepBack")

        ref = scope_ref(dap)
        assert dap.req("setVariable", {"variablesReference": ref, "name": "word", "value": '"z"'})["value"] == "'z'"
        data = dap.trace()
        assert len(data["trace"]["frames"]) == 1
        assert data["trace"]["frames"][0]["locals"] == {"word": "'z'", "letter": "'a'"}
        assert dap.locals()["word"] == "'z'"
        # the model's prompt now carries the edited call frame
        assert "'z'" in backend.tokenizer.decode(engine.prompt())
        assert "'ab'" not in backend.tokenizer.decode(engine.prompt()[len(engine.context):])

        # stepping on asks the model again from the edited state (nothing
        # reused), and an edit of the arguments is a new input: what follows
        # is the real run of count_letter('z', 'a'), not of the old input
        requests = stats.requests
        dap.step("stepIn")
        assert stats.requests == requests + 1
        dap.set_breakpoints(STRAWBERRY, [{"line": 14}])
        assert dap.step("continue")["reason"] == "breakpoint"
        ret_line = next(i for i, f in enumerate(after_edit.frames) if f.line == 14 and f.event == "line")
        assert dap.where() == (14, after_edit.frames[ret_line].locals)
        assert dap.locals()["count"] == "0"  # 'z' has no 'a' (the old input had one)
        assert dap.step("next")["reason"] == "step"
        assert "(return)" in dap.locals() and dap.locals()["(return)"] == "0"
        assert shown_frames(dap) == cwm_view(after_edit.frames)
        assert dap.req("threads")["threads"][0]["name"] == "simulated count_letter"

        # a restart re-samples: a fresh simulation from the forced call frame, on the launch input
        dap.req("restart", {})
        assert dap.wait_stop()["reason"] == "entry"
        assert dap.locals()["word"] == "'ab'"
        dap.step("stepIn")
        assert shown_frames(dap) == cwm_view(before_edit.frames[:2])
    finally:
        dap.shutdown()
        stop()
    dap.assert_one_response_each()


# -- the random tiny CWM: a model that never finishes a frame (the point here) ----------


@pytest.fixture(scope="module")
def random_backend(tiny_cwm_dir) -> Iterator[Any]:
    from neuraldbg.backends.local import LocalBackend

    backend = LocalBackend.load(tiny_cwm_dir)
    yield backend
    backend.close()


def test_a_frame_the_model_never_finishes_pauses_at_the_last_good_frame(random_backend: Any) -> None:
    port, stop = start_tcp_server(session=model_session(ModelFactory(random_backend, frame_token_cap=12)))
    dap = DapClient.connect(port)
    try:
        dap.start(STRAWBERRY, function="count_letter", args="count_letter('ab', 'a')", backend="local",
                  stopOnEntry=True)
        requests = random_backend.stats.requests
        outcome = dap.step("stepIn")
        assert random_backend.stats.requests == requests + 1
        assert outcome["reason"] == "pause", outcome
        assert "did not finish a frame within 12 tokens" in outcome["description"], outcome
        assert len(dap.trace()["trace"]["frames"]) == 1  # the garbage is not a frame
        assert dap.where() == (4, {"word": "'ab'", "letter": "'a'"})
        # an edit still works there, and the next request carries it
        ref = scope_ref(dap)
        assert dap.req("setVariable", {"variablesReference": ref, "name": "word", "value": '"zz"'})["value"] == "'zz'"
        assert dap.step("stepIn")["reason"] == "pause"
        assert dap.locals()["word"] == "'zz'"
    finally:
        dap.shutdown()
        stop()
    dap.assert_one_response_each()
