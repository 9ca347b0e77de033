"""The debugger features a trace makes cheap, through the real DAP client
(``python -m neuraldbg.dap`` over stdio): data breakpoints (forwards and in
reverse), function breakpoints, step-in targets, Debug Console completions,
and evaluate refusing side effects. Expected stops come from the ground-truth
trace of neuraldbg.tracer."""

from __future__ import annotations

import pytest

from dap_client.pyclient import DapClient
from test_dap_stepping import STRAWBERRY, STRAWBERRY_CALL, dap, steps_on, truth_of  # noqa: F401 (dap: the fixture)


def top_frame_id(dap: DapClient) -> int:
    return dap.stack()[0]["id"]


# -- evaluate refuses side effects --------------------------------------------------
@pytest.mark.parametrize("expression, says", [
    ("count = 1", "count = 1 assigns count"),
    ("count += 1", "count += 1 changes count"),
    ("del count", "del removes count"),
    ("import os", "import os imports a module"),
    ("word, letter = 'a', 'b'", "assigns word, letter"),
    ("(n := 3)", "assigns n"),
    ("print(count)", "print(...) may have side effects"),
])
def test_evaluate_refuses_side_effects_and_says_so(dap: DapClient, expression: str, says: str) -> None:
    stop = dap.start(STRAWBERRY, allowExecution=True, function="count_letter", args=STRAWBERRY_CALL, backend="exec",
                     breakpoints=[{"line": 13}])
    assert stop["reason"] == "breakpoint"
    frame_id = top_frame_id(dap)
    message = dap.fail("evaluate", {"expression": expression, "frameId": frame_id, "context": "repl"})
    assert message.startswith("evaluate does not run code with side effects: "), message
    assert says in message and "\n" not in message and "syntax error" not in message
    # Nothing changed: the local still has the traced value.
    assert dap.req("evaluate", {"expression": "count", "frameId": frame_id})["result"] == "0"
    assert "syntax error" in dap.fail("evaluate", {"expression": "count +", "frameId": frame_id})
