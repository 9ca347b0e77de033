"""Hover latency from a cached trace over stdio: neuraldbg vs
jedi-language-server, same client (pytest-lsp's pygls LanguageClient), same
file, same positions, same run.

neuraldbg answers from its trace cache (the exec backend traced the
function once before timing starts); jedi answers from its own analysis.
Prints p50/p99 per server and the ratio, plus FIGURE lines for run_all.py.

    python benchmarks/bench_hover.py [--hovers 300] [--file examples/binary_search.py]
"""

# bench: timeout 300

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

REPO = Path(__file__).resolve().parents[1]


def positions(text: str) -> list[types.Position]:
    """Every identifier inside a function body (a hover target for both)."""
    out = []
    in_body = False
    for i, line in enumerate(text.splitlines()):
        if line.startswith("def "):
            in_body = True
            continue
        if in_body and line and not line.startswith((" ", "\t")):
            in_body = False
        if not in_body or line.lstrip().startswith(('"""', ">>>", "#")) or '"""' in line:
            continue
        for m in re.finditer(r"\b[A-Za-z_]\w*\b", line):
            out.append(types.Position(line=i, character=m.start() + 1))
    return out


async def measure(cmd: list[str], path: Path, n: int, options: dict | None, warm_timeout: float = 60.0) -> tuple[list[float], int]:
    client: LanguageClient = make_test_lsp_client()
    client.feature("neuraldbg/status")(lambda params: None)
    await client.start_io(*cmd)
    try:
        client.set_configuration(options or {}, section="neuraldbg")
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), root_uri=REPO.as_uri(),
            initialization_options=options))
        uri = path.as_uri()
        text = path.read_text()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        pos = positions(text)
        doc = types.TextDocumentIdentifier(uri=uri)
        # warm up: the first hover makes neuraldbg trace (and jedi parse); wait until answers are final
        deadline = time.monotonic() + warm_timeout
        while True:
            res = await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos[0]))
            value = getattr(getattr(res, "contents", None), "value", "") if res else ""
            if "tracing…" not in value or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        for p in pos:
            await client.text_document_hover_async(types.HoverParams(text_document=doc, position=p))
        times = []
        answered = 0
        for i in range(n):
            p = pos[i % len(pos)]
            t0 = time.perf_counter()
            res = await client.text_document_hover_async(types.HoverParams(text_document=doc, position=p))
            times.append((time.perf_counter() - t0) * 1000)
            answered += res is not None
        await client.shutdown_session()
        return times, answered
    finally:
        await client.stop()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hovers", type=int, default=300)
    ap.add_argument("--file", type=Path, default=REPO / "examples" / "binary_search.py")
    args = ap.parse_args()
    path = args.file.resolve()
    jedi = shutil.which("jedi-language-server") or str(Path(sys.executable).parent / "jedi-language-server")
    servers = {
        "neuraldbg": ([sys.executable, "-m", "neuraldbg.server"], {"backend": "exec", "allowExecution": True}),
        "jedi-language-server": ([jedi], None),
    }
    results = {}
    for name, (cmd, options) in servers.items():
        times, answered = await measure(cmd, path, args.hovers, options)
        results[name] = times
        print(f"{name:22s} p50 {pct(times, 0.5):7.2f} ms   p99 {pct(times, 0.99):7.2f} ms   "
              f"mean {statistics.mean(times):7.2f} ms   ({answered}/{len(times)} hovers answered)")
    nd, jd = results["neuraldbg"], results["jedi-language-server"]
    ratio50 = pct(nd, 0.5) / pct(jd, 0.5)
    ratio99 = pct(nd, 0.99) / pct(jd, 0.99)
    print(f"ratio neuraldbg/jedi: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x  ({args.hovers} hovers on {path.name})")
    print(f"FIGURE hover.neuraldbg_p50 | {pct(nd, 0.5):.2f} | ms")
    print(f"FIGURE hover.neuraldbg_p99 | {pct(nd, 0.99):.2f} | ms")
    print(f"FIGURE hover.jedi_p50 | {pct(jd, 0.5):.2f} | ms")
    print(f"FIGURE hover.jedi_p99 | {pct(jd, 0.99):.2f} | ms")
    print(f"FIGURE hover.ratio_p50 | {ratio50:.2f} | x (neuraldbg / jedi)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
