"""Time from a hover on an untraced function to the first hover with a value.

Starts the language server over stdio (``python -m neuraldbg serve``, or
``python -m neuraldbg.server`` where the CLI has no ``serve`` yet) with the
local backend, opens a document and hovers inside a function no trace
exists for yet, again and again, until a hover shows a value (a code block
from the trace). Two figures:

- cold: the first document, so the model loads on the way;
- warm: a second document once the model is loaded.

    python benchmarks/bench_first_value.py [--model PROFILE_OR_FOLDER] [--timeout 300]

Without --model it uses the tiny random CWM (built once into a cache
folder). Its frames are noise, and a noise frame can take 2048 tokens on a
CPU, so there the trace is capped at its first frame (``maxFrames`` 1: the
call with its arguments, forced by the prompt) and the hover is on the
``def`` line: the figure is everything a user waits for before the model's
first token (indexing, scheduling, loading, the prompt). With a real model
the hover is on a name in the body, whose value needs the model's first
predicted frame.
"""
# bench: timeout 600

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from neuraldbg.backends.tiny_model import build_tiny_cwm

TINY_CACHE = Path(tempfile.gettempdir()) / "neuraldbg-bench-tiny-cwm"  # shared with the other tiny-model benchmarks

DOC = '''\
def {name}(text, letter):
    """Count ``letter`` in ``text``.

    >>> {name}("strawberry", "r")
    3
    """
    n = 0
    for ch in text:
        if ch == letter:
            n += 1
    return n
'''
DEF_LINE = 0  # 0-based
BODY_LINE = 7  # "    for ch in text:"


def server_command() -> list[str]:
    """``neuraldbg serve`` when the CLI has it, else the server module."""
    probe = subprocess.run([sys.executable, "-m", "neuraldbg", "serve", "--help"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        return [sys.executable, "-m", "neuraldbg", "serve"]
    return [sys.executable, "-m", "neuraldbg.server"]


def hover_text(result: types.Hover | None) -> str:
    if result is None:
        return ""
    contents = result.contents
    return contents.value if isinstance(contents, types.MarkupContent) else str(contents)


async def first_value(client: LanguageClient, uri: str, position: types.Position, deadline: float) -> tuple[float, int, str]:
    """Hover until the answer holds a value: (seconds, hovers sent, text)."""
    t0 = time.perf_counter()
    hovers = 0
    while True:
        hovers += 1
        result = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position))
        text = hover_text(result)
        if "```" in text:
            return time.perf_counter() - t0, hovers, text
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no value after {hovers} hovers; last: {text!r}")
        await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> int:
    tiny = args.model is None
    profile = str(build_tiny_cwm(TINY_CACHE)) if tiny else args.model
    settings = {"backend": "local", "profile": profile}
    if tiny:
        settings["maxFrames"] = 1
    command = server_command()
    client = LanguageClient("bench-first-value", "1")
    for method in ("neuraldbg/status", types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE):
        client.feature(method)(lambda *a: None)  # not what is measured
    await client.start_io(*command)
    stderr: list[bytes] = []

    async def drain() -> None:  # the server logs to stderr; an unread pipe would block it
        assert client._server is not None and client._server.stderr is not None
        while chunk := await client._server.stderr.read(65536):
            stderr.append(chunk)

    drainer = asyncio.create_task(drain())
    root = Path(tempfile.mkdtemp(prefix="neuraldbg-bench-"))
    deadline = time.perf_counter() + args.timeout
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=root.as_uri(), initialization_options=settings))
        client.initialized(types.InitializedParams())
        figures = []
        for label, name in (("cold", "count_letter"), ("warm", "count_letter_again")):
            path = root / f"{name}.py"
            text = DOC.format(name=name)
            path.write_text(text)
            uri = path.as_uri()
            client.text_document_did_open(types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
            line = DEF_LINE if tiny else BODY_LINE
            column = text.splitlines()[line].index(name if tiny else "text")
            seconds, hovers, shown = await first_value(client, uri, types.Position(line=line, character=column), deadline)
            figures.append((label, seconds, hovers))
            print(f"{label}: first value after {seconds * 1000:.0f} ms ({hovers} hovers): "
                  f"{shown.splitlines()[0] if shown else ''}")
    except (TimeoutError, RuntimeError) as exc:
        print(f"bench_first_value: {exc}", file=sys.stderr)
        tail = b"".join(stderr).decode("utf-8", "replace").strip().splitlines()[-5:]
        print("\n".join(tail), file=sys.stderr)
        return 1
    finally:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 5)
            client.exit(None)
        except Exception:  # the server may be busy or gone: it is killed below
            pass
        server = client._server
        if server is not None and server.returncode is None:
            try:
                await asyncio.wait_for(server.wait(), 5)
            except asyncio.TimeoutError:
                server.kill()
        drainer.cancel()
        await client.stop()
    model = "tiny random CWM, call frame only" if tiny else args.model
    print(f"server: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}; model: {model}")
    for label, seconds, hovers in figures:
        print(f"FIGURE first_value.{label} | {seconds * 1000:.0f} | ms from the first hover ({model})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="profile name or checkpoint folder (default: the tiny random CWM)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
