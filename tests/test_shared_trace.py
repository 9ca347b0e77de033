"""The debugger and hover show one trace: a debug session on a function the
language server already ran starts from that run (no second real run).

The program draws a random token, so two real runs of one input differ: the
value the debugger shows is the hover's only if it is the same run. The
real language server (pytest-lsp) and its in-process debug adapter (the DAP
test client over its loopback port) are used, as VS Code uses them.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from dap_client.pyclient import DapClient
from lsp_fixtures import SERVER_COMMAND, close, hover_text, make_client, open_doc, position, start

PROGRAM = """import os


def draw(n):
    token = os.urandom(8).hex()
    return token * n


if __name__ == "__main__":
    draw(1)
"""
TOKEN = re.compile(r"'([0-9a-f]{16})'")
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)


async def hovered_token(client, program: Path) -> str:
    """The token's value in the hover of line 5 (waits for the trace)."""
    params = types.HoverParams(text_document=types.TextDocumentIdentifier(uri=program.as_uri()),
                               position=position(program, 5, "token"))
    for _ in range(600):  # the hover answers within its budget; the trace may take a few
        found = TOKEN.findall(hover_text(await client.text_document_hover_async(params)))
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the hover never showed the token")


def debugged_token(dap: DapClient, program: Path, **launch: str) -> str:
    """The token's value at the return line of a launch of ``draw``."""
    dap.req("initialize", {"adapterID": "neuraldbg"})
    dap.req("launch", {"program": str(program), "function": "draw", **launch})
    dap.wait_event("initialized")
    dap.set_breakpoints(program, [{"line": 6}])
    dap.req("configurationDone")
    stop = dap.wait_stop()
    assert stop.get("reason") == "breakpoint", stop
    return TOKEN.fullmatch(dap.locals()["token"]).group(1)


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_the_debugger_starts_from_the_run_the_hover_showed(tmp_path: Path) -> None:
    program = tmp_path / "draw.py"
    program.write_text(PROGRAM)
    client = await CONFIG.start()
    await start(client, "visual-studio-code", {"backend": "exec", "allowExecution": True}, tmp_path)
    daps: list[DapClient] = []
    try:
        open_doc(client, program)
        hovered = await hovered_token(client, program)
        port = (await client.protocol.send_request_async("neuraldbg/debugAdapter", {}))["port"]

        async def debug(**launch: str) -> str:
            dap = await asyncio.to_thread(DapClient.connect, port)
            daps.append(dap)
            return await asyncio.to_thread(debugged_token, dap, program, **launch)

        # The same input as the hover (the __main__ call, chosen by the session): the same run.
        assert await debug() == hovered
        assert await debug(args="draw(1)") == hovered
        # Another input is a new real run: a new token (what a second run would have shown).
        assert await debug(args="draw(2)") != hovered
    finally:
        for dap in daps:
            await asyncio.to_thread(dap.shutdown)
        await close(client)


# -- a model backend: the debugger starts from the trace the model already wrote ---------
STRAWBERRY = Path(__file__).resolve().parents[1] / "examples" / "strawberry.py"


def test_a_debug_session_replays_the_cached_model_trace_without_asking_the_model(oracle_cwm) -> None:
    """The oracle-forced CWM (a real model in the real decode loop) writes the
    trace once for the session; the debugger shows those frames, asks the model
    nothing while it walks them, and asks again for a new sample."""
    from neuraldbg.config import Settings
    from neuraldbg.dap import start_tcp_server
    from neuraldbg.session.session import Session
    from neuraldbg.trace.cwm_decode import cwm_view
    from neuraldbg.trace.frames import Frame

    backend, _oracle = oracle_cwm
    session = Session(Settings(backend="local", profile="oracle-in-process", temperature=0.0, seed=0))
    session.engines.adopt(session.settings, backend, backend.tokenizer)
    uri = STRAWBERRY.as_uri()
    session.open(uri, STRAWBERRY.read_text())

    async def hover_trace():
        return await session.trace(uri, "count_letter")  # what a hover on the function asks for

    written = asyncio.run(hover_trace())
    assert written.status == "complete" and written.predicted and len(written.frames) > 10
    port, stop = start_tcp_server(session=session)
    dap = DapClient.connect(port)
    try:
        requests = backend.stats.requests
        end = dap.start(STRAWBERRY, function="count_letter", backend="local")  # the doctest input, as the hover's
        assert end == {"terminated": True, "exitCode": 0}, end
        assert backend.stats.requests == requests  # every frame came from the session's trace
        shown = [Frame.from_json(f) for f in dap.trace()["trace"]["frames"]]
        # (the adapter shows a return frame with its scope's last locals; CWM's return frames carry none)
        assert cwm_view(shown) == cwm_view(written.frames)
        # a restart is a new sample: the model is asked again
        dap.req("restart", {})
        dap.wait_stop()
        assert backend.stats.requests > requests
    finally:
        dap.shutdown()
        stop()
