"""The protocol contract of lsp/README.md beyond hovers and hints: settings,
inline completion advertisement, work-done progress, inlay refresh,
verification against a real run, and inline values from the in-process
debug adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import attrs
import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp_fixtures import (
    close,
    EXAMPLES,
    REPO,
    SERVER_COMMAND,
    code_block_lines,
    expected_inlay_labels,
    hover_text,
    make_client,
    open_doc,
    position,
    start,
    truth,
    validate,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)
STRAWBERRY = EXAMPLES / "strawberry.py"
HOLE = EXAMPLES / "hole.py"


def _doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


async def _hover(client: LanguageClient, path: Path, line: int, word: str) -> str:
    return hover_text(await client.text_document_hover_async(types.HoverParams(
        text_document=_doc(path.as_uri()), position=position(path, line, word))))


async def _hover_saying(client: LanguageClient, path: Path, line: int, word: str, expected: str,
                        timeout: float = 20.0) -> str:
    """Hover again until the text says ``expected`` (settings are re-read
    asynchronously: wait for their effect, never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    text = await _hover(client, path, line, word)
    while expected not in text and loop.time() < end:
        await asyncio.sleep(0.1)
        text = await _hover(client, path, line, word)
    assert expected in text, text
    return text


def _traced(client: LanguageClient, name: str) -> bool:
    """The server said it was tracing ``name``, then that it is idle again."""
    states = [(s["state"], s["message"]) for s in client.statuses]
    busy = next((i for i, (state, message) in enumerate(states) if state == "busy" and name in message), None)
    return busy is not None and any(state == "ready" for state, _ in states[busy + 1:])


async def _client(editor: str, settings: dict | None, root: Path, *, init_only: dict | None = None,
                  capabilities: types.ClientCapabilities | None = None) -> LanguageClient:
    client = await CONFIG.start()
    if settings is not None:
        client.set_configuration(settings, section="neuraldbg")
    client.capabilities = capabilities or client_capabilities(editor)
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities or client_capabilities(editor), root_uri=root.as_uri(),
        initialization_options=init_only if init_only is not None else settings))
    return client


async def test_settings_configuration_wins_and_bad_values_are_reported(tmp_path: Path):
    # initializationOptions say exec without execution; workspace/configuration allows it, with bad values
    client = await _client("neovim", {"allowExecution": True, "maxFrames": "lots", "backend": "gpu", "debounceMs": 50},
                           tmp_path, init_only={"allowExecution": False, "temperature": True})
    try:
        await wait_until(lambda: sum("bad value" in m.message or "unknown backend" in m.message
                                     for m in client.log_messages) >= 3)
        warnings = [m for m in client.log_messages if m.type == types.MessageType.Warning]
        text = "\n".join(m.message for m in warnings)
        assert "setting temperature: bad value True" in text
        assert "setting maxFrames: bad value 'lots'" in text
        assert "unknown backend 'gpu'" in text
        uri = open_doc(client, STRAWBERRY)
        # allowExecution from workspace/configuration won; the bad values kept their defaults
        assert "count: 0 → 1 → 2 → 3" in code_block_lines(await _hover(client, STRAWBERRY, 13, "count"))
        await wait_until(lambda: client.statuses and client.statuses[-1]["backend"] == "exec")
        # didChangeConfiguration re-reads: execution off -> hovers say why
        client.set_configuration({"allowExecution": False}, section="neuraldbg")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        text = await _hover_saying(client, STRAWBERRY, 13, "count", "running code is not allowed in this workspace")
        assert "neuraldbg.allowExecution" in text
        lenses = await client.text_document_code_lens_async(types.CodeLensParams(text_document=_doc(uri)))
        assert [l.command.title for l in lenses] == ['▶ Simulate count_letter("strawberry", "r")']
    finally:
        await close(client)


async def test_settings_pushed_to_a_client_without_workspace_configuration(tmp_path: Path):
    caps = client_capabilities("neovim")
    caps = attrs.evolve(caps, workspace=attrs.evolve(caps.workspace, configuration=False))
    client = await _client("neovim", None, tmp_path, init_only={}, capabilities=caps)
    try:
        open_doc(client, STRAWBERRY)
        assert "running code is not allowed" in await _hover(client, STRAWBERRY, 13, "count")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"neuraldbg": {"allowExecution": True}}))
        text = await _hover_saying(client, STRAWBERRY, 13, "count", "count: 0 → 1 → 2 → 3")
        assert "count: 0 → 1 → 2 → 3" in code_block_lines(text)
    finally:
        await close(client)


async def test_inline_completion_only_for_clients_that_support_it(tmp_path: Path):
    caps = client_capabilities("visual-studio-code")
    caps = attrs.evolve(caps, text_document=attrs.evolve(caps.text_document,
                                                         inline_completion=types.InlineCompletionClientCapabilities()))
    client = await CONFIG.start()
    try:
        client.set_configuration({"allowExecution": True}, section="neuraldbg")
        init = await client.initialize_session(types.InitializeParams(capabilities=caps, root_uri=tmp_path.as_uri(),
                                                                      initialization_options={"allowExecution": True}))
        assert init.capabilities.inline_completion_provider is not None
        uri = open_doc(client, HOLE)
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=_doc(uri), position=types.Position(line=10, character=21),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        items = result.items if isinstance(result, types.InlineCompletionList) else result
        assert [(i.insert_text, i.range.start.character, i.range.end.character) for i in items] == [("x", 19, 21)]
        # away from a hole: nothing
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=_doc(uri), position=types.Position(line=7, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        assert not (result.items if isinstance(result, types.InlineCompletionList) else result)
    finally:
        await close(client)


async def test_capabilities_per_editor(tmp_path: Path):
    for editor, encoding in [("visual-studio-code", "utf-16"), ("neovim", "utf-8"), ("emacs", "utf-32")]:
        client = await CONFIG.start()
        try:
            init = await start(client, editor, {}, tmp_path)
            caps = init.capabilities
            assert caps.position_encoding == encoding
            assert caps.inline_completion_provider is None  # none of these snapshots declares it
            assert caps.hover_provider and caps.inlay_hint_provider and caps.inline_value_provider
            assert caps.code_lens_provider is not None and caps.code_action_provider is not None
            assert set(caps.execute_command_provider.commands) >= {"neuraldbg.simulate", "neuraldbg.resample",
                                                                    "neuraldbg.verify", "neuraldbg.setEntry"}
            assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
        finally:
            await close(client)


SLOW = '''import time


def slow(n):
    """
    >>> slow(6)
    15
    """
    total = 0
    for i in range(n):
        time.sleep(0.2)
        total += i
    return total
'''


async def test_work_done_progress_and_inlay_refresh(tmp_path: Path):
    client = await _client("neovim", {"allowExecution": True}, tmp_path)
    try:
        path = tmp_path / "slow.py"
        path.write_text(SLOW)
        open_doc(client, path)
        await wait_until(lambda: any(
            any(isinstance(v, types.WorkDoneProgressEnd) for v in values) for values in client.progress_reports.values()),
            timeout=60)
        (values,) = [v for v in client.progress_reports.values() if v]
        assert isinstance(values[0], types.WorkDoneProgressBegin) and values[0].title == "neuraldbg"
        assert isinstance(values[-1], types.WorkDoneProgressEnd) and values[-1].message == "slow: 23 frames (complete)"
        reports = [v.message for v in values if isinstance(v, types.WorkDoneProgressReport)]
        assert reports and all(m.startswith("tracing slow: ") and m.endswith(("frame", "frames")) for m in reports)
        await wait_until(lambda: _traced(client, "slow"))
        assert client.inlay_refreshes > 0  # neovim declares workspace.inlayHint.refreshSupport
    finally:
        await close(client)
    # emacs declares no inlay refresh support: after the same streamed trace (by the point where neovim
    # had its refreshes) none was sent, and the hints are there when emacs asks for them
    client = await _client("emacs", {"allowExecution": True}, tmp_path)
    try:
        uri = open_doc(client, path)
        await wait_until(lambda: _traced(client, "slow"), timeout=60)
        assert client.inlay_refreshes == 0
        hints = await client.text_document_inlay_hint_async(types.InlayHintParams(text_document=_doc(uri), range=types.Range(
            start=types.Position(line=0, character=0), end=types.Position(line=len(SLOW.splitlines()), character=0))))
        got = {h.position.line + 1: h.label for h in hints}
        assert got == expected_inlay_labels(truth(path, "slow", "slow(6)"), "slow", range(1, 14)) and 12 in got, got
    finally:
        await close(client)


RANDOM = '''import random


def roll(sides):
    """
    >>> roll(1000000)
    """
    r = random.randrange(sides)
    s = r + 1
    return s
'''


async def test_verify_with_a_real_run(tmp_path: Path):
    client = await _client("visual-studio-code", {"backend": "replay", "allowExecution": True}, tmp_path)
    try:
        uri = open_doc(client, STRAWBERRY)
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="neuraldbg.verify", arguments=[uri, "count_letter", 'count_letter("strawberry", "r")']))
        validate(result, "verify-result.json")
        assert result == {"ok": True, "message": "count_letter: the prediction matches the real run (28 frames)"}
        # a program whose two real runs differ: the replayed "prediction" diverges from a fresh run
        path = tmp_path / "dice.py"
        path.write_text(RANDOM)
        dice = open_doc(client, path)
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="neuraldbg.verify", arguments=[{"uri": dice, "function": "roll"}]))
        validate(result, "verify-result.json")
        assert result["ok"] is False and result["step"] == 2 and result["line"] == 9
        assert result["message"].startswith("first divergence at step 2, line 9: predicted r=")
        await wait_until(lambda: any(d.code == "divergence" for d in client.diagnostics.get(dice, ())))
        (d,) = [d for d in client.diagnostics[dice] if d.code == "divergence"]
        assert d.range.start.line == 8 and d.message.endswith("(for roll(1000000))")
        assert d.severity == types.DiagnosticSeverity.Warning
    finally:
        await close(client)


async def test_resample_command_returns_a_trace(tmp_path: Path):
    client = await _client("neovim", {"backend": "replay", "allowExecution": True}, tmp_path)
    try:
        uri = open_doc(client, STRAWBERRY)
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="neuraldbg.resampleInput", arguments=[{"uri": uri, "position": {"line": 12, "character": 4}}]))
        validate(result, "trace.json")
        expected = truth(STRAWBERRY, "count_letter", 'count_letter("strawberry", "r")').to_json()
        assert result["frames"] == expected["frames"]
    finally:
        await close(client)


async def test_inline_values_from_the_in_process_debug_adapter(tmp_path: Path):
    import sys

    sys.path.insert(0, str(REPO / "tests" / "dap_client"))
    from pyclient import DapClient

    client = await _client("visual-studio-code", {"allowExecution": True}, tmp_path)
    dap = None
    try:
        uri = open_doc(client, STRAWBERRY)
        answer = await client.protocol.send_request_async("neuraldbg/debugAdapter", {})
        validate(answer, "debug-adapter-result.json")
        again = await client.protocol.send_request_async("neuraldbg/debugAdapter", {})
        assert again == answer  # one adapter per server process
        dap = await asyncio.to_thread(DapClient.connect, answer["port"])
        stopped = await asyncio.to_thread(dap.start, STRAWBERRY, breakpoints=[{"line": 13}], function="count_letter")
        assert stopped["reason"] == "breakpoint"
        frames = await asyncio.to_thread(dap.stack)
        top = frames[0]
        assert top["line"] == 13
        names = await asyncio.to_thread(dap.locals, top["id"])
        values = await client.text_document_inline_value_async(types.InlineValueParams(
            text_document=_doc(uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=16, character=0)),
            context=types.InlineValueContext(frame_id=top["id"], stopped_location=types.Range(
                start=types.Position(line=12, character=0), end=types.Position(line=12, character=22)))))
        got = [(v.text, v.range.start.line, v.range.start.character) for v in values]
        assert got == [(f"count = {names['count']}", 12, 12)], (got, names)
        assert names["count"] == "0"  # the first stop: before `count += 1` ran
        # the next stop: the inline value follows the adapter's frame
        await asyncio.to_thread(dap.req, "continue", {"threadId": 1})
        await asyncio.to_thread(dap.wait_stop)
        top = (await asyncio.to_thread(dap.stack))[0]
        values = await client.text_document_inline_value_async(types.InlineValueParams(
            text_document=_doc(uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=16, character=0)),
            context=types.InlineValueContext(frame_id=top["id"], stopped_location=types.Range(
                start=types.Position(line=12, character=0), end=types.Position(line=12, character=22)))))
        assert [v.text for v in values] == ["count = 1"]
        # another file: nothing
        other = await client.text_document_inline_value_async(types.InlineValueParams(
            text_document=_doc(open_doc(client, HOLE)),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=5, character=0)),
            context=types.InlineValueContext(frame_id=top["id"], stopped_location=types.Range(
                start=types.Position(line=2, character=0), end=types.Position(line=2, character=1)))))
        assert not other
    finally:
        if dap is not None:
            await asyncio.to_thread(dap.shutdown)
        await close(client)
