"""Inverse execution in the editor, through the real language server (a
pytest-lsp client with VS Code's capabilities, execution allowed): the code
actions on a plain line, a ``raise`` and a ``return``, the lens on a raise,
``neuraldbg/findInputs`` finding a checked input that reaches a branch, the
"Use input" action that sets it as the function's input so the hover
re-traces on it, one-line InvalidParams errors for bad goals, a cancelled
search that frees its worker, and the progress bar's begin and end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Union

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import (
    SERVER_COMMAND,
    code_block_lines,
    hover_text,
    make_client,
    open_doc,
    position,
    start,
    truth,
    validate,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]



def _client() -> LanguageClient:
    """The fixtures' client, reading a code action with a command as a
    CodeAction: lsprotocol's hook takes any object with a "command" key for a
    Command (a CodeAction's command is an object, a Command's a string, which
    is how VS Code tells them apart)."""
    client = make_client()
    conv = client.protocol._converter

    def command_or_action(obj: Any, _: type) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return conv.structure(obj, kind)

    conv.register_structure_hook(Union[types.Command, types.CodeAction], command_or_action)
    return client


CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=_client)

PROGRAM = '''import time


class Jammed(RuntimeError):
    pass


def lock(pin, word):
    """
    >>> lock(1, "a")
    'shut'
    """
    state = "shut"
    if pin == 3141 and word == "abracadabra":
        state = "open"
    if pin < -7:
        raise Jammed("negative pin")
    return state


def constant():
    return 1


def crawl(n):
    time.sleep(0.9)
    if n == 10 ** 30:
        return "never"
    return n


def drift(n):
    time.sleep(0.005)
    return abs(n)
'''

OPEN_LINE = 15  # 1-based: state = "open"
RAISE_LINE = 17
RETURN_LINE = 18


@pytest_lsp.fixture(config=CONFIG)
async def vscode(lsp_client: LanguageClient, tmp_path: Path):
    await start(lsp_client, "visual-studio-code", {"backend": "exec", "allowExecution": True}, tmp_path)
    yield
    await lsp_client.shutdown_session()


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "lock.py"
    path.write_text(PROGRAM)
    return path


async def _actions(client: LanguageClient, uri: str, line: int) -> list[types.CodeAction]:
    pos = types.Position(line=line - 1, character=4)
    got = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=pos, end=pos),
        context=types.CodeActionContext(diagnostics=[])))
    return [a for a in got or [] if isinstance(a, types.CodeAction)]


def _titles(actions: list[types.CodeAction]) -> list[str]:
    return [a.title for a in actions]


async def _run(client: LanguageClient, command: types.Command) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command.command, arguments=command.arguments))


async def _find(client: LanguageClient, params: dict[str, Any], msg_id: str | None = None) -> Any:
    return await client.protocol.send_request_async("neuraldbg/findInputs", params, msg_id=msg_id)


async def test_actions_on_a_line_a_raise_and_a_return_and_a_lens_on_the_raise(vscode: LanguageClient, tmp_path: Path):
    uri = open_doc(vscode, _file(tmp_path))
    plain = _titles(await _actions(vscode, uri, OPEN_LINE))
    assert "Find an input that reaches this line" in plain
    assert not any("raises" in t or "returns" in t for t in plain)
    raising = _titles(await _actions(vscode, uri, RAISE_LINE))
    assert {"Find an input that reaches this line", "Find an input that raises this"} <= set(raising)
    returning = await _actions(vscode, uri, RETURN_LINE)
    ask = next(a for a in returning if a.title == "Find an input that returns …")
    assert ask.command is not None and ask.command.command == "neuraldbg.findInputs"
    assert list(ask.command.arguments) == [{"uri": uri, "function": "lock", "goal": {"kind": "returns"}}]  # the client asks the value
    # a function without parameters offers no search
    assert not any(t.startswith("Find an input") for t in _titles(await _actions(vscode, uri, 22)))
    lenses = await vscode.text_document_code_lens_async(types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    raise_lenses = [l for l in lenses if l.command is not None and l.command.command == "neuraldbg.findInputs"]
    assert [(l.range.start.line + 1, l.command.title) for l in raise_lenses] == [(RAISE_LINE, "Find an input that raises Jammed")]


async def test_the_found_input_is_checked_offered_and_set_as_the_input(vscode: LanguageClient, tmp_path: Path):
    path = _file(tmp_path)
    uri = open_doc(vscode, path)
    reach = next(a for a in await _actions(vscode, uri, OPEN_LINE) if a.title == "Find an input that reaches this line")
    assert reach.command is not None
    result = await _run(vscode, reach.command)
    validate(result, "find-inputs-result.json")
    assert result["function"] == "lock" and result["goal"] == f"reach line {OPEN_LINE}" and result["backend"] == "exec"
    best = result["found"][0]
    assert best["checked"] is True and best["call"] == "lock(3141, 'abracadabra')"
    real = truth(path, "lock", best["call"])  # a fresh real run, outside the server, agrees
    assert OPEN_LINE in {f.line for f in real.frames} and real.return_value == "'open'"
    # the progress bar of the search was opened and closed
    bars = [reports for reports in vscode.progress_reports.values()
            if reports and isinstance(reports[0], types.WorkDoneProgressBegin) and "finding inputs of lock" in reports[0].title]
    assert len(bars) == 1 and isinstance(bars[0][-1], types.WorkDoneProgressEnd)
    # the input found is offered as the function's input
    use = next(a for a in await _actions(vscode, uri, 14) if a.title.startswith("Use input"))
    assert use.title == "Use input lock(3141, 'abracadabra') (checked)"
    assert use.command is not None and use.command.command == "neuraldbg.setEntry"
    assert await _run(vscode, use.command) == {"ok": True, "call": "lock(3141, 'abracadabra')"}
    hover = hover_text(await vscode.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position(path, RETURN_LINE, "state"))))
    assert "state: 'open'" in code_block_lines(hover) and "input `lock(3141, 'abracadabra')`" in hover


async def test_raise_and_return_goals_through_the_request(vscode: LanguageClient, tmp_path: Path):
    path = _file(tmp_path)
    uri = open_doc(vscode, path)
    params = {"uri": uri, "function": "lock", "goal": {"kind": "raises", "expr": "Jammed"}}
    validate(params, "find-inputs-params.json")
    raised = await _find(vscode, params)
    validate(raised, "find-inputs-result.json")
    call = raised["found"][0]["call"]
    real = truth(path, "lock", call)
    assert raised["found"][0]["checked"] and real.raised is not None and real.raised.value.startswith("Jammed(")
    opened = await _find(vscode, {"uri": uri, "position": {"line": RETURN_LINE - 1, "character": 4},
                                  "goal": {"kind": "returns", "expr": "'open'"}})
    assert opened["found"] and truth(path, "lock", opened["found"][0]["call"]).return_value == "'open'"


@pytest.mark.parametrize(("params", "message"), [
    ({"function": "lock", "goal": {"kind": "reach", "line": 40}}, "line 41 is outside lock"),
    ({"function": "lock", "goal": {"kind": "when", "line": 14, "expr": "state =="}}, "does not parse"),
    ({"function": "lock", "goal": {"kind": "returns", "expr": "'open"}}, "does not parse"),
    ({"function": "lock", "goal": {"kind": "returns"}}, "no value given"),
    ({"function": "constant", "goal": {"kind": "reach", "line": 21}}, "constant takes no parameters"),
    ({"function": "lock", "goal": {"kind": "reach", "line": 14}, "budget": 0}, "budget must be a positive integer"),
    ({"function": "lock", "goal": {"kind": "guess"}}, "goal.kind must be one of"),
    ({"function": "nope", "goal": {"kind": "reach", "line": 14}}, "no function 'nope'"),
])
async def test_bad_params_are_one_line_invalid_params(vscode: LanguageClient, tmp_path: Path,
                                                      params: dict[str, Any], message: str):
    uri = open_doc(vscode, _file(tmp_path))
    with pytest.raises(JsonRpcInvalidParams, match=message) as info:
        await _find(vscode, {"uri": uri, **params})
    assert "\n" not in str(info.value.message)


async def test_a_cancelled_search_ends_and_frees_the_worker(vscode: LanguageClient, tmp_path: Path):
    uri = open_doc(vscode, _file(tmp_path))
    # each candidate of crawl sleeps 0.9 s and the goal is out of reach: a batch of 64 in one child is a minute
    pending = asyncio.ensure_future(_find(vscode, {"uri": uri, "function": "crawl", "goal": {"kind": "returns",
                                                                                            "expr": "'never'"}},
                                          msg_id="slow-search"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not any("finding inputs of crawl" in getattr(r[0], "title", "") for r in vscode.progress_reports.values() if r):
        assert loop.time() < deadline, "the search's progress bar never began"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the first candidates are running in their children
    vscode.cancel_request(types.CancelParams(id="slow-search"))
    with pytest.raises(JsonRpcRequestCancelled):
        await pending
    # the search's single worker is free again: the next search answers (a cancelled one whose children
    # went on would hold it for a minute and more, past this bound)
    result = await asyncio.wait_for(_find(vscode, {"uri": uri, "function": "lock",
                                                  "goal": {"kind": "reach", "line": OPEN_LINE - 1}}), 30)
    assert result["found"][0]["call"] == "lock(3141, 'abracadabra')"
    crawl_bar = next(r for r in vscode.progress_reports.values() if r and "crawl" in getattr(r[0], "title", ""))
    assert isinstance(crawl_bar[-1], types.WorkDoneProgressEnd)


async def test_the_bars_cancel_button_stops_the_search(vscode: LanguageClient, tmp_path: Path):
    uri = open_doc(vscode, _file(tmp_path))
    pending = asyncio.ensure_future(_find(vscode, {"uri": uri, "function": "crawl",
                                                   "goal": {"kind": "returns", "expr": "'never'"}}))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    token = None
    while token is None:
        assert loop.time() < deadline, "the search's progress bar never began"
        token = next((t for t, r in vscode.progress_reports.items() if r and "crawl" in getattr(r[0], "title", "")), None)
        await asyncio.sleep(0.05)
    assert vscode.progress_reports[token][0].cancellable is True
    vscode.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    with pytest.raises(JsonRpcException, match="the search was cancelled") as info:
        await asyncio.wait_for(pending, 30)
    assert info.value.code == -32001
    assert isinstance(vscode.progress_reports[token][-1], types.WorkDoneProgressEnd)


async def test_shutdown_during_a_search_stops_it_and_the_server_exits(tmp_path: Path):
    client = await CONFIG.start()
    await start(client, "visual-studio-code", {"backend": "exec", "allowExecution": True}, tmp_path)
    uri = open_doc(client, _file(tmp_path))
    pending = asyncio.ensure_future(_find(client, {"uri": uri, "function": "crawl",
                                                   "goal": {"kind": "returns", "expr": "'never'"}}))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not any("crawl" in getattr(r[0], "title", "") for r in client.progress_reports.values() if r):
        assert loop.time() < deadline, "the search's progress bar never began"
        await asyncio.sleep(0.05)
    server = client._server  # the server's process, started by pytest-lsp
    # shutdown + exit while the search runs (its children sleep a minute per batch): the server stops the
    # search, its children are killed, and the process exits with 0 well within this bound
    await asyncio.wait_for(client.shutdown_session(), 30)
    assert await asyncio.wait_for(server.wait(), 30) == 0
    pending.cancel()


async def test_the_bar_reports_the_share_of_the_budget_tried(vscode: LanguageClient, tmp_path: Path):
    uri = open_doc(vscode, _file(tmp_path))
    # out of reach (abs returns no str): the whole budget is tried, in batches of 128 that each take longer than a report interval
    result = await _find(vscode, {"uri": uri, "function": "drift", "goal": {"kind": "returns", "expr": "'never'"},
                                  "budget": 640})
    assert result["found"] == [] and result["tried"] == 640
    bar = next(r for r in vscode.progress_reports.values() if r and "finding inputs of drift" in getattr(r[0], "title", ""))
    assert bar[0].percentage == 0 and bar[0].cancellable is True and isinstance(bar[-1], types.WorkDoneProgressEnd)
    shares = [r.percentage for r in bar if isinstance(r, types.WorkDoneProgressReport)]
    # each report carries its own share (not the first report's), growing with the candidates tried
    assert len(set(shares)) >= 2 and shares == sorted(shares) and shares[-1] > shares[0], shares
    assert all(isinstance(r.message, str) and r.message.endswith(" tried") for r in bar
               if isinstance(r, types.WorkDoneProgressReport)), bar
