"""Inline values label variables only: at a stop on ``c.count = count``, the
local ``count`` gets the value, the attribute of the same name does not."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from lsp_fixtures import REPO, SERVER_COMMAND, close, make_client, open_doc, start

PROGRAM = """class Counter:
    def __init__(self):
        self.count = 0


def tally(word):
    c = Counter()
    count = len(word)
    c.count = count
    return c.count


if __name__ == "__main__":
    tally("abcde")
"""
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_an_attribute_named_like_a_local_gets_no_inline_value(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "dap_client"))
    from pyclient import DapClient

    program = tmp_path / "tally.py"
    program.write_text(PROGRAM)
    client = await CONFIG.start()
    await start(client, "visual-studio-code", {"backend": "exec", "allowExecution": True}, tmp_path)
    dap = None
    try:
        uri = open_doc(client, program)
        port = (await client.protocol.send_request_async("neuraldbg/debugAdapter", {}))["port"]
        dap = await asyncio.to_thread(DapClient.connect, port)
        stopped = await asyncio.to_thread(dap.start, program, breakpoints=[{"line": 9}], function="tally")
        assert stopped["reason"] == "breakpoint"
        top = (await asyncio.to_thread(dap.stack))[0]
        values = await client.text_document_inline_value_async(types.InlineValueParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=14, character=0)),
            context=types.InlineValueContext(frame_id=top["id"], stopped_location=types.Range(
                start=types.Position(line=8, character=0), end=types.Position(line=8, character=19)))))
        got = sorted((v.text, v.range.start.character) for v in values)
        assert ("count = 5", 14) in got, got  # the local, right of the `=`
        assert all(col != 6 for _text, col in got), got  # not `count` in `c.count`
    finally:
        if dap is not None:
            await asyncio.to_thread(dap.shutdown)
        await close(client)
