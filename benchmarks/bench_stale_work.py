"""The language server stays fast when traces fail or edits pile up (exec backend).

Drives the real language server over stdio with pytest-lsp's client (as
bench_hover.py does) on three small programs written to a temporary folder:

- failed: a function whose module imports a package this interpreter lacks
  (its real run fails). After the first "no trace" answer, N hovers of the
  function: median and p99 ms (a failed trace kept in the cache answers like
  a good one; re-running it on every hover costs a tracer child each time).
- burst: a document with a slow (2 s) function and a fast one. Ten edits of a
  module-level line (each invalidates both traces and, after the debounce,
  restarts them), then a hover of the fast function: seconds until it shows
  its value (stale slow runs must not hold the workers).
- fill: a hole whose exec search runs slow candidates. Ten keystrokes (each
  settles and prefetches a fill of the text it left), then "Fill hole":
  seconds until the code action comes back (stale searches must not hold the
  fill thread).

    python benchmarks/bench_stale_work.py [--hovers 50]
"""

# bench: timeout 300

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from bench_hover import pct  # benchmarks/ is on sys.path when a script of it runs

DEBOUNCE_MS = 50  # each keystroke of the burst settles (typing at 10 keys a second)
TYPING_PAUSE_S = 0.1  # between keystrokes: longer than the debounce; ten of them take less than the slow run
EDITS = 10

FAILED = '''import no_such_module_for_neuraldbg_bench


def broken(x):
    y = x + 1
    return y


if __name__ == "__main__":
    broken(1)
'''

BURST = '''import time

GENERATION = 0


def slow(n):
    """
    >>> slow(2)
    2
    """
    time.sleep(n)
    return n


def fast(n):
    """
    >>> fast(1)
    2
    """
    total = n + 1
    return total
'''

HOLE = '''import time


def double_all(xs):
    """
    >>> double_all([1, 2])
    [2, 4]
    """
    time.sleep(0.2)
    return [x * ?? for x in xs]
'''


def _pos(text: str, needle: str, line_has: str | None = None) -> types.Position:
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if needle in line and (line_has is None or line_has in line))
    return types.Position(line=row, character=lines[row].index(needle) + 1)


def _value(res: types.Hover | None) -> str:
    contents = getattr(res, "contents", None)
    return getattr(contents, "value", "") if contents is not None else ""


@contextlib.asynccontextmanager
async def _served(folder: Path) -> AsyncIterator[LanguageClient]:
    """A fresh server on ``folder`` (exec backend, execution allowed), shut down after."""
    client: LanguageClient = make_test_lsp_client()
    client.feature("neuraldbg/status")(lambda params: None)
    for refresh in (types.WORKSPACE_CODE_LENS_REFRESH, types.WORKSPACE_INLAY_HINT_REFRESH):
        client.feature(refresh)(lambda params: None)
    await client.start_io(sys.executable, "-m", "neuraldbg.server")
    settings = {"backend": "exec", "allowExecution": True, "debounceMs": DEBOUNCE_MS}
    client.set_configuration(settings, section="neuraldbg")
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=folder.as_uri(),
        initialization_options=settings))
    try:
        yield client
        await client.shutdown_session()
    finally:
        await client.stop()


def _open(client: LanguageClient, path: Path, text: str) -> types.TextDocumentIdentifier:
    path.write_text(text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)))
    return types.TextDocumentIdentifier(uri=path.as_uri())


def _change(client: LanguageClient, doc: types.TextDocumentIdentifier, version: int, line: int, col: int,
            old: int, new: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=line, character=col),
                              end=types.Position(line=line, character=col + old)), text=new)]))


async def _hover_until(client: LanguageClient, doc: types.TextDocumentIdentifier, pos: types.Position,
                       done: str, timeout: float = 60.0) -> str:
    """Hover again while the answer lacks ``done`` (what a user does)."""
    end = time.monotonic() + timeout
    while True:
        value = _value(await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos)))
        if done in value or time.monotonic() > end:
            return value
        await asyncio.sleep(0.02)


async def failed_hovers(folder: Path, n: int) -> list[float]:
    async with _served(folder) as client:
        doc = _open(client, folder / "broken.py", FAILED)
        pos = _pos(FAILED, "y", "y = x")
        first = await _hover_until(client, doc, pos, "no trace")
        assert "no trace" in first, first
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
            times.append((time.perf_counter() - t0) * 1000)
        return times


async def burst_wait(folder: Path) -> float:
    async with _served(folder) as client:
        doc = _open(client, folder / "burst.py", BURST)
        pos = _pos(BURST, "total", "total = n")
        await _hover_until(client, doc, pos, "total: 2")  # traced once before the burst
        row = BURST.splitlines().index("GENERATION = 0")
        col = len("GENERATION = ")
        for k in range(1, EDITS + 1):  # module-level edits: every trace of the document is stale
            if k > 1:
                await asyncio.sleep(TYPING_PAUSE_S)  # the last edit's traces restart; the hover comes at once
            _change(client, doc, k + 1, row, col, len(str(k - 1)), str(k))
        t0 = time.perf_counter()
        value = await _hover_until(client, doc, pos, "total: 2")
        waited = time.perf_counter() - t0
        assert "total: 2" in value, value
        return waited


async def fill_after_keystrokes(folder: Path) -> float:
    async with _served(folder) as client:
        text = HOLE + "\n# \n"
        doc = _open(client, folder / "hole.py", text)
        lines = text.splitlines()
        typing_row = len(lines) - 1
        hole_row = next(i for i, line in enumerate(lines) if "??" in line)
        hole_col = lines[hole_row].index("??")
        for k in range(EDITS):  # typing a comment below the function
            if k:
                await asyncio.sleep(TYPING_PAUSE_S)
            _change(client, doc, k + 2, typing_row, 2 + k, 0, "abcdefghij"[k])
        rng = types.Range(start=types.Position(line=hole_row, character=hole_col),
                          end=types.Position(line=hole_row, character=hole_col + 2))
        t0 = time.perf_counter()
        actions = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=doc, range=rng, context=types.CodeActionContext(diagnostics=[])))
        waited = time.perf_counter() - t0
        titles = [a.title for a in actions or [] if isinstance(a, types.CodeAction)]
        assert any(t.startswith("Fill hole: 2") for t in titles), titles
        return waited


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hovers", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-stale-") as tmp:
        folder = Path(tmp)
        hovers = await failed_hovers(folder, args.hovers)
        burst = await burst_wait(folder)
        fill = await fill_after_keystrokes(folder)
    print(f"failed trace, {args.hovers} hovers: p50 {pct(hovers, 0.5):.2f} ms  p99 {pct(hovers, 0.99):.2f} ms  "
          f"mean {statistics.mean(hovers):.2f} ms")
    print(f"hover of a fast function after {EDITS} edits beside a 2 s one: {burst:.2f} s")
    print(f"'Fill hole' after {EDITS} keystrokes: {fill:.2f} s")
    print(f"FIGURE stale_work.failed_hover_p50 | {pct(hovers, 0.5):.2f} | ms")
    print(f"FIGURE stale_work.failed_hover_p99 | {pct(hovers, 0.99):.2f} | ms")
    print(f"FIGURE stale_work.fast_hover_after_edits | {burst:.2f} | s")
    print(f"FIGURE stale_work.fill_after_keystrokes | {fill:.2f} | s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
