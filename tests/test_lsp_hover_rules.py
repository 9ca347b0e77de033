"""Hover rules that read well on real code (lsp/README.md "Value display"
and "Hover"), through the real server over stdio on the exec backend: an
unchanged value shown once, a loop variable without its exit value twice,
no variable hover on names that are not variables of the frame (classes,
builtins, attributes, keyword names, types in a signature), a multi-line
signature showing the calls, and a multi-line doctest call in a code block."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import SERVER_COMMAND, code_block_lines, expected_hover_line, hover_text, make_client, open_doc, \
    position, start, truth

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

SOURCE = '''"""Hover rules on code that reads like a real project."""

import math


class Grid:
    def __init__(self, num_rows: int) -> None:
        self.num_rows = num_rows


def pascal(num_rows: int) -> list[list[int]]:
    """Rows of Pascal's triangle.

    >>> pascal(
    ...     3,
    ... )
    [[1], [1, 1], [1, 2, 1]]
    """
    rows: list[list[int]] = []
    grid = Grid(num_rows)
    for i in range(num_rows):
        width = min(i + 1, num_rows)
        row = [1] * width
        for j in range(1, i):
            row[j] = rows[i - 1][j - 1] + rows[i - 1][j]
        rows.append(row)
    if grid.num_rows < 0:
        raise ValueError(Grid(num_rows), math.inf)
    return sorted(rows, key=len)


def scaled(
    values: list[int],
    factor: int = 2,
) -> list[int]:
    """
    >>> scaled([1, 2])
    [2, 4]
    """
    return [v * factor for v in values]
'''
CALL = "pascal(\n    3,\n)"


@pytest.fixture(scope="module")
def source_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("real") / "rows.py"
    path.write_text(SOURCE)
    return path


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client),
                    scope="module")
async def client(lsp_client: LanguageClient, source_path: Path):
    await start(lsp_client, "visual-studio-code", {"backend": "exec", "allowExecution": True}, source_path.parent)
    open_doc(lsp_client, source_path)
    yield
    await lsp_client.shutdown_session()


async def _hover(client: LanguageClient, path: Path, line: int, word: str, nth: int = 0) -> str:
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()), position=position(path, line, word, nth)))
    return hover_text(result)


async def _traced_hover(client: LanguageClient, path: Path, line: int, word: str, timeout: float = 30.0) -> str:
    """The hover once the trace is there (the first ones may say "tracing…")."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    text = await _hover(client, path, line, word)
    while "visit" not in text and loop.time() < end:
        await asyncio.sleep(0.1)
        text = await _hover(client, path, line, word)
    assert "visit" in text, text
    return text


async def test_unchanged_value_is_shown_once(client: LanguageClient, source_path: Path):
    text = await _traced_hover(client, source_path, 22, "num_rows")
    assert "num_rows: 3 (unchanged)" in code_block_lines(text), text
    assert "line 22 · 3 visits" in text
    # the ground truth under the same rules (tests/lsp_fixtures)
    assert expected_hover_line(truth(source_path, "pascal", CALL), "pascal", 22, "num_rows") in code_block_lines(text)


async def test_loop_variable_has_no_repeated_exit_value(client: LanguageClient, source_path: Path):
    text = await _traced_hover(client, source_path, 21, "i")
    assert "i: 0 → 1 → 2" in code_block_lines(text), text
    assert expected_hover_line(truth(source_path, "pascal", CALL), "pascal", 21, "i") in code_block_lines(text)


async def test_names_that_are_not_variables_get_no_hover(client: LanguageClient, source_path: Path):
    await _traced_hover(client, source_path, 22, "width")
    for line, word, nth in [
        (27, "num_rows", 0),  # grid.num_rows: an attribute, not the parameter
        (26, "append", 0),
        (22, "min", 0),  # a builtin on an executed line
        (28, "ValueError", 0),  # builtins, classes and modules on a line never reached
        (28, "Grid", 0),
        (28, "math", 0),
        (28, "inf", 0),
        (29, "key", 0),  # a keyword argument's name
        (11, "int", 0),  # types in the signature
        (11, "list", 1),
        (19, "list", 0),  # a variable's annotation
        (34, "int", 0),
    ]:
        assert await _hover(client, source_path, line, word, nth) == "", (line, word)
    # a variable on the line never reached still says so
    assert "line 28 not executed" in await _hover(client, source_path, 28, "num_rows")
    # the rest of a signature still shows the calls, on every line of it
    assert "pascal(num_rows=3) → [[1], [1, 1], [1, 2, 1]]" in code_block_lines(
        await _hover(client, source_path, 11, "num_rows"))
    text = await _hover(client, source_path, 34, "factor")
    assert "scaled(values=[1, 2], factor=2) → [2, 4]" in code_block_lines(text), text


async def test_multi_line_input_is_a_code_block(client: LanguageClient, source_path: Path):
    text = await _traced_hover(client, source_path, 23, "row")
    assert text.endswith("executed (real run) · input (doctest)\n\n```python\npascal(\n    3,\n)\n```"), text
    assert "`pascal(" not in text
