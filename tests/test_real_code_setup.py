"""A doctest example runs as a user means it: the docstring's earlier ``>>>``
examples run first (untraced, in the module's namespace) and only the call
is traced, through resolve(), the CLI, the session and the language server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import SERVER_COMMAND, code_block_lines, hover_text, make_client, open_doc, position, start
from neuraldbg.simulation.target import resolve
from neuraldbg.source.calls import default_call_for, entry_setup
from neuraldbg.source.index import index_text
from neuraldbg.tracer import run_trace

REPO = Path(__file__).resolve().parents[1]

FILTER = '''\
class IIRFilter:
    def __init__(self, order):
        self.order = order
        self.a = [1.0] + [0.0] * order
        self.b = [1.0] + [0.0] * order

    def set_coefficients(self, a, b):
        self.a, self.b = list(a), list(b)

    def process(self, sample):
        """One output sample.

        >>> filt = IIRFilter(2)
        >>> filt.set_coefficients([1, 2, 3],
        ...                       [4, 5, 6])
        >>> filt.process(0)
        0.0
        """
        gain = self.b[0] / self.a[0]
        return float(sample * gain + self.b[1])
'''
SETUP_LINE = 13  # 1-based line of ">>> filt = IIRFilter(2)"
GAIN_LINE = 19


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neuraldbg", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_setup_is_the_earlier_examples_at_their_file_lines() -> None:
    index = index_text(FILTER)
    entry = default_call_for(index, "IIRFilter.process")
    assert entry is not None and (entry.call, entry.kind) == ("filt.process(0)", "doctest")
    setup = entry_setup(FILTER, entry)
    lines = setup.split("\n")
    assert lines[SETUP_LINE - 1] == "filt = IIRFilter(2)"
    assert lines[SETUP_LINE : SETUP_LINE + 2] == ["filt.set_coefficients([1, 2, 3],", "                      [4, 5, 6])"]
    assert [line for line in lines if line] == [
        "filt = IIRFilter(2)",
        "filt.set_coefficients([1, 2, 3],",
        "                      [4, 5, 6])",
    ]


def test_resolve_brings_the_setup_and_the_tracer_runs_it(tmp_path: Path) -> None:
    path = tmp_path / "iir.py"
    path.write_text(FILTER)
    target = resolve(str(path), "IIRFilter.process", None)
    assert (target.call, target.call_origin) == ("filt.process(0)", "doctest")
    assert "filt = IIRFilter(2)" in target.setup
    trace = run_trace(target.source, target.call, function="IIRFilter.process", path=str(path), setup=target.setup)
    assert trace.status == "complete", trace.error
    assert trace.error is None
    # only the call is traced: set_coefficients ran untraced in the set-up
    assert {f.function for f in trace.frames} == {"IIRFilter.process"}
    assert trace.frames[-1].event == "return" and trace.frames[-1].value == "5.0"  # 0 * 4/1 + 5
    gain = [f for f in trace.frames if f.line == GAIN_LINE + 1 and f.event == "line"]
    assert gain[0].locals["gain"] == "4.0"


def test_an_explicit_call_has_no_setup(tmp_path: Path) -> None:
    path = tmp_path / "iir.py"
    path.write_text(FILTER)
    target = resolve(str(path), "IIRFilter.process", "IIRFilter(1).process(3)")
    assert target.setup == ""


def test_examples_doctest_skips_or_expects_to_raise_are_not_set_up() -> None:
    source = '''\
def pop(stack):
    """
    >>> pop([])
    Traceback (most recent call last):
    IndexError: pop from empty list
    >>> launch_missiles()  # doctest: +SKIP
    >>> s = [1, 2]
    >>> pop(s)
    2
    """
    return stack.pop()
'''
    index = index_text(source)
    entry = default_call_for(index, "pop")
    assert entry is not None and entry.call == "pop([])"  # the first example that calls it: no set-up
    assert entry_setup(source, entry) == ""
    later = next(e for e in index.entries if e.call == "pop(s)")
    assert [line for line in entry_setup(source, later).split("\n") if line] == ["s = [1, 2]"]


def test_cli_trace_runs_the_setup(tmp_path: Path) -> None:
    path = tmp_path / "iir.py"
    path.write_text(FILTER)
    res = _cli("trace", f"{path}::IIRFilter.process", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["status"] == "complete", data
    assert data["error"] is None
    assert data["frames"][-1]["value"] == "5.0"


def test_a_failing_setup_line_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "iir.py"
    path.write_text(FILTER.replace(">>> filt = IIRFilter(2)", ">>> filt = IIRFiltr(2)"))
    res = _cli("trace", f"{path}::IIRFilter.process")
    assert res.returncode == 1
    message = f"doctest set-up line {SETUP_LINE} failed: NameError: name 'IIRFiltr' is not defined"
    assert message in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_a_setup_line_that_raises_deeper_names_its_own_line(tmp_path: Path) -> None:
    source = FILTER.replace("[4, 5, 6])", "[4, 5, 6, 7][9])")  # IndexError on the second line of the example
    trace = run_trace(source, "filt.process(0)", path=str(tmp_path / "iir.py"),
                      setup=entry_setup(source, default_call_for(index_text(source), "IIRFilter.process")))
    assert trace.status == "error"
    assert trace.error == f"doctest set-up line {SETUP_LINE + 2} failed: IndexError: list index out of range"
    assert trace.frames == []


def test_pytest_entries_are_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "calc.py"
    path.write_text("def add(a, b):\n    return a + b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    target = resolve(str(path), "add", None)
    assert (target.call, target.call_origin, target.setup) == ("add(2, 3)", "pytest", "")
    res = _cli("trace", f"{path}::add", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["frames"][-1]["value"] == "5"


# -- the language server -------------------------------------------------------


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client))
async def client(lsp_client: LanguageClient, tmp_path: Path):
    await start(lsp_client, "neovim", {"backend": "exec", "allowExecution": True}, tmp_path)
    lsp_client.root = tmp_path  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def _hover(client: LanguageClient, path: Path, text: str, line: int, word: str) -> str:
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri()), position=position(text, line, word)))
    return hover_text(result)


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_hover_shows_values_of_the_call_after_its_setup(client: LanguageClient) -> None:
    path = client.root / "iir.py"  # type: ignore[attr-defined]
    path.write_text(FILTER)
    open_doc(client, path, FILTER)
    text = await _hover(client, path, FILTER, GAIN_LINE, "gain")
    assert "gain: 4.0" in code_block_lines(text), text
    assert "input `filt.process(0)`" in text and "(doctest)" in text, text

    bad_path = client.root / "iir_bad.py"  # type: ignore[attr-defined]
    bad = FILTER.replace(">>> filt = IIRFilter(2)", ">>> filt = IIRFiltr(2)")
    bad_path.write_text(bad)
    open_doc(client, bad_path, bad)
    text = await _hover(client, bad_path, bad, GAIN_LINE, "gain")
    assert f"doctest set-up line {SETUP_LINE} failed: NameError" in text, text
