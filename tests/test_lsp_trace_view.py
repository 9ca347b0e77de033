"""``neuraldbg/trace`` as the editors' trace views ask for it (``compare: true``):
the real run beside a prediction, the first divergence, the model's
per-frame confidence once the real run is rated; and the work-done progress
of the traces it waits for, which must all be closed by the time the answer
comes (issue 15 item 5: a "tracing …" progress left on screen after Show Trace).
Real server over stdio, pytest-lsp with VS Code's capabilities."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import EXAMPLES, SERVER_COMMAND, close, make_client, open_doc, start, truth, validate
from test_lsp_contract import SLOW  # slow(6): 23 frames, about a second

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)
STRAWBERRY = EXAMPLES / "strawberry.py"
STRAWBERRY_CALL = 'count_letter("strawberry", "r")'


async def _client(settings: dict, root: Path) -> LanguageClient:
    client = await CONFIG.start()
    await start(client, "visual-studio-code", settings, root)
    return client


async def _trace(client: LanguageClient, params: dict) -> dict:
    result = await client.protocol.send_request_async("neuraldbg/trace", params)
    validate(result, "trace.json")
    return result


def _frames(trace_json: dict) -> list[tuple]:
    return [(f["event"], f["line"], f["function"], f["depth"], f["locals"], f["value"]) for f in trace_json["frames"]]


def _unclosed(client: LanguageClient) -> dict[str, list[str]]:
    """Progress tokens whose last report is not an end, with their kinds."""
    return {str(token): [v.kind for v in values] for token, values in client.progress_reports.items()
            if values and values[-1].kind != "end"}


def _begun(client: LanguageClient) -> int:
    return sum(1 for values in client.progress_reports.values() if values and values[0].kind == "begin")


async def test_compare_on_exec_says_the_trace_is_the_real_run(tmp_path: Path) -> None:
    client = await _client({"backend": "exec", "allowExecution": True}, tmp_path)
    try:
        uri = open_doc(client, STRAWBERRY)
        result = await _trace(client, {"uri": uri, "function": "count_letter", "compare": True})
        assert _frames(result) == _frames(truth(STRAWBERRY, "count_letter", STRAWBERRY_CALL).to_json())
        comparison = result["comparison"]
        assert comparison["predicted"] is False and comparison["executed"] is None and comparison["divergence"] is None
        assert "real run" in comparison["reason"]
        plain = await _trace(client, {"uri": uri, "function": "count_letter"})
        assert "comparison" not in plain  # only when asked for
        with pytest.raises(JsonRpcInvalidParams, match="compare must be a boolean"):
            await client.protocol.send_request_async("neuraldbg/trace", {"uri": uri, "function": "count_letter", "compare": "yes"})
    finally:
        await close(client)


async def test_compare_on_replay_puts_the_real_run_beside_the_prediction(tmp_path: Path) -> None:
    client = await _client({"backend": "replay", "allowExecution": True}, tmp_path)
    try:
        uri = open_doc(client, STRAWBERRY)
        result = await _trace(client, {"uri": uri, "function": "count_letter", "compare": True})
        assert result["backend"] == "replay"
        comparison = result["comparison"]
        assert comparison["predicted"] is True and "reason" not in comparison
        executed = comparison["executed"]
        assert executed["backend"] == "exec" and executed["call"] == STRAWBERRY_CALL
        assert _frames(executed) == _frames(truth(STRAWBERRY, "count_letter", STRAWBERRY_CALL).to_json())
        # the replay backend feeds the real run back through the model path: no divergence
        assert _frames(result) == _frames(executed) and comparison["divergence"] is None
        assert "confidence" not in comparison  # replay has no model to rate the run with
    finally:
        await close(client)


async def test_compare_without_execution_gives_the_reason(tmp_path: Path) -> None:
    client = await _client({"backend": "replay", "allowExecution": False}, tmp_path)
    try:
        uri = open_doc(client, STRAWBERRY)
        # replay needs a real run to replay: refused with the execution policy's reason
        with pytest.raises(Exception, match="allowExecution|execution"):
            await _trace(client, {"uri": uri, "function": "count_letter", "compare": True})
    finally:
        await close(client)


@pytest.mark.parametrize("backend", ["exec", "replay"])
async def test_every_progress_begin_has_its_end_when_show_trace_gets_its_answer(tmp_path: Path, backend: str) -> None:
    """The request Show Trace sends, while the trace the opened file started is
    still running, then after an edit restarts it, then for another input: by the
    time each answer arrives, every $/progress begin has had its end (the end is
    sent when the trace finishes, before the answer)."""
    client = await _client({"backend": backend, "allowExecution": True}, tmp_path)
    try:
        path = tmp_path / "slow.py"
        path.write_text(SLOW)
        uri = open_doc(client, path)
        await asyncio.sleep(0.6)  # the file's own trace is running and its bar has begun
        result = await _trace(client, {"uri": uri, "function": "slow", "compare": True})
        assert result["status"] == "complete" and result["frames"][-1]["value"] == "15"
        assert _begun(client) >= 1, client.progress_reports  # the slow trace did report progress
        assert _unclosed(client) == {}, client.progress_reports

        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=SLOW.replace("0.2", "0.25"))]))
        result = await _trace(client, {"uri": uri, "function": "slow", "compare": True})
        assert result["frames"][-1]["value"] == "15"
        assert _unclosed(client) == {}, client.progress_reports

        both = await asyncio.gather(_trace(client, {"uri": uri, "function": "slow", "call": "slow(4)", "compare": True}),
                                    _trace(client, {"uri": uri, "function": "slow", "call": "slow(3)", "compare": True}))
        assert [r["frames"][-1]["value"] for r in both] == ["6", "3"]
        assert _unclosed(client) == {}, client.progress_reports
    finally:
        await close(client)


PROGRAM = '''def count(xs):
    """
    >>> count([1, 2])
    3
    """
    total = 0
    for x in xs:
        total += x
    return total
'''


async def test_confidence_per_frame_once_the_real_run_is_rated(oracle_server_url: str, tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text(PROGRAM)
    real = truth(path, "count", "count([1, 2])")
    client = await _client({"backend": "remote", "url": oracle_server_url, "allowExecution": True}, tmp_path)
    try:
        uri = open_doc(client, path)
        comparison: dict = {}
        for _ in range(240):  # the rating runs in the background after the real run
            comparison = (await _trace(client, {"uri": uri, "function": "count", "compare": True}))["comparison"]
            if "confidence" in comparison:
                break
            await asyncio.sleep(0.5)
        assert comparison["predicted"] is True and comparison["divergence"] is None  # the oracle writes the real run
        assert _frames(comparison["executed"]) == _frames(real.to_json())
        confidence = comparison["confidence"]
        assert len(confidence) == len(real.frames) and confidence[0] is None  # the call frame is the input
        assert all(isinstance(p, float) and 0.0 < p <= 1.0 for p in confidence[1:]), confidence
        assert comparison["agreement"] == {"frames": len(real.frames) - 1, "agreeing": len(real.frames) - 1}
    finally:
        await close(client)
