"""The language server rates the real run under the model (model backends
where execution is allowed): the hover footer says how far the model agrees
with it, and an Information diagnostic marks where it first leaves it, naming
what the model expected and its probability of the real value."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from lsp_fixtures import SERVER_COMMAND, close, hover_text, make_client, open_doc, start, truth, wait_until
from model_support import LOOP
from neuraldbg.simulation.agreement import Agreement, FirstDivergence
from neuraldbg.backends.base import CancelToken, TokenScore
from neuraldbg.config import Settings
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.server.features import hover, lifecycle
from neuraldbg.server.state import ServerState
from neuraldbg.server.wiring import connect
from neuraldbg.server.diagnostics import agreement_problems
from neuraldbg.server.hover import footer
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_tokens import ACTION_SEP, CALL_SEP
from neuraldbg.trace.frames import Trace

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

PROGRAM = LOOP + '\n\nif __name__ == "__main__":\n    print(count([1, 2]))\n'
FOR_LINE = 3  # `    for x in xs:` in LOOP


# -- the footer and the diagnostic, from a rating ------------------------------------

def _rating(first: FirstDivergence | None) -> Agreement:
    return Agreement(frames=40, agreeing=40 if first is None else 37, ends=True, first=first, tokens=900)


async def test_footer_and_diagnostic_read_the_rating() -> None:
    trace = Trace(function="count", call="count([1, 2])", backend="local", predicted=True, model="cwm")
    fn = index_text(LOOP).function("count")
    assert fn is not None
    full = _rating(None)
    assert footer(trace, agreement=full).endswith("· model agrees with the real run on all 40 frames")
    assert agreement_problems(full, fn, LOOP.splitlines(), "count([1, 2])") == []
    assert "agrees" not in footer(trace)  # not rated (yet): nothing said
    first = FirstDivergence(step=12, event="line", line=5, part="locals", name="total", real="7", expected="1",
                            unchanged=False, probability=0.0123)
    assert footer(trace, agreement=_rating(first)).endswith(
        "· model agrees with the real run on 37 of 40 frames; first divergence at line 5")
    (problem,) = agreement_problems(_rating(first), fn, LOOP.splitlines(), "count([1, 2])")
    assert (problem.span.start_line, problem.severity, problem.code) == (4, "information", "model-disagrees")
    assert problem.message == ("the model expected `total` to be `1`, the real run has `7` "
                               "(model probability of the real value: 1.23%; for count([1, 2]))")
    stay = FirstDivergence(step=12, event="line", line=5, part="locals", name="total", real="7", expected="3",
                           unchanged=True, probability=1e-7)
    (problem,) = agreement_problems(_rating(stay), fn, LOOP.splitlines(), "count([1, 2])")
    assert problem.message.startswith("the model expected `total` to stay `3`, the real run has `7` "
                                      "(model probability of the real value: <0.01%")


# -- a session whose model disagrees at a known frame --------------------------------

class _OtherInput:
    """The oracle-forced CWM, except that it rates a sequence as if its call
    frame held ``other`` instead of ``real``: its scores follow the real run of
    another input, so they leave the rated run where the two runs part."""

    def __init__(self, inner: Any, real: str, other: str) -> None:
        assert len(real) == len(other)
        self.inner, self.real, self.other = inner, real, other
        self.name, self.stats, self.tokenizer = inner.name, inner.stats, inner.tokenizer
        self.scored = 0

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.generate(*args, **kwargs)

    def score(self, ids: list[int], *, start: int, cancel: CancelToken | None = None) -> list[TokenScore]:
        call = max(i for i in range(start) if ids[i] == CALL_SEP)
        action = ids.index(ACTION_SEP, call)
        text = self.tokenizer.decode(ids[call + 1 : action])
        assert self.real in text, text
        swapped = self.tokenizer.encode(text.replace(self.real, self.other))
        assert len(swapped) == action - call - 1  # the rated positions stay where they were
        self.scored += 1
        return self.inner.score([*ids[: call + 1], *swapped, *ids[action:]], start=start, cancel=cancel)

    def close(self) -> None:
        """The shared oracle backend belongs to its fixture."""


class _Factory(EngineFactory):
    def __init__(self, backend: _OtherInput) -> None:
        super().__init__()
        self._model = backend

    def backend(self, settings: Settings) -> Any:
        return self._model, self._model.tokenizer


class _Server:
    """What the server state sends, kept."""

    def __init__(self) -> None:
        self.published: dict[str, list[types.Diagnostic]] = {}
        self.protocol = SimpleNamespace(notify=lambda *args, **kwargs: None)

    def text_document_publish_diagnostics(self, params: types.PublishDiagnosticsParams) -> None:
        self.published[params.uri] = list(params.diagnostics)

    def window_log_message(self, params: Any) -> None:
        return None


def _controller(model: _OtherInput, path: Path, call: str, **settings: Any) -> tuple[ServerState, _Server, str]:
    """A language server's state on ``model`` (local backend), tracing ``call`` of LOOP in ``path``."""
    path.write_text(LOOP)
    uri = path.as_uri()
    server = _Server()
    controller = connect(server)
    controller.session.engines = _Factory(model)
    controller.session.settings = Settings(backend="local", profile="oracle", temperature=0.0, **settings)
    controller.session.open(uri, LOOP)
    controller.session.set_entry(uri, "count", call)
    return controller, server, uri


async def test_the_first_divergence_is_marked_on_the_line_that_made_the_value(oracle_cwm, tmp_path: Path) -> None:
    # count([1, 2, 3, 4]) and count([1, 2, 3, 6]) run alike until x takes its fourth value.
    model = _OtherInput(oracle_cwm[0], "[1, 2, 3, 4]", "[1, 2, 3, 6]")
    path = tmp_path / "loop.py"
    controller, server, uri = _controller(model, path, "count([1, 2, 3, 4])", allow_execution=True)
    entry = controller.session.request(uri, "count")
    for _ in range(600):
        if entry.agreement is not None:
            break
        await asyncio.sleep(0.2)
    assert entry.trace.predicted and entry.trace.status == "complete"
    rating = entry.agreement
    assert rating is not None and model.scored == 1
    real = truth(path, "count", "count([1, 2, 3, 4])")
    step = next(i for i, f in enumerate(real.frames) if f.locals.get("x") == "4")
    first = rating.first
    assert first is not None and (first.step, first.part, first.name, first.real) == (step, "locals", "x", "4")
    assert first.line == FOR_LINE and first.expected.startswith("6") and first.probability < 1e-3
    assert rating.frames == len(real.frames) - 1 and rating.agreeing < rating.frames

    await wait_until(lambda: any(d.code == "model-disagrees" for d in server.published.get(uri, [])), timeout=10)
    (diag,) = [d for d in server.published[uri] if d.code == "model-disagrees"]
    assert diag.range.start.line == FOR_LINE - 1 and diag.severity == types.DiagnosticSeverity.Information
    assert diag.source == "neuraldbg"
    assert diag.message.startswith("the model expected `x` to be `6") and "the real run has `4`" in diag.message
    assert "model probability of the real value: " in diag.message

    hover_result = await hover.hover(controller, types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                                                   position=types.Position(line=4, character=14)))
    text = hover_text(hover_result)
    assert "**total**" in text and (f"model agrees with the real run on {rating.agreeing} of {rating.frames} frames; "
                                    f"first divergence at line {FOR_LINE}") in text
    await lifecycle.shutdown(controller)


async def test_no_rating_without_permission_to_run_code(oracle_cwm, tmp_path: Path) -> None:
    model = _OtherInput(oracle_cwm[0], "[1]", "[3]")
    controller, _server, uri = _controller(model, tmp_path / "loop.py", "count([1])", max_frames=3)
    entry = controller.session.request(uri, "count")
    await asyncio.wait_for(entry.done.wait(), 120)
    # the real run a rating needs is asked for as the trace ends (in the worker's step that sets done), so
    # once done it would be in the cache: none there means none was asked for
    assert entry.trace.predicted and len(entry.trace.frames) == 3
    assert [e.key.backend for e in controller.session.entries.values()] == ["local:oracle"]  # no real run
    assert entry.agreement is None and model.scored == 0
    await lifecycle.shutdown(controller)


# -- the language server on the oracle-forced CWM behind model-server -----------------

async def test_the_hover_says_the_model_agrees_with_the_whole_real_run(oracle_server_url: str, tmp_path: Path) -> None:
    path = tmp_path / "loop.py"
    path.write_text(PROGRAM)
    frames = len(truth(path, "count", "count([1, 2])").frames) - 1  # the call frame is the input
    client = await ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client).start()
    try:
        await start(client, "neovim", {"backend": "remote", "url": oracle_server_url, "allowExecution": True}, tmp_path)
        uri = open_doc(client, path)
        params = types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                   position=types.Position(line=4, character=14))  # `total` in `total += x`
        text = ""
        for _ in range(240):
            text = hover_text(await client.text_document_hover_async(params))
            if "model agrees" in text:
                break
            await asyncio.sleep(0.5)
        assert "**total** · line 5" in text and f"predicted by model server {oracle_server_url}" in text
        assert text.endswith(f"· model agrees with the real run on all {frames} frames"), text
        await wait_until(lambda: uri in client.diagnostics, timeout=10)
        assert not [d for d in client.diagnostics[uri] if d.code == "model-disagrees"]
    finally:
        await close(client)
