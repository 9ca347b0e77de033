"""``neuraldbg/goToStep``, the custom DAP request behind a click on a frame of
the editors' trace views in a debug session: the session moves to that step
of its trace (back or forward) with that step's locals, and a step past the
end stops on the last frame without ending the session. Real adapter over
stdio, checked against the ground-truth trace of neuraldbg.tracer."""

from __future__ import annotations


import pytest

from dap_client.pyclient import EXAMPLES, DapClient
from neuraldbg.tracer import run_trace

STRAWBERRY = EXAMPLES / "strawberry.py"
STRAWBERRY_CALL = 'count_letter("strawberry", "r")'


def _go(dap: DapClient, step: int) -> dict:
    dap.req("neuraldbg/goToStep", {"threadId": 1, "step": step})
    return dap.wait_stop()


@pytest.mark.parametrize("backend", ["exec", "replay"])
def test_go_to_a_step_back_and_forth(dap: DapClient, backend: str) -> None:
    truth = run_trace(STRAWBERRY.read_text(), STRAWBERRY_CALL, function="count_letter", path=str(STRAWBERRY))
    last = len(truth.frames) - 1
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend=backend,
                     breakpoints=[{"line": 13}])
    assert stop["reason"] == "breakpoint" and dap.trace()["step"] == 8
    for step in (3, 20, 0, last):  # back, forward past the breakpoints, to the call frame, to the return
        stop = _go(dap, step)
        assert stop["reason"] == "goto", stop
        assert dap.trace()["step"] == step
        line, names = dap.where()
        assert line == truth.frames[step].line and names == truth.locals_at(step), (step, line, names)
    stop = _go(dap, last + 50)  # past the end: the last frame, and the session goes on
    assert stop["reason"] == "goto" and dap.trace()["step"] == last
    assert dap.step("stepBack")["reason"] == "step" and dap.trace()["step"] < last
    assert dap.step("continue") == {"terminated": True, "exitCode": 0}


def test_bad_steps_are_one_line_errors(dap: DapClient) -> None:
    assert dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL,
                     stopOnEntry=True)["reason"] == "entry"
    for bad in ({"step": -1}, {"step": "3"}, {"step": True}, {}):
        message = dap.fail("neuraldbg/goToStep", {"threadId": 1, **bad})
        assert "needs a step: an integer >= 0" in message and "\n" not in message, message
    assert "no thread 7" in dap.fail("neuraldbg/goToStep", {"threadId": 7, "step": 1})
    assert _go(dap, 2)["reason"] == "goto" and dap.trace()["step"] == 2
