"""Bad input to the debug adapter: each a clear error response, the adapter
stays up, and every request gets exactly one response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dap_client.pyclient import EXAMPLES, DapClient

STRAWBERRY = EXAMPLES / "strawberry.py"


@pytest.fixture
def dap() -> Iterator[DapClient]:
    with DapClient.initialized() as client:
        yield client


def test_capabilities() -> None:
    client = DapClient.spawn()
    try:
        caps = client.req("initialize", {"adapterID": "neuraldbg"})
        for key in ("supportsConfigurationDoneRequest", "supportsStepBack", "supportsSetVariable",
                    "supportsConditionalBreakpoints", "supportsHitConditionalBreakpoints", "supportsLogPoints",
                    "supportsEvaluateForHovers", "supportsRestartRequest", "supportsTerminateRequest"):
            assert caps[key] is True, key
        # debugpy's filters, names and defaults
        assert [(f["filter"], f["label"], f["default"]) for f in caps["exceptionBreakpointFilters"]] == [
            ("raised", "Raised Exceptions", False), ("uncaught", "Uncaught Exceptions", True)]
    finally:
        client.shutdown()
    assert client.proc is not None and client.proc.returncode == 0  # disconnect ends the stdio adapter cleanly
    client.assert_one_response_each()


def test_bad_requests_get_clear_errors(dap: DapClient) -> None:
    assert "unknown request 'frobnicate'" in dap.fail("frobnicate", {})
    assert "'arguments' must be an object" in dap.fail("launch", [1, 2])
    assert "no program is being debugged" in dap.fail("stackTrace", {"threadId": 1})
    assert "no program is being debugged" in dap.fail("next", {"threadId": 1})
    assert "no program is being debugged" in dap.fail("configurationDone", {})
    assert "cannot attach" in dap.fail("attach", {})
    assert dap.req("threads") == {"threads": []}
    # a body that is not JSON, and a request without seq: reported, the adapter goes on
    dap.send_raw(b"Content-Length: 9\r\n\r\n{not json")
    assert "not JSON" in dap.next_output("stderr")
    body = json.dumps({"type": "request", "command": "threads"}).encode()
    dap.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    unnumbered = dap.response(0)
    assert unnumbered["success"] is False and "integer 'seq'" in unnumbered["message"]
    assert dap.response_counts.pop(0) == 1
    assert dap.req("threads") == {"threads": []}


@pytest.mark.parametrize("args, message", [
    ({}, "launch needs 'program'"),
    ({"program": "/no/such/file.py", "function": "f"}, "no such file: /no/such/file.py"),
    ({"program": str(EXAMPLES)}, "is a directory"),
    ({"program": str(STRAWBERRY), "function": "nope"}, "no function 'nope' in"),
    ({"program": str(STRAWBERRY), "function": 3}, "'function' must be a function name"),
    ({"program": str(STRAWBERRY), "function": "count_letter", "backend": "gpu"}, "unknown backend 'gpu'"),
    ({"program": str(STRAWBERRY), "function": "count_letter", "args": "imagine"}, "cannot imagine inputs"),
    # a call that fails only when it runs: the run must be allowed to see its error
    ({"program": str(STRAWBERRY), "function": "count_letter", "args": "count_letter(1, 2, 3, 4)", "allowExecution": True},
     "count_letter"),
    ({"program": str(STRAWBERRY), "function": "count_letter", "args": "print('hi')"}, "print"),
    ({"program": str(STRAWBERRY), "function": "count_letter", "stopOnEntry": "yes"}, "'stopOnEntry' must be true or false"),
    ({"program": str(STRAWBERRY), "function": "count_letter", "maxFrames": 0}, "maxFrames must be at least 1"),
    ({"program": str(EXAMPLES / "hole.py"), "function": "running_max"}, "?? hole"),
    ({"program": "TWO_FUNCTIONS"}, "name the 'function' to trace in two.py (one of: f, g)"),
    ({"program": str(EXAMPLES / "binary_search.py"), "function": "binary_search", "backend": "local"}, "profile"),
    ({"program": str(EXAMPLES / "binary_search.py"), "function": "binary_search", "backend": "remote"}, "url"),
])
def test_bad_launches_are_clear_and_the_adapter_stays_up(dap: DapClient, args: dict, message: str,
                                                         tmp_path: Path) -> None:
    if args.get("program") == "TWO_FUNCTIONS":
        (tmp_path / "two.py").write_text("def f(x):\n    return x\n\n\ndef g(y):\n    return y\n")
        args = {"program": str(tmp_path / "two.py")}
    error = dap.fail("launch", args)
    assert message in error
    assert "Traceback" not in error and "\n" not in error
    # the same adapter then launches a good program
    dap.req("launch", {"program": str(STRAWBERRY), "function": "count_letter", "allowExecution": True, "stopOnEntry": True})
    dap.wait_event("initialized")
    dap.req("configurationDone")
    assert dap.wait_stop()["reason"] == "entry"
    assert "already launched" in dap.fail("launch", {"program": str(STRAWBERRY)})


def test_bad_breakpoints_are_unverified_with_a_reason(dap: DapClient, tmp_path: Path) -> None:
    dap.req("launch", {"program": str(STRAWBERRY), "function": "count_letter", "allowExecution": True})
    dap.wait_event("initialized")
    bps = dap.set_breakpoints(STRAWBERRY, [
        {"line": 13},
        {"line": 2},  # module docstring
        {"line": 12, "condition": "ch.upper() == 'R'"},
        {"line": 12, "condition": "ch =="},
        {"line": 12, "hitCondition": "often"},
        {"line": 8},  # the function's docstring: moves to the first line with code
        {"line": 0},
    ])
    assert [b["verified"] for b in bps] == [True, False, False, False, False, True, False]
    assert "not inside a function" in bps[1]["message"]
    assert "attribute access is not allowed" in bps[2]["message"]
    assert "syntax error" in bps[3]["message"]
    assert "hit count 'often' is not understood" in bps[4]["message"]
    assert bps[5]["line"] == 10
    other = tmp_path / "other.py"
    other.write_text("def g():\n    return 1\n")
    bp = dap.set_breakpoints(other, [{"line": 2}])[0]
    assert bp["verified"] is False and "simulates strawberry.py only" in bp["message"]
    assert "setBreakpoints needs source.path" in dap.fail("setBreakpoints", {"breakpoints": [{"line": 1}]})
    assert "must be a list" in dap.fail("setBreakpoints", {"source": {"path": str(STRAWBERRY)}, "breakpoints": 5})
    dap.req("configurationDone")
    assert dap.wait_stop()["reason"] == "breakpoint"
    assert dap.where()[0] == 10  # the moved breakpoint hit first


def test_breakpoints_set_before_launch_are_verified_after(tmp_path: Path) -> None:
    client = DapClient.spawn()
    try:
        client.req("initialize", {"adapterID": "neuraldbg"})
        early = client.set_breakpoints(STRAWBERRY, [{"line": 13}, {"line": 1}])
        assert [b["verified"] for b in early] == [False, False]
        client.req("launch", {"program": str(STRAWBERRY), "function": "count_letter", "allowExecution": True})
        changed = [client.wait_event("breakpoint"), client.wait_event("breakpoint")]
        assert {(c["breakpoint"]["id"], c["breakpoint"]["verified"]) for c in changed} == {
            (early[0]["id"], True), (early[1]["id"], False)}
        client.wait_event("initialized")
        client.req("configurationDone")
        assert client.wait_stop()["hitBreakpointIds"] == [early[0]["id"]]
    finally:
        client.shutdown()
    client.assert_one_response_each()


def test_requests_in_a_burst_get_one_response_each_in_order(dap: DapClient) -> None:
    dap.req("launch", {"program": str(STRAWBERRY), "function": "count_letter", "allowExecution": True})
    dap.wait_event("initialized")
    dap.set_breakpoints(STRAWBERRY, [{"line": 13}])
    dap.req("configurationDone")
    dap.wait_stop()
    seqs = []
    for command, args in [("next", {"threadId": 1}), ("stackTrace", {"threadId": 1}), ("stepBack", {"threadId": 1}),
                          ("evaluate", {"expression": "count"}), ("bogus", {}), ("continue", {"threadId": 1}),
                          ("threads", None), ("variables", {"variablesReference": 999}), ("stepIn", {"threadId": 1}),
                          ("scopes", {"frameId": -5}), ("pause", {"threadId": 1}), ("stepOut", {"threadId": 1})]:
        seqs.append(dap.send(command, args))
    responses = [dap.response(s) for s in seqs]
    assert [r["command"] for r in responses] == ["next", "stackTrace", "stepBack", "evaluate", "bogus", "continue",
                                                 "threads", "variables", "stepIn", "scopes", "pause", "stepOut"]
    assert [r["success"] for r in responses] == [True, True, True, True, False, True, True, False, True, False, True, True]
    # the evaluate ran after next and stepBack were done, at the first hit again
    assert responses[3]["body"]["result"] == "0"
    assert "stale" in responses[7]["message"] and "no frame -5" in responses[9]["message"]
    stops = [dap.wait_stop() for _ in range(4)]
    assert all("reason" in s for s in stops[:3])


def test_set_variable_is_not_supported_on_exec(dap: DapClient) -> None:
    dap.req("launch", {"program": str(STRAWBERRY), "function": "count_letter", "allowExecution": True})
    dap.wait_event("initialized")
    dap.set_breakpoints(STRAWBERRY, [{"line": 13}])
    dap.req("configurationDone")
    dap.wait_stop()
    frame = dap.stack()[0]["id"]
    scope = dap.req("scopes", {"frameId": frame})["scopes"][0]["variablesReference"]
    message = dap.fail("setVariable", {"variablesReference": scope, "name": "count", "value": "5"})
    assert "not supported on the exec backend" in message
    assert dap.locals(frame)["count"] == "0"  # nothing changed


def test_terminate_then_disconnect(dap: DapClient) -> None:
    dap.req("launch", {"program": str(STRAWBERRY), "function": "count_letter", "allowExecution": True, "stopOnEntry": True})
    dap.wait_event("initialized")
    dap.req("configurationDone")
    dap.wait_stop()
    dap.req("terminate", {})
    dap.wait_event("terminated")
    assert "ended" in dap.fail("next", {"threadId": 1})
