"""The language server on the local model backend with a tiny random CWM
checkpoint: model loading reported through neuraldbg/status and $/progress,
hovers that say "predicted by" (and "still predicting" while streaming),
model-backend code lenses, and a prompt shutdown while the model generates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from lsp_fixtures import (
    EXAMPLES,
    SERVER_COMMAND,
    close,
    hover_text,
    make_client,
    open_doc,
    position,
    start,
    validate,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]

STRAWBERRY = EXAMPLES / "strawberry.py"
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)


async def test_local_tiny_model(tiny_cwm_dir: Path, tmp_path: Path):
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
        # shutting down while the model generates is prompt (generation is cancelled between tokens)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(client.shutdown_session(), 60)
        assert loop.time() - began < 60
    finally:
        await close(client)
