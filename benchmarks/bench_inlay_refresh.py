"""Time from an edit (didChange) to refreshed inlay hints on the exec backend.

A client with Neovim's capabilities (it declares inlay-hint refresh
support) opens examples/strawberry.py, then repeatedly changes
`count += 1` to `count += 2` and back. For each edit it measures the time
until the server asks for a refresh (workspace/inlayHint/refresh) and the
inlay hints it then returns show the new values. The time includes the
debounce (settings.debounceMs, measured at 150 and at 0), the real run in
the sandboxed tracer, and the refresh rate limit.

    python benchmarks/bench_inlay_refresh.py [--edits 10]
"""

# bench: timeout 300

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

REPO = Path(__file__).resolve().parents[1]
PATH = REPO / "examples" / "strawberry.py"


async def run(edits: int, debounce_ms: int) -> list[float]:
    client: LanguageClient = make_test_lsp_client()
    refreshed = asyncio.Event()
    client.feature("neuraldbg/status")(lambda params: None)

    @client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def on_refresh(params):  # no annotation: pygls would pass the client first
        refreshed.set()

    await client.start_io(sys.executable, "-m", "neuraldbg.server")
    try:
        settings = {"backend": "exec", "allowExecution": True, "debounceMs": debounce_ms}
        client.set_configuration(settings, section="neuraldbg")
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("neovim"), root_uri=REPO.as_uri(), initialization_options=settings))
        uri = PATH.as_uri()
        text = PATH.read_text()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        doc = types.TextDocumentIdentifier(uri=uri)
        lines = text.splitlines()
        row = next(i for i, l in enumerate(lines) if "count += 1" in l)
        col = lines[row].index("1")
        whole = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=len(lines), character=0))

        async def hints() -> dict[int, str]:
            got = await client.text_document_inlay_hint_async(types.InlayHintParams(text_document=doc, range=whole))
            return {h.position.line: h.label for h in got or []}

        for _ in range(200):  # the first trace
            if (await hints()).get(row) == "count = 1 → 2 → 3":
                break
            await asyncio.sleep(0.05)
        times = []
        version = 1
        for k in range(edits):
            step = "2" if k % 2 == 0 else "1"
            want = "count = 2 → 4 → 6" if step == "2" else "count = 1 → 2 → 3"
            version += 1
            await asyncio.sleep(0.4)  # let the refresh rate limit of the last round pass
            refreshed.clear()
            t0 = time.perf_counter()
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=row, character=col), end=types.Position(line=row, character=col + 1)),
                    text=step)]))
            while True:
                await asyncio.wait_for(refreshed.wait(), 30)
                refreshed.clear()
                if (await hints()).get(row) == want:
                    break
            times.append((time.perf_counter() - t0) * 1000)
        await client.shutdown_session()
        return times
    finally:
        await client.stop()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=10)
    args = ap.parse_args()
    for debounce in (150, 0):
        times = await run(args.edits, debounce)
        med = statistics.median(times)
        print(f"debounceMs={debounce:3d}: didChange -> refreshed inlay hints  median {med:7.1f} ms  "
              f"min {min(times):7.1f}  max {max(times):7.1f}  ({len(times)} edits)")
        print(f"FIGURE inlay_refresh.median_debounce{debounce} | {med:.1f} | ms")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
