"""The language server on model backends: the oracle-forced tiny CWM behind
``neuraldbg model-server --oracle`` (``backend: remote``), whose frames are
the real run's, so hovers and inlay hints must show the real values, "predicted
by" the model; and the random tiny CWM on the local backend (``backend:
local``), where loading is reported through neuraldbg/status and $/progress,
the model's unfinished frames show as a flagged stop in the hover, and a
shutdown while the model generates is prompt."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from lsp_fixtures import (
    EXAMPLES,
    SERVER_COMMAND,
    close,
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
from neuraldbg.server.hover import STILL_PREDICTING

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

STRAWBERRY = EXAMPLES / "strawberry.py"
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)

# Short, so that the CPU-bound model writes the whole run in seconds; a loop,
# so that a value changes from one visit to the next.
TOTAL = '''\
def total(xs):
    """
    >>> total([2, 5])
    7
    """
    s = 0
    for x in xs:
        s += x
    return s
'''
TOTAL_CALL = "total([2, 5])"


async def settled_hover(client, uri: str, pos: types.Position, attempts: int = 240) -> str:
    """The hover once the trace has finished streaming (the first hover starts
    the trace)."""
    text = ""
    for _ in range(attempts):
        text = hover_text(await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=pos)))
        if text and "predicted by" in text and STILL_PREDICTING not in text:
            return text
        await asyncio.sleep(0.5)
    raise AssertionError(f"the trace did not finish: {text}")


async def test_hover_shows_the_values_the_model_predicted(oracle_server_url: str, tmp_path: Path):
    path = tmp_path / "total.py"
    path.write_text(TOTAL)
    real = truth(path, "total", TOTAL_CALL)
    assert real.status == "complete" and real.return_value == "7"
    client = await CONFIG.start()
    try:
        settings = {"backend": "remote", "url": oracle_server_url}
        await start(client, "visual-studio-code", settings, tmp_path)
        uri = open_doc(client, path)
        text = await settled_hover(client, uri, position(path, 8, "s"))
        origin = f"predicted by model server {oracle_server_url}"
        assert origin in text and "executed" not in text, text
        assert f"input `{TOTAL_CALL}` (doctest)" in text, text
        assert "stopped early" not in text and "did not finish" not in text, text
        assert expected_hover_line(real, "total", 8, "s") in code_block_lines(text), text
        assert code_block_lines(text) == ["s: 0 → 2 → 7"], text  # literal: not only self-consistent
        assert "· 2 visits" in text

        text = await settled_hover(client, uri, position(path, 7, "x"))
        assert code_block_lines(text) == [expected_hover_line(real, "total", 7, "x")] == ["x: 2 → 5"], text  # the exit test adds no value
        text = await settled_hover(client, uri, position(path, 1, "total"))
        assert code_block_lines(text) == ["total(xs=[2, 5]) → 7"], text
        text = await settled_hover(client, uri, position(path, 9, "return"))
        assert "returns: 7" in code_block_lines(text), text

        hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=9, character=0))))
        got = {h.position.line + 1: h.label for h in hints if 1 <= h.position.line + 1 <= 9}
        assert got == expected_inlay_labels(real, "total", range(1, 10)), got
        assert got == {6: "s = 0", 7: "x = 2 → 5", 8: "s = 2 → 7"}
        # the model is idle again once the trace is done
        await wait_until(lambda: client.statuses[-1]["state"] == "ready", timeout=30)
        assert client.statuses[-1]["backend"] == "remote" and client.statuses[-1]["queue"] == 0
    finally:
        await close(client)


async def test_local_tiny_random_model(tiny_cwm_dir: Path, tmp_path: Path):
    """Loading, the forced call frame, lenses and a prompt shutdown while the
    random model generates (it never stops on its own: the point here)."""
    client = await CONFIG.start()
    try:
        settings = {"backend": "local", "profile": str(tiny_cwm_dir), "maxFrames": 3, "allowExecution": True}
        await start(client, "neovim", settings, tmp_path)
        await wait_until(lambda: any(s["state"] == "loading" and "progress" in s for s in client.statuses), timeout=120)
        await wait_until(lambda: client.statuses[-1]["state"] != "loading", timeout=120)
        for status in client.statuses:
            validate(status, "status.json")
            assert status["backend"] == "local" and status["model"] == str(tiny_cwm_dir)
        assert client.statuses[0]["state"] == "loading"  # the first word is that a model is loading
        fractions = [s["progress"] for s in client.statuses if "progress" in s]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        load_bars = [v for v in client.progress_reports.values() if v and v[-1].kind == "end" and v[-1].message == "model loaded"]
        assert len(load_bars) == 1 and load_bars[0][0].kind == "begin"

        uri = open_doc(client, STRAWBERRY)
        pos = position(STRAWBERRY, 4, "count_letter")
        text = ""
        for _ in range(40):
            text = hover_text(await client.text_document_hover_async(types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=pos)))
            if "count_letter(word='strawberry', letter='r')" in text:
                break
            await asyncio.sleep(0.5)
        assert "count_letter(word='strawberry', letter='r')" in text, text  # the call frame: inputs forced
        assert f"predicted by {tiny_cwm_dir.name}" in text and "executed" not in text
        assert 'input `count_letter("strawberry", "r")`' in text

        lenses = await client.text_document_code_lens_async(types.CodeLensParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        assert [l.command.title for l in lenses] == [
            '▶ Simulate count_letter("strawberry", "r")', "↻ Resample input", "✓ Verify with a real run"]
        # shutting down while the model generates stops the generation (between tokens): the model is
        # mid-trace when shutdown is sent, and the trace's bar ends, cut short of the 3-frame cap and
        # not complete, by the time the shutdown is done
        assert client.statuses[-1]["state"] == "busy" and "tracing count_letter" in client.statuses[-1]["message"]
        (bar,) = [v for v in client.progress_reports.values() if v[0].kind == "begin" and v[0].title == "neuraldbg"
                  and (v[0].message or "").startswith("tracing count_letter")]
        assert bar[-1].kind != "end", bar  # still generating
        await asyncio.wait_for(client.shutdown_session(), 60)  # a hang guard, not a timing target
        assert bar[-1].kind == "end" and re.fullmatch(r"count_letter: [12] frames? \((?!complete)\w+\)", bar[-1].message), bar
    finally:
        await close(client)


async def test_random_model_output_is_flagged_in_the_hover(tiny_cwm_dir: Path, tmp_path: Path):
    """The random model never finishes a frame (randomness is the point
    here): a profile with a small per-frame budget, as a user would write one,
    and the hover shows the forced call frame and says the model stopped,
    never the garbage as values."""
    profile = tmp_path / "tiny-random.toml"
    profile.write_text(f"""name = "tiny-random"
kind = "local"
checkpoint = "{tiny_cwm_dir}"
dtype = "float32"
device_map = "cpu"

[sampling]
temperature = 0.0
max_tokens = 48
""")
    client = await CONFIG.start()
    try:
        await start(client, "neovim", {"backend": "local", "profile": str(profile), "maxFrames": 3}, tmp_path)
        uri = open_doc(client, STRAWBERRY)
        text = await settled_hover(client, uri, position(STRAWBERRY, 4, "count_letter"))
        assert code_block_lines(text) == ["count_letter(word='strawberry', letter='r') → …"], text  # inputs forced
        assert 'input `count_letter("strawberry", "r")`' in text
        assert "stopped early: the model did not finish a frame within 48 tokens" in text, text
        # no line of the body has values (the model wrote none), and the hover says the trace stopped early
        text = hover_text(await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position(STRAWBERRY, 13, "count"))))
        assert code_block_lines(text) == [] and "stopped early: the model did not finish a frame" in text, text
    finally:
        await close(client)
