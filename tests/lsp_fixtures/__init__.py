"""Helpers for the language-server tests: a pytest-lsp client whose custom
results stay plain JSON, document helpers, and expected values computed
from the ground-truth tracer (independently of the server's code)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, default_converter
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SERVER_COMMAND = [sys.executable, "-m", "neuraldbg", "serve"]


def _converter():
    conv = default_converter()
    conv.register_structure_hook(JsonRPCRequestMessage, lambda o, c: c(id=o.get("id"), method=o["method"], jsonrpc=o["jsonrpc"], params=o.get("params")))
    conv.register_structure_hook(JsonRPCNotification, lambda o, c: c(method=o["method"], jsonrpc=o["jsonrpc"], params=o.get("params")))
    conv.register_structure_hook(JsonRPCResponseMessage, lambda o, c: c(**o))
    return conv


def make_client() -> LanguageClient:
    """pytest-lsp's client, keeping custom params/results as dicts, and
    recording neuraldbg/status notifications and refresh requests."""
    client = LanguageClient(converter_factory=_converter)
    register_lsp_features(client)
    client.statuses = []  # type: ignore[attr-defined]
    client.inlay_refreshes = 0  # type: ignore[attr-defined]

    @client.feature("neuraldbg/status")
    def status(params: Any) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def inlay_refresh(params: Any) -> None:
        client.inlay_refreshes += 1  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(params: Any) -> None:
        return None

    return client


async def start(client: LanguageClient, editor: str, settings: dict[str, Any] | None, root: Path) -> types.InitializeResult:
    """initialize + initialized with an editor's real capabilities; settings
    go both in initializationOptions and in workspace/configuration."""
    if settings is not None:
        client.set_configuration(settings, section="neuraldbg")
    return await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(editor),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=settings,
    ))


def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=path.read_text() if text is None else text)))
    return uri


def hover_text(result: types.Hover | None) -> str:
    if result is None:
        return ""
    contents = result.contents
    return contents.value if isinstance(contents, types.MarkupContent) else str(contents)


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# -- ground truth, computed from the tracer's frames directly -----------------

def truth(path: Path, function: str, call: str):
    """The real run, exactly as the CLI's exec backend makes it."""
    from neuraldbg.tracer import Limits, run_trace

    return run_trace(path.read_text(), call, function=function, path=str(path), limits=Limits(wall_seconds=10.0, max_frames=2000))


def _visits(trace, function: str, line: int) -> list[tuple[dict, dict | None]]:
    """(locals before, locals after) for each run of ``line`` in ``function``:
    after = the locals at the next frame of the same call (before-state if
    that frame carries none, None if the call ended first)."""
    frames = trace.frames
    out = []
    for i, f in enumerate(frames):
        if f.function != function or f.line != line or f.event not in ("line", "call"):
            continue
        after = None
        for g in frames[i + 1:]:
            if g.depth < f.depth:
                break
            if g.depth == f.depth:
                after = g.locals if g.locals else f.locals
                break
        out.append((f.locals, after))
    return out


def _cap(values: list[str], cap: int) -> str:
    cut = [v if len(v) <= 80 else v[:79] + "…" for v in values[:cap]]
    text = " → ".join(cut)
    return text + (f" … {len(values) - cap} more" if len(values) > cap else "")


def expected_hover_line(trace, function: str, line: int, name: str) -> str:
    """``name: a → b → c`` or ``name: v (unchanged)`` as lsp/README.md
    "Value display" defines it."""
    chain: list[tuple[str, bool]] = []  # (value, whether a visit kept it)
    for before, after in _visits(trace, function, line):
        b = before.get(name)
        a = after.get(name) if after is not None else None
        if a is not None and a != b:
            if b is not None and (not chain or chain[-1][0] != b):
                chain.append((b, False))
            chain.append((a, False))
        elif b is not None:
            chain.append((b, True))
    if all(kept for _, kept in chain):  # the line never changed it
        values = [v for v, _ in chain]
        if len(values) > 1 and len(set(values)) == 1:
            return f"{name}: {_cap(values[:1], 10)} (unchanged)"
        return f"{name}: {_cap(values, 10)}"
    out: list[str] = []
    for value, kept in chain:  # a kept value is added unless the chain ends with it
        if not (kept and out and out[-1] == value):
            out.append(value)
    return f"{name}: {_cap(out, 10)}"


def expected_inlay_labels(trace, function: str, lines: range) -> dict[int, str]:
    """Line (1-based) -> the value hint label for the lines of ``function``."""
    out: dict[int, str] = {}
    for line in lines:
        produced: dict[str, list[str]] = {}
        for before, after in _visits(trace, function, line):
            if after is None:
                continue
            for name, value in after.items():
                if before.get(name) != value:
                    produced.setdefault(name, []).append(value)
        if produced:
            out[line] = ", ".join(f"{n} = {_cap(v, 5)}" for n, v in produced.items())
    return out


def code_block_lines(markdown: str) -> list[str]:
    """The lines inside the first ```python block of a hover."""
    if "```python\n" not in markdown:
        return []
    body = markdown.split("```python\n", 1)[1].split("\n```", 1)[0]
    return body.splitlines()


def schema(name: str) -> dict[str, Any]:
    import json

    return json.loads((REPO / "lsp" / "schemas" / name).read_text())


def validate(instance: Any, name: str) -> None:
    import jsonschema

    jsonschema.validate(instance, schema(name), cls=jsonschema.Draft202012Validator)


def position(path_or_text, line: int, word: str, nth: int = 0) -> types.Position:
    """The position inside the ``nth`` whole-word occurrence of ``word`` on
    1-based ``line``."""
    import re

    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    src = text.splitlines()[line - 1]
    matches = list(re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", src))
    return types.Position(line=line - 1, character=matches[nth].start() + min(1, len(word) - 1))


class RawConnection:
    """A bare JSON-RPC connection to a server subprocess (for what a typed
    client cannot send: malformed params, a client that vanishes)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> "RawConnection":
        proc = await asyncio.create_subprocess_exec(*SERVER_COMMAND, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    def send(self, msg: dict[str, Any]) -> None:
        import json

        body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def receive(self) -> dict[str, Any]:
        import json

        assert self.proc.stdout is not None
        length = 0
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise EOFError("server closed its output")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif line in (b"\r\n", b"\n"):
                break
        return json.loads(await self.proc.stdout.readexactly(length))

    async def stop(self, msg_id: int = 99) -> None:
        """Shut the server down as a client does; it must exit with status 0 (killed if not)."""
        try:
            self.send({"id": msg_id, "method": "shutdown"})
            await self.response(msg_id)
            self.send({"method": "exit"})
            assert await asyncio.wait_for(self.proc.wait(), 20) == 0
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()

    async def response(self, msg_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The answer to request ``msg_id`` (notifications and server
        requests on the way are skipped)."""
        async def wait() -> dict[str, Any]:
            while True:
                msg = await self.receive()
                if msg.get("id") == msg_id and "method" not in msg:
                    return msg

        return await asyncio.wait_for(wait(), timeout)


async def close(client: LanguageClient) -> None:
    """Shut the server down (politely if possible, else terminate it) and
    stop the client: pygls's stop() alone waits forever for a server that
    was not told to exit, which turns a failed assertion into a hang."""
    server = getattr(client, "_server", None)
    if server is not None and server.returncode is None:
        try:
            if client.capabilities is not None and client.error is None:
                await asyncio.wait_for(client.shutdown_session(), 15)
        except Exception:
            pass
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 10)
            except asyncio.TimeoutError:
                server.kill()
    await asyncio.wait_for(client.stop(), 20)
