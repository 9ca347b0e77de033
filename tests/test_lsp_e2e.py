"""The language server end to end over stdio, driven by pytest-lsp with the
real capabilities of VS Code, Neovim and Emacs, on the exec backend (a real
run) and the replay backend (a real run fed back through the model path).
Hover and inlay hint values must equal the ground truth from the tracer."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import (
    EXAMPLES,
    REPO,
    SERVER_COMMAND,
    code_block_lines,
    expected_hover_line,
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

EDITORS = ["visual-studio-code", "neovim", "emacs"]
BACKENDS = ["exec", "replay"]
CASES = [(e, b) for e in EDITORS for b in BACKENDS]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

STRAWBERRY = EXAMPLES / "strawberry.py"
RECURSION = EXAMPLES / "recursion.py"
BSEARCH = EXAMPLES / "binary_search.py"
RAISES = EXAMPLES / "raises.py"
HOLE = EXAMPLES / "hole.py"


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client),
    params=CASES,
    ids=[f"{e}-{b}" for e, b in CASES],
    scope="module",
)
async def client(lsp_client: LanguageClient, request):
    editor, backend = request.param
    lsp_client.case = (editor, backend)  # type: ignore[attr-defined]
    await start(lsp_client, editor, {"backend": backend, "allowExecution": True}, REPO)
    for path in (STRAWBERRY, RECURSION, BSEARCH, RAISES, HOLE):
        open_doc(lsp_client, path)
    yield
    await lsp_client.shutdown_session()


def _doc(path) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=path.as_uri())


async def _hover(client: LanguageClient, path, line: int, word: str, nth: int = 0) -> str:
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=_doc(path), position=position(path, line, word, nth)))
    return hover_text(result)


HOVERS = [
    # (file, function, call, line, word)
    (STRAWBERRY, "count_letter", 'count_letter("strawberry", "r")', 13, "count"),
    (STRAWBERRY, "count_letter", 'count_letter("strawberry", "r")', 11, "ch"),
    (STRAWBERRY, "count_letter", 'count_letter("strawberry", "r")', 12, "letter"),
    (RECURSION, "factorial", "factorial(4)", 9, "rest"),
    (RECURSION, "factorial", "factorial(4)", 10, "n"),
    (BSEARCH, "binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)", 9, "mid"),
    (BSEARCH, "binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)", 13, "lo"),
    (BSEARCH, "binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)", 7, "hi"),
]


async def test_hover_values_equal_ground_truth(client: LanguageClient):
    backend = client.case[1]  # type: ignore[attr-defined]
    for path, function, call, line, word in HOVERS:
        text = await _hover(client, path, line, word)
        expected = expected_hover_line(truth(path, function, call), function, line, word)
        assert expected in code_block_lines(text), (path.name, line, word, text)
        origin = "executed (real run)" if backend == "exec" else "predicted by replay"
        assert origin in text and f"input `{call}`" in text, text
    # literal values, so that the check above is not only self-consistent
    assert "count: 0 → 1 → 2 → 3" in await _hover(client, STRAWBERRY, 13, "count")
    assert "rest: 6 → 2 → 1" in await _hover(client, RECURSION, 9, "rest")


async def test_hover_def_and_return_lines(client: LanguageClient):
    text = await _hover(client, STRAWBERRY, 4, "count_letter")
    assert "count_letter(word='strawberry', letter='r') → 3" in code_block_lines(text), text
    text = await _hover(client, RECURSION, 10, "rest")
    assert "returns: 2 → 6 → 24" in code_block_lines(text), text
    # a helper with no input of its own is shown through its caller's trace
    text = await _hover(client, RECURSION, 21, "fib")
    lines = code_block_lines(text)
    assert lines[:2] == ["fib(i=0) → 0", "fib(i=1) → 1"] and len(lines) == 5, text
    assert "(via fib_list)" in text


async def test_inlay_hints_equal_ground_truth(client: LanguageClient):
    for path, function, call, lines in [
        (STRAWBERRY, "count_letter", 'count_letter("strawberry", "r")', range(4, 16)),
        (BSEARCH, "binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)", range(1, 18)),
        (RECURSION, "factorial", "factorial(4)", range(1, 11)),
    ]:
        hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
            text_document=_doc(path),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=lines.stop, character=0))))
        got = {h.position.line + 1: h.label for h in hints if h.position.line + 1 in lines}
        expected = expected_inlay_labels(truth(path, function, call), function, lines)
        assert got == expected, path.name
        if path == STRAWBERRY:
            assert got[13] == "count = 1 → 2 → 3" and got[10] == "count = 0"
        src = path.read_text().splitlines()
        for h in hints:  # at the end of the line's text
            assert h.position.character == len(src[h.position.line].rstrip())


async def test_inlay_hint_for_escaping_exception(client: LanguageClient):
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=_doc(RAISES), range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=20, character=0))))
    labels = {(h.position.line + 1, h.label) for h in hints}
    assert (15, "raises ValueError('port out of range: 70000')") in labels, labels


async def test_code_lens_titles(client: LanguageClient):
    backend = client.case[1]  # type: ignore[attr-defined]
    lenses = await client.text_document_code_lens_async(types.CodeLensParams(text_document=_doc(RECURSION)))
    by_line: dict[int, list[str]] = {}
    for lens in lenses:
        assert lens.command is not None
        by_line.setdefault(lens.range.start.line + 1, []).append(lens.command.title)
    verify = ["✓ Verify with a real run"] if backend == "replay" else []
    assert by_line[1] == ["▶ Simulate factorial(4)", *verify]
    assert by_line[13] == ["▶ Simulate fib_list(5)", *verify]
    assert by_line[21] == ["▶ Simulate fib(…): set an input"]
    simulate = next(l for l in lenses if l.command.title == "▶ Simulate factorial(4)")
    assert simulate.command.command == "neuraldbg.simulate"
    assert list(simulate.command.arguments) == [RECURSION.as_uri(), "factorial", "factorial(4)"]


async def test_custom_trace_request_equals_cli_json(client: LanguageClient):
    backend = client.case[1]  # type: ignore[attr-defined]
    result = await client.protocol.send_request_async(
        "neuraldbg/trace", {"uri": BSEARCH.as_uri(), "function": "binary_search"})
    validate(result, "trace.json")
    expected = truth(BSEARCH, "binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)").to_json()
    if backend == "exec":
        assert result == expected
    else:
        # the replay goes through the model path and must come back as the truth
        assert result["frames"] == expected["frames"]
        assert (result["backend"], result["model"], result["status"]) == ("replay", "replay", "complete")


async def test_simulate_command(client: LanguageClient):
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="neuraldbg.simulate", arguments=[STRAWBERRY.as_uri(), "count_letter", 'count_letter("banana", "a")']))
    validate(result, "trace.json")
    expected = truth(STRAWBERRY, "count_letter", "count_letter('banana', 'a')")
    assert result["frames"] == expected.to_json()["frames"]
    assert result["call"] == "count_letter('banana', 'a')"


async def test_diagnostics_for_raises(client: LanguageClient):
    uri = RAISES.as_uri()
    await wait_until(lambda: len(client.diagnostics.get(uri, ())) >= 2, timeout=60)
    backend = client.case[1]  # type: ignore[attr-defined]
    how = "for" if backend == "exec" else "predicted for"
    got = {(d.range.start.line + 1, d.message, d.code) for d in client.diagnostics[uri]}
    assert (15, f'ValueError: port out of range: 70000 ({how} parse_port("70000"))', "exception") in got
    assert (9, f"ZeroDivisionError: float division by zero ({how} average([]))", "exception") in got
    severity = types.DiagnosticSeverity.Error if backend == "exec" else types.DiagnosticSeverity.Warning
    assert all(d.severity == severity for d in client.diagnostics[uri])


async def test_hole_diagnostic_and_fill_action(client: LanguageClient):
    uri = HOLE.as_uri()
    await wait_until(lambda: len(client.diagnostics.get(uri, ())) == 1, timeout=30)
    (diag,) = client.diagnostics[uri]
    assert (diag.message, diag.code, diag.severity) == ("hole: ?? must be filled", "hole", types.DiagnosticSeverity.Information)
    assert (diag.range.start.line, diag.range.start.character, diag.range.end.character) == (10, 19, 21)
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=_doc(HOLE), range=diag.range, context=types.CodeActionContext(diagnostics=[diag])))
    assert len(actions) == 1
    action = actions[0]
    assert action.title == "Fill hole: x (found by search) ✓ passes running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]"
    assert action.kind == types.CodeActionKind.QuickFix
    (edit,) = action.edit.changes[uri]
    assert (edit.new_text, edit.range) == ("x", diag.range)
    # the fill really makes the doctest pass
    lines = HOLE.read_text().splitlines(keepends=True)
    line = lines[10]
    lines[10] = line[:19] + edit.new_text + line[21:]
    filled = "".join(lines)
    from neuraldbg.tracer import run_trace

    ran = run_trace(filled, "running_max([3, 1, 4, 1, 5])", function="running_max", path=str(HOLE))
    assert ran.return_value == "[3, 3, 4, 4, 5]"


async def test_hover_in_hole_file_says_why(client: LanguageClient):
    text = await _hover(client, HOLE, 12, "out")
    assert "?? hole (line 11)" in text and "cannot run it" in text, text


async def test_status_notifications_follow_the_schema(client: LanguageClient):
    await wait_until(lambda: bool(client.statuses) and client.statuses[-1]["state"] == "ready", timeout=60)  # type: ignore[attr-defined]
    for status in client.statuses:  # type: ignore[attr-defined]
        validate(status, "status.json")
    assert client.statuses[-1]["backend"] == client.case[1]  # type: ignore[attr-defined]
