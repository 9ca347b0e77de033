"""Resident memory of the language server with 100 open 1,000-line documents.

Starts `python -m neuraldbg.server` over stdio, measures its RSS (psutil)
after initialize, opens 100 generated Python files of 1,000 lines each
(every document is indexed: the server publishes its diagnostics), and
measures again. Execution is not allowed, so no trace runs: this is the
cost of documents, trees and indexes.

    python benchmarks/bench_server_memory.py [--docs 100] [--lines 1000]
"""

# bench: timeout 300

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import psutil
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

REPO = Path(__file__).resolve().parents[1]


def document(k: int, lines: int) -> str:
    out: list[str] = [f'"""Generated module {k}."""', ""]
    i = 0
    while len(out) < lines - 8:
        out += [f"def f{k}_{i}(xs, n={i}):", "    total = 0", "    for x in xs:",
                "        if x > n:", "            total += x * 2", "    return total", "", ""]
        i += 1
    out += ["" for _ in range(lines - len(out))]
    return "\n".join(out[:lines]) + "\n"


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--lines", type=int, default=1000)
    args = ap.parse_args()
    client: LanguageClient = make_test_lsp_client()
    client.feature("neuraldbg/status")(lambda params: None)
    await client.start_io(sys.executable, "-m", "neuraldbg.server")
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("neovim"), root_uri=REPO.as_uri(), initialization_options={}))
        pid = client._server.pid  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        base = rss_mb(pid)
        t0 = time.perf_counter()
        uris = []
        for k in range(args.docs):
            uri = f"file:///bench/mem_{k}.py"
            uris.append(uri)
            client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=document(k, args.lines))))
        while not all(u in client.diagnostics for u in uris):
            await asyncio.sleep(0.05)
        opened = time.perf_counter() - t0
        # one hover per document, so that nothing is lazily skipped
        for u in uris:
            await client.text_document_hover_async(types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(line=3, character=12)))
        await asyncio.sleep(0.5)
        full = rss_mb(pid)
        size = sum(len(document(k, args.lines)) for k in range(args.docs)) / 2**20
        print(f"server RSS after initialize: {base:7.1f} MiB")
        print(f"with {args.docs} open {args.lines}-line documents ({size:.1f} MiB of text): {full:7.1f} MiB "
              f"(+{full - base:.1f} MiB, {1024 * (full - base) / args.docs:.0f} KiB per document); opened and indexed in {opened:.1f} s")
        print(f"FIGURE server_memory.rss_idle | {base:.1f} | MiB")
        print(f"FIGURE server_memory.rss_{args.docs}_docs | {full:.1f} | MiB")
        print(f"FIGURE server_memory.per_doc | {1024 * (full - base) / args.docs:.0f} | KiB per {args.lines}-line document")
        await client.shutdown_session()
    finally:
        await client.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
