"""Time from a hover on an untraced function to the first hover with a value.

Starts the language server over stdio (``python -m neuraldbg serve``) with
the remote backend against a model server in this process
(neuraldbg.hosting.modelserver) that serves the oracle-forced tiny CWM: a random
CwmForCausalLM with the Llama-3 BPE in the real LocalBackend decode loop,
its logits masked to the real run's next token (neuraldbg.backends.oracle).
It opens a document and hovers on ``text`` in the body (``for ch in text:``)
of a function no trace exists for yet, again and again, until a hover shows
a value: that needs the call frame (forced from the doctest's input) and the
model's first predicted frames up to that line. Every request the server
answered must have written one complete, unflagged frame (checked; the
script exits non-zero otherwise). Two figures:

- cold: the first document of a fresh language server, on a model server
  whose KV pool and oracle are empty (the model itself is loaded before);
- warm: a second function once the language server's backend is connected.

They measure everything a user waits for around the model (indexing,
scheduling, the remote round trips, prompts, the stream parser) plus a tiny
model's CPU decode and the oracle (one real run of each new program):
not CWM's speed.

    python benchmarks/bench_first_value.py [--model PROFILE_OR_FOLDER] [--timeout 300]

With --model the language server loads that model itself (local backend)
instead, and the oracle is not used: for a real CWM on a GPU host.
"""
# bench: timeout 600

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _oracle_session import CheckedBackend, check_log, oracle_folder  # noqa: E402

from neuraldbg.server.hover import STILL_PREDICTING  # noqa: E402

DOC = '''\
def {name}(text, letter):
    """Count ``letter`` in ``text``.

    >>> {name}("{word}", "r")
    3
    """
    n = 0
    for ch in text:
        if ch == letter:
            n += 1
    return n
'''
BODY_LINE = 7  # 0-based  # "    for ch in text:"


def server_command() -> list[str]:
    return [sys.executable, "-m", "neuraldbg", "serve"]


def oracle_server() -> tuple[CheckedBackend, Any]:
    """The oracle-forced tiny CWM behind a model server in this process."""
    from neuraldbg.backends.oracle import load_oracle_backend
    from neuraldbg.hosting.modelserver import start_model_server

    backend, _ = load_oracle_backend(str(oracle_folder("tiny")), speculative_tokens=0)
    checked = CheckedBackend(backend)
    return checked, start_model_server(checked, tokenizer=backend.tokenizer)


def hover_text(result: types.Hover | None) -> str:
    if result is None:
        return ""
    contents = result.contents
    return contents.value if isinstance(contents, types.MarkupContent) else str(contents)


async def hover_until(client: LanguageClient, uri: str, position: types.Position, deadline: float,
                      done: Any) -> tuple[float, int, str]:
    """Hover until ``done(text)``: (seconds, hovers sent, text)."""
    t0 = time.perf_counter()
    hovers = 0
    while True:
        hovers += 1
        result = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position))
        text = hover_text(result)
        if done(text):
            return time.perf_counter() - t0, hovers, text
        if time.perf_counter() > deadline:
            raise TimeoutError(f"hover not done after {hovers} hovers; last: {text!r}")
        await asyncio.sleep(0.05)


def has_value(text: str) -> bool:
    return "```" in text


def trace_finished(text: str) -> bool:
    return has_value(text) and STILL_PREDICTING not in text


async def run(args: argparse.Namespace) -> int:
    served, model_server = oracle_server() if args.model is None else (None, None)
    if model_server is not None:
        settings = {"backend": "remote", "url": model_server.url}
    else:
        settings = {"backend": "local", "profile": args.model}
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
            text = DOC.format(name=name, word=args.word)
            path.write_text(text)
            uri = path.as_uri()
            client.text_document_did_open(types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
            column = text.splitlines()[BODY_LINE].index("text")
            position = types.Position(line=BODY_LINE, character=column)
            seconds, hovers, shown = await hover_until(client, uri, position, deadline, has_value)
            # Let the rest of the trace finish, as a user reading the value would: the next
            # document then waits for nothing but its own requests.
            await hover_until(client, uri, position, deadline, trace_finished)
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
        if model_server is not None:
            model_server.stop()
            served.close()
    if served is not None:
        errors = check_log(served.log, "model server")
        if errors or not served.log.complete_frames:
            print("\n".join(errors) or "bench_first_value: the model wrote no frame", file=sys.stderr)
            return 1
        print(f"model server: {served.log.requests} requests, {served.log.complete_frames} complete frames")
    model = "oracle-forced tiny CWM behind the model server, CPU" if served is not None else args.model
    print(f"server: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}; model: {model}")
    for label, seconds, hovers in figures:
        print(f"FIGURE first_value.{label} | {seconds * 1000:.0f} | ms from the first hover to a value the model "
              f"predicted ({model})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="profile name or checkpoint folder (default: the tiny random CWM)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--word", default="strawberry", help="the doctest's text (its length sets the trace's)")
    parser.add_argument("--quick", action="store_const", const="ray", dest="word",
                        help="a 3-letter word: short traces (a smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process (1: see bench_kv_reuse.py)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
