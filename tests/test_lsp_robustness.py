"""The language server under stress and bad input: cancellation, edit
storms, position encodings, a crashing / unreachable backend, unknown
documents, out-of-range positions, malformed params, syntax errors while
typing, a 1 MB file, a client that goes away mid-request."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import (
    close,
    EXAMPLES,
    RawConnection,
    SERVER_COMMAND,
    code_block_lines,
    hover_text,
    make_client,
    open_doc,
    position,
    start,
    validate,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

STRAWBERRY = EXAMPLES / "strawberry.py"
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)

SLOW = '''import time


def slow(n):
    """Sleeps n times.

    >>> slow(8)
    28
    """
    total = 0
    for i in range(n):
        time.sleep(0.5)
        total += i
    return total
'''

FAULTY = '''import os


def crash():
    """
    >>> crash()
    """
    x = 1
    os._exit(3)


def spin(n):
    """
    >>> spin(1)
    """
    while n > 0:
        n = n + 1
    return n


def fine(a):
    """
    >>> fine(2)
    4
    """
    b = a * 2
    return b
'''


@pytest_lsp.fixture(config=CONFIG)
async def vscode(lsp_client: LanguageClient, tmp_path: Path):
    await start(lsp_client, "visual-studio-code", {"allowExecution": True, "maxFrames": 300}, tmp_path)
    yield
    await lsp_client.shutdown_session()


def _doc(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


async def _hover_at(client: LanguageClient, uri: str, pos: types.Position) -> str:
    return hover_text(await client.text_document_hover_async(types.HoverParams(text_document=_doc(uri), position=pos)))


async def _hover_until(client: LanguageClient, uri: str, pos: types.Position, expected: str, timeout: float = 60.0) -> str:
    """Hover again while the server answers "tracing…" (what a user does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    text = await _hover_at(client, uri, pos)
    while "tracing…" in text and loop.time() < deadline:
        await asyncio.sleep(0.3)
        text = await _hover_at(client, uri, pos)
    assert expected in code_block_lines(text), text
    return text


async def test_cancel_a_hover_on_a_slow_function(vscode: LanguageClient, tmp_path: Path):
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    uri = open_doc(vscode, path)
    params = types.HoverParams(text_document=_doc(uri), position=position(path, 13, "total"))
    pending = asyncio.ensure_future(vscode.protocol.send_request_async(types.TEXT_DOCUMENT_HOVER, params, msg_id="slow-hover"))
    await asyncio.sleep(0.3)
    vscode.cancel_request(types.CancelParams(id="slow-hover"))
    with pytest.raises(JsonRpcRequestCancelled) as info:
        await pending
    assert info.value.code == -32800
    # the server keeps answering, right away, for another document
    other = open_doc(vscode, STRAWBERRY)
    text = await _hover_at(vscode, other, position(STRAWBERRY, 13, "count"))
    assert "count: 0 → 1 → 2 → 3" in code_block_lines(text)
    # and the slow trace itself went on: a later hover gets its values
    await _hover_until(vscode, uri, position(path, 13, "total"), "total: 0 → 1 → 3 → 6 → 10 → 15 → 21 → 28")


async def test_cancel_a_trace_request(vscode: LanguageClient, tmp_path: Path):
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    uri = open_doc(vscode, path)
    pending = asyncio.ensure_future(
        vscode.protocol.send_request_async("neuraldbg/trace", {"uri": uri, "function": "slow"}, msg_id="slow-trace"))
    await asyncio.sleep(0.2)
    vscode.cancel_request(types.CancelParams(id="slow-trace"))
    with pytest.raises(JsonRpcRequestCancelled):
        await pending
    result = await vscode.protocol.send_request_async("neuraldbg/trace", {"uri": uri, "function": "slow"})
    assert result["status"] == "complete" and result["frames"][-1]["value"] == "28"


def _edit(uri: str, version: int, line: int, start: int, end: int, text: str) -> types.DidChangeTextDocumentParams:
    rng = types.Range(start=types.Position(line=line, character=start), end=types.Position(line=line, character=end))
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)])


async def test_edit_storm_then_hover_is_right(vscode: LanguageClient):
    uri = open_doc(vscode, STRAWBERRY)
    src = STRAWBERRY.read_text().splitlines()
    line = 12  # 0-based: "            count += 1"
    end = len(src[line])
    version = 1
    comment = "  # " + "abcdefghij" * 50  # 504 characters typed one by one
    for i, ch in enumerate(comment):
        version += 1
        vscode.text_document_did_change(_edit(uri, version, line, end + i, end + i, ch))
    for i in range(len(comment) - 1, -1, -1):  # and deleted again
        version += 1
        vscode.text_document_did_change(_edit(uri, version, line, end + i, end + i + 1, ""))
    col = src[line].index("1")
    version += 1
    vscode.text_document_did_change(_edit(uri, version, line, col, col + 1, "2"))
    text = await _hover_at(vscode, uri, position(STRAWBERRY, 13, "count"))
    assert "count: 0 → 2 → 4 → 6" in code_block_lines(text), text
    # the server applied all 1009 edits in order: the edited line ends where "count += 2" ends (a lost or
    # misplaced deletion would leave comment text behind and move the end-of-line hint)
    hints = await vscode.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=_doc(uri), range=types.Range(start=types.Position(line=0, character=0),
                                                   end=types.Position(line=len(src), character=0))))
    placed = [(h.position.line, h.position.character, h.label) for h in hints if h.position.line == line]
    assert placed == [(line, len(src[line]), "count = 2 → 4 → 6")], placed
    result = await vscode.protocol.send_request_async("neuraldbg/trace", {"uri": uri, "function": "count_letter"})
    assert result["frames"][-1]["value"] == "6"


EMOJI = '''def decorate(word):
    """
    >>> decorate("ab")
    'é😀ab'
    """
    pre = "é😀"; out = pre + word
    return out
'''


@pytest.mark.parametrize("editor", ["visual-studio-code", "neovim", "emacs"])
async def test_position_encodings(editor: str, tmp_path: Path):
    """The server converts columns with the encoding it negotiated (utf-16
    for VS Code, utf-8 for Neovim, utf-32 for Emacs)."""
    client = await CONFIG.start()
    try:
        result = await start(client, editor, {"allowExecution": True}, tmp_path)
        encoding = result.capabilities.position_encoding or "utf-16"
        assert encoding == {"visual-studio-code": "utf-16", "neovim": "utf-8", "emacs": "utf-32"}[editor]
        path = tmp_path / "emoji.py"
        path.write_text(EMOJI)
        uri = open_doc(client, path)
        line = EMOJI.splitlines()[5]
        col = line.index("out")
        prefix = line[:col]
        units = {"utf-8": len(prefix.encode("utf-8")), "utf-16": len(prefix.encode("utf-16-le")) // 2,
                 "utf-32": len(prefix)}[str(encoding)]
        hover = await client.text_document_hover_async(types.HoverParams(
            text_document=_doc(uri), position=types.Position(line=5, character=units + 1)))
        assert "out: 'é😀ab'" in code_block_lines(hover_text(hover)), hover_text(hover)
        assert hover.range.start.character == units and hover.range.end.character == units + 3
        # an edit after the emoji, in the same units: rename `out` to `res` on that line
        client.text_document_did_change(_edit(uri, 2, 5, units, units + 3, "res"))
        client.text_document_did_change(_edit(uri, 3, 6, 11, 14, "res"))
        hover = await client.text_document_hover_async(types.HoverParams(
            text_document=_doc(uri), position=types.Position(line=6, character=12)))
        assert "res: 'é😀ab'" in code_block_lines(hover_text(hover)), hover_text(hover)
    finally:
        await close(client)


async def test_program_crash_and_timeout_then_next_request_works(tmp_path: Path):
    client = await CONFIG.start()
    try:
        await start(client, "neovim", {"allowExecution": True, "timeoutSeconds": 2, "maxFrames": 500}, tmp_path)
        path = tmp_path / "faulty.py"
        path.write_text(FAULTY)
        uri = open_doc(client, path)
        text = await _hover_at(client, uri, position(path, 8, "x"))
        assert "no trace: the program ended the process (exit code 3)" in text, text
        await wait_until(lambda: any(s["state"] == "error" and "crash" in s["message"] for s in client.statuses))
        text = await _hover_at(client, uri, position(path, 26, "b"))
        assert "b: 4" in code_block_lines(text), text
        await wait_until(lambda: client.statuses[-1]["state"] == "ready")
        # the endless loop (n grows: no exact cycle) runs out of frame budget:
        # "stopped early", an Information, not "may not halt"; nothing hangs
        await wait_until(lambda: any(d.code == "stopped-early" for d in client.diagnostics.get(uri, ())), timeout=60)
        (halt,) = [d for d in client.diagnostics[uri] if d.code == "stopped-early"]
        assert halt.range.start.line == 11 and halt.severity == types.DiagnosticSeverity.Information
        assert halt.message == ("stopped early: stopped after 500 frames, the frame budget, with the program still "
                                "running (for spin(1))")
        assert not [d for d in client.diagnostics[uri] if d.code == "may-not-halt"]
        for status in client.statuses:
            validate(status, "status.json")
    finally:
        await close(client)


async def test_unreachable_model_server_then_recovery(tmp_path: Path):
    """The remote backend pointed at a dead port: status error with a clear
    message, hovers say why, and switching settings makes the next request
    work."""
    client = await CONFIG.start()
    try:
        settings = {"backend": "remote", "url": "http://127.0.0.1:9"}
        await start(client, "neovim", settings, tmp_path)
        uri = open_doc(client, STRAWBERRY)
        text = await _hover_at(client, uri, position(STRAWBERRY, 13, "count"))
        deadline = asyncio.get_running_loop().time() + 60
        while "no trace" not in text and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            text = await _hover_at(client, uri, position(STRAWBERRY, 13, "count"))
        assert "no trace:" in text, text
        await wait_until(lambda: client.statuses and client.statuses[-1]["state"] == "error", timeout=60)
        status = client.statuses[-1]
        validate(status, "status.json")
        assert "count_letter" in status["message"] and status["backend"] == "remote"
        # the user fixes the settings: the next request works
        client.set_configuration({"backend": "exec", "allowExecution": True}, section="neuraldbg")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await wait_until(lambda: client.statuses[-1]["backend"] == "exec")
        text = await _hover_at(client, uri, position(STRAWBERRY, 13, "count"))
        assert "count: 0 → 1 → 2 → 3" in code_block_lines(text), text
        await wait_until(lambda: client.statuses[-1]["state"] == "ready")
    finally:
        await close(client)


async def test_bad_requests_get_empty_results_or_errors(vscode: LanguageClient):
    uri = open_doc(vscode, STRAWBERRY)
    unknown = "file:///nowhere/missing.py"
    assert await vscode.text_document_hover_async(types.HoverParams(
        text_document=_doc(unknown), position=types.Position(line=0, character=0))) is None
    for pos in (types.Position(line=10_000, character=0), types.Position(line=12, character=10_000),
                types.Position(line=0, character=0)):
        assert await vscode.text_document_hover_async(types.HoverParams(text_document=_doc(uri), position=pos)) is None
    assert not await vscode.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=_doc(unknown), range=types.Range(start=types.Position(line=0, character=0),
                                                       end=types.Position(line=5, character=0))))
    far = await vscode.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=_doc(uri), range=types.Range(start=types.Position(line=500, character=0),
                                                   end=types.Position(line=900, character=0))))
    assert not far
    assert not await vscode.text_document_code_lens_async(types.CodeLensParams(text_document=_doc(unknown)))
    assert not await vscode.text_document_code_action_async(types.CodeActionParams(
        text_document=_doc(unknown), range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
        context=types.CodeActionContext(diagnostics=[])))
    with pytest.raises(JsonRpcInvalidParams, match="unknown document"):
        await vscode.protocol.send_request_async("neuraldbg/trace", {"uri": unknown, "function": "f"})
    with pytest.raises(JsonRpcInvalidParams, match="no function 'nope'"):
        await vscode.protocol.send_request_async("neuraldbg/trace", {"uri": uri, "function": "nope"})
    with pytest.raises(JsonRpcInvalidParams, match="does not parse"):
        await vscode.protocol.send_request_async("neuraldbg/trace", {"uri": uri, "function": "count_letter", "call": "count_letter("})
    with pytest.raises(JsonRpcInvalidParams):
        await vscode.protocol.send_request_async("neuraldbg/trace", ["not", "an", "object"])
    with pytest.raises(JsonRpcException, match="unknown document|Command name"):
        await vscode.workspace_execute_command_async(types.ExecuteCommandParams(command="neuraldbg.simulate", arguments=[unknown, "f"]))
    bad = await vscode.protocol.send_request_async("neuraldbg/setEntry", {"uri": uri, "function": "count_letter", "call": "len(3)"})
    validate(bad, "set-entry-result.json")
    assert bad["ok"] is False and "calls len, not count_letter" in bad["error"]
    text = await _hover_at(vscode, uri, position(STRAWBERRY, 13, "count"))
    assert "count: 0 → 1 → 2 → 3" in code_block_lines(text)


async def test_set_entry_changes_the_input(vscode: LanguageClient):
    uri = open_doc(vscode, STRAWBERRY)
    result = await vscode.protocol.send_request_async("neuraldbg/setEntry",
                                                       {"uri": uri, "function": "count_letter", "call": 'count_letter("banana", "a")'})
    validate(result, "set-entry-result.json")
    assert result == {"ok": True, "call": "count_letter('banana', 'a')"}
    text = await _hover_at(vscode, uri, position(STRAWBERRY, 13, "count"))
    assert "count: 0 → 1 → 2 → 3" in code_block_lines(text) and "input `count_letter('banana', 'a')`" in text
    lenses = await vscode.text_document_code_lens_async(types.CodeLensParams(text_document=_doc(uri)))
    assert [l.command.title for l in lenses] == ["▶ Simulate count_letter('banana', 'a')"]
    cleared = await vscode.workspace_execute_command_async(types.ExecuteCommandParams(
        command="neuraldbg.setEntry", arguments=[uri, "count_letter", ""]))
    assert cleared == {"ok": True, "call": ""}
    text = await _hover_at(vscode, uri, position(STRAWBERRY, 13, "count"))
    assert 'input `count_letter("strawberry", "r")`' in text


async def test_syntax_errors_while_typing(vscode: LanguageClient):
    uri = open_doc(vscode, STRAWBERRY)
    src = STRAWBERRY.read_text().splitlines()
    line = 12
    col = src[line].index("1")
    vscode.text_document_did_change(_edit(uri, 2, line, col, col + 1, ""))  # "count += " : broken
    await wait_until(lambda: any(d.code == "syntax" for d in vscode.diagnostics.get(uri, ())), timeout=20)
    text = await _hover_at(vscode, uri, position(STRAWBERRY, 11, "ch"))
    assert "fix the syntax error at line" in text
    vscode.text_document_did_change(_edit(uri, 3, line, col, col, "5"))
    await wait_until(lambda: not any(d.code == "syntax" for d in vscode.diagnostics.get(uri, ())), timeout=20)
    text = await _hover_at(vscode, uri, position(STRAWBERRY, 13, "count"))
    assert "count: 0 → 5 → 10 → 15" in code_block_lines(text), text


def _big_source(target_bytes: int = 1_000_000) -> tuple[str, int]:
    chunks = []
    size = 0
    i = 0
    while size < target_bytes:
        chunk = f"def helper_{i}(x):\n    y = x + {i}\n    z = y * 2  # some padding to make lines longer\n    return z\n\n\n"
        chunks.append(chunk)
        size += len(chunk)
        i += 1
    tail = 'def last(n):\n    """\n    >>> last(3)\n    9\n    """\n    acc = 0\n    for k in range(n):\n        acc += helper_1(k)\n    return acc\n'
    text = "".join(chunks) + tail
    line = text[: text.index("        acc += helper_1")].count("\n") + 1
    return text, line


async def test_one_megabyte_file(vscode: LanguageClient, tmp_path: Path):
    text, acc_line = _big_source()
    assert len(text.encode()) >= 1_000_000
    path = tmp_path / "big.py"
    path.write_text(text)
    uri = open_doc(vscode, path)
    await _hover_until(vscode, uri, position(text, acc_line, "acc"), "acc: 0 → 2 → 6 → 12")
    # an edit near the top (a helper the traced function calls) changes the values
    vscode.text_document_did_change(_edit(uri, 2, 8, 8, 13, "y * 3"))  # helper_1: z = y * 3
    await _hover_until(vscode, uri, position(text, acc_line, "acc"), "acc: 0 → 3 → 9 → 18")
    lenses = await vscode.text_document_code_lens_async(types.CodeLensParams(text_document=_doc(uri)))
    assert lenses[-1].command.title == "▶ Simulate last(3)"


async def test_client_disconnects_mid_request(tmp_path: Path):
    """stdin closes while a hover waits for a slow trace: the server exits
    promptly and quietly."""
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    conn = await RawConnection.start()
    try:
        conn.send({"id": 1, "method": "initialize", "params": {"processId": os.getpid(), "rootUri": tmp_path.as_uri(),
                                                               "capabilities": {}, "initializationOptions": {"allowExecution": True}}})
        await conn.response(1)
        conn.send({"method": "initialized", "params": {}})
        conn.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": path.as_uri(), "languageId": "python", "version": 1, "text": SLOW}}})
        conn.send({"id": 2, "method": "textDocument/hover", "params": {"textDocument": {"uri": path.as_uri()},
                                                                       "position": {"line": 12, "character": 10}}})

        async def tracing() -> None:  # the server says it is tracing `slow`: the hover is waiting on that trace
            while True:
                msg = await conn.receive()
                assert msg.get("id") != 2, f"the hover was answered before the trace could be interrupted: {msg}"
                params = msg.get("params") or {}
                if msg.get("method") == "neuraldbg/status" and params.get("state") == "busy" and "slow" in params["message"]:
                    return

        await asyncio.wait_for(tracing(), 30)
        assert conn.proc.stdin is not None and conn.proc.stderr is not None
        conn.proc.stdin.close()
        rc = await asyncio.wait_for(conn.proc.wait(), timeout=30)
        stderr = (await conn.proc.stderr.read()).decode()
        assert rc in (0, 1), stderr
        assert "Traceback" not in stderr, stderr
    finally:
        if conn.proc.returncode is None:
            conn.proc.kill()
            await conn.proc.wait()


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_tcp_and_websocket_transports(transport: str, tmp_path: Path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(*SERVER_COMMAND, f"--{transport}", "--port", str(port),
                                                stderr=asyncio.subprocess.PIPE)
    client = make_client()
    try:
        for _ in range(100):
            try:
                if transport == "tcp":
                    await client.start_tcp("127.0.0.1", port)
                else:
                    await client.start_ws("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await start(client, "neovim", {"allowExecution": True}, tmp_path)
        uri = open_doc(client, STRAWBERRY)
        text = await _hover_at(client, uri, position(STRAWBERRY, 13, "count"))
        assert "count: 0 → 1 → 2 → 3" in code_block_lines(text)
        await client.shutdown_session()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=20)
        # The server has exited (code 0, asserted above): its socket may close with a reset
        # while the client's reader still waits on it; that is the end of the connection, not an error.
        with contextlib.suppress(ConnectionResetError):
            await asyncio.wait_for(client.stop(), timeout=20)


async def test_malformed_params_get_invalid_params(tmp_path: Path):
    conn = await RawConnection.start()
    try:
        conn.send({"id": 1, "method": "initialize", "params": {"processId": os.getpid(), "capabilities": {},
                                                               "initializationOptions": {"allowExecution": True}}})
        assert "capabilities" in (await conn.response(1))["result"]
        conn.send({"method": "initialized", "params": {}})
        uri = STRAWBERRY.as_uri()
        conn.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": STRAWBERRY.read_text()}}})
        conn.send({"id": 2, "method": "textDocument/hover", "params": {"textDocument": {"uri": uri}, "position": {"line": -1}}})
        assert (await conn.response(2))["error"]["code"] == -32602
        conn.send({"id": 3, "method": "textDocument/inlayHint", "params": {"textDocument": {"uri": uri}}})
        assert (await conn.response(3))["error"]["code"] == -32602
        conn.send({"id": 4, "method": "neuraldbg/trace", "params": "count_letter"})
        assert (await conn.response(4))["error"]["code"] == -32602
        conn.send({"id": 5, "method": "textDocument/hover", "params": {"textDocument": {"uri": uri}, "position": {"line": 12, "character": 14}}})
        answer = await conn.response(5)
        assert "count: 0 → 1 → 2 → 3" in answer["result"]["contents"]["value"]
    finally:
        await conn.stop(6)
