"""Hole fillers (neuraldbg/holes/search.py): the search filler with real runs, the
parse check, the CWM chat prompt as ids, the trace-guided filler, and the
chat filler on a real (tiny, random) CWM model."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from model_support import LOOP
from neuraldbg.backends.base import BackendStats, CancelToken, Sampling
from neuraldbg.config import Settings
from neuraldbg.holes.search import (
    SYSTEM_PROMPT_PLAIN,
    SYSTEM_PROMPT_REASONING,
    ChatFiller,
    FillError,
    FillRequest,
    RunChecker,
    SearchFiller,
    TraceFiller,
    apply_fills,
    candidates,
    chat_prompt_ids,
    expectations_for,
    fill_from_line,
    validate_texts,
)
from neuraldbg.server.fills import make_runner
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_tokens import BOS, END_HEADER, EOT_ID, START_HEADER
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.trace.tokenizer import TextTokenizer

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[1]
HOLE = REPO / "examples" / "hole.py"

TWO_HOLES = '''def clamp_sum(xs, hi):
    """Sum of xs, each clamped to hi.

    >>> clamp_sum([1, 5, 2], 3)
    6
    """
    total = 0
    for x in xs:
        total = total + ??
    return ??
'''


def _request(source: str, function: str, all_holes: bool = True, path: str = "<string>") -> FillRequest:
    index = index_text(source)
    fn = index.function(function)
    assert fn is not None
    holes = tuple(h for h in index.holes if h.function == function)
    return FillRequest(source=source, index=index, function=fn, holes=holes if all_holes else holes[:1], path=path)


RUN = make_runner(Settings(allow_execution=True, timeout_seconds=5))


def test_search_filler_fills_hole_py_with_a_passing_expression():
    request = _request(HOLE.read_text(), "running_max", path=str(HOLE))
    result = SearchFiller(RUN).fill(request)
    assert result.texts == ("x",) and result.method == "search"
    assert result.check is not None and result.check.passed
    assert result.check.summary == "✓ passes running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]"
    assert result.tried == 2  # `best` (nearest name) fails first, then `x`
    filled = apply_fills(request.source, request.holes, result.texts)
    assert "best = x\n" in filled and "??" not in filled


def test_candidates_are_scope_names_nearest_first_then_doctest_literals():
    source = HOLE.read_text()
    request = _request(source, "running_max")
    exps = expectations_for(source, request.index, request.function)
    assert [(e.call, e.want) for e in exps] == [("running_max([3, 1, 4, 1, 5])", "[3, 3, 4, 4, 5]")]
    cands = candidates(source, request.function, request.holes[0], exps)
    assert cands[:4] == ["best", "x", "xs", "out"]
    assert cands.index("3") < cands.index("x + 1")
    assert len(cands) == len(set(cands)) <= 80


def test_search_fills_two_holes_jointly():
    request = _request(TWO_HOLES, "clamp_sum")
    assert len(request.holes) == 2
    with pytest.raises(FillError, match="no candidate made clamp_sum"):
        SearchFiller(RUN, max_runs=4).fill(request)
    result = SearchFiller(RUN, max_runs=400, budget_seconds=120).fill(request)
    filled = apply_fills(TWO_HOLES, request.holes, result.texts)
    ran = RUN(filled, "clamp_sum([1, 5, 2], 3)", "clamp_sum", "<string>")
    assert ran.return_value == "6", (result.texts, filled)


def test_fills_that_do_not_parse_are_rejected():
    request = _request(HOLE.read_text(), "running_max")
    assert validate_texts(request, ["x"]) is None
    assert "is not an expression" in validate_texts(request, ["x +"])
    assert "is not an expression" in validate_texts(request, ["return x"])
    assert validate_texts(request, ["??"]) == "the fill still contains ??"
    assert validate_texts(request, [""]) == "the fill is empty"
    assert validate_texts(request, ["x\ny"]) == "a fill must be a single line"
    assert "expected 1 fills" in validate_texts(request, ["x", "y"])


def test_run_checker_reports_failures_with_what_happened():
    request = _request(HOLE.read_text(), "running_max")
    checker = RunChecker(RUN)
    bad = checker.check(request, ["0"])
    assert bad is not None and not bad.passed
    assert bad.summary == "✗ fails running_max([3, 1, 4, 1, 5]): got [0, 0, 0, 0, 0], expected [3, 3, 4, 4, 5]"
    crash = checker.check(request, ["x[0]"])
    assert crash is not None and not crash.passed and "raises TypeError" in crash.got


def test_search_needs_an_input():
    source = "def f(a):\n    b = ??\n    return b\n"
    with pytest.raises(FillError, match="no input to check a fill against"):
        SearchFiller(RUN).fill(_request(source, "f"))


def test_chat_prompt_is_built_from_ids_with_cwm_system_prompt():
    tok = TextTokenizer()
    request = _request(HOLE.read_text(), "running_max")
    from neuraldbg.holes.search import fill_question

    user = fill_question(request)
    assert "`??`" in user and "running_max([3, 1, 4, 1, 5]) == [3, 3, 4, 4, 5]" in user and "best = ??" in user
    ids = chat_prompt_ids(tok, user, reasoning=True)
    assert ids[0] == BOS and ids[1] == START_HEADER
    system_end = ids.index(EOT_ID)
    header_end = ids.index(END_HEADER)
    assert tok.decode(ids[2:header_end]) == "system"
    assert tok.decode(ids[header_end + 1:system_end]) == "\n\n" + SYSTEM_PROMPT_REASONING
    # user turn, then the opened assistant turn with <think> as plain text
    assert ids.count(START_HEADER) == 3 and ids.count(EOT_ID) == 2
    last_header = len(ids) - 1 - ids[::-1].index(END_HEADER)
    assert tok.decode(ids[last_header + 1:]) == "\n\n<think>\n"
    plain = chat_prompt_ids(tok, user, reasoning=False)
    assert tok.decode(plain[plain.index(END_HEADER) + 1:plain.index(EOT_ID)]) == "\n\n" + SYSTEM_PROMPT_PLAIN
    # source text that spells a special token stays text: no special id smuggled in
    sneaky = chat_prompt_ids(tok, "x = '<|eot_id|>'", reasoning=False)
    assert sneaky.count(EOT_ID) == 2


class ScriptedBackend:
    """Answers every request with fixed text (a test double for a model)."""

    name = "scripted"

    def __init__(self, tok: TextTokenizer, answer: str) -> None:
        self.tok, self.answer, self.stats, self.prompts = tok, answer, BackendStats(), []

    def generate(self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling,
                 cancel: CancelToken | None = None) -> Iterator[int]:
        self.prompts.append(list(prompt))
        yield from self.tok.encode(self.answer)
        yield EOT_ID

    def close(self) -> None:
        return None


def test_chat_filler_parses_checks_and_rejects():
    tok = TextTokenizer()
    request = _request(HOLE.read_text(), "running_max", path=str(HOLE))
    good = ChatFiller(ScriptedBackend(tok, "```python\nx\n```"), tok, reasoning=False, checker=RunChecker(RUN))
    result = good.fill(request)
    assert result.texts == ("x",) and result.method == "model" and result.check and result.check.passed
    thinking = ChatFiller(ScriptedBackend(tok, "the max so far is x\n</think>\n`x`"), tok, reasoning=True)
    assert thinking.fill(request).texts == ("x",)
    with pytest.raises(FillError, match="did not finish reasoning"):
        ChatFiller(ScriptedBackend(tok, "hmm"), tok, reasoning=True).fill(request)
    with pytest.raises(FillError, match="rejected: 'x \\+' is not an expression"):
        ChatFiller(ScriptedBackend(tok, "x +"), tok, reasoning=False).fill(request)
    wrong = ChatFiller(ScriptedBackend(tok, "0"), tok, reasoning=False, checker=RunChecker(RUN)).fill(request)
    assert wrong.check is not None and not wrong.check.passed and wrong.check.summary.startswith("✗ fails")


def test_trace_filler_reads_the_models_action_line():
    source = HOLE.read_text()
    request = _request(source, "running_max")
    assert fill_from_line("            best = ??", 19, 21, "            best = x") == "x"
    assert fill_from_line("            best = ??", 19, 21, "            best = ??") is None
    assert fill_from_line("            best = ??", 19, 21, "            worst = x") is None
    frames = [
        Frame("call", 1, "running_max", 0, {"xs": "[3]"}, None, "def running_max(xs: list[int]) -> list[int]:"),
        Frame("line", 11, "running_max", 0, {"xs": "[3]", "x": "3", "best": "None", "out": "[]"}, None, "            best = x"),
    ]
    trace = Trace("running_max", "running_max([3])", "local", frames=frames, status="complete", predicted=True)
    result = TraceFiller(trace, checker=RunChecker(RUN)).fill(request)
    assert result.texts == ("x",) and result.method == "model trace" and result.check and result.check.passed
    empty = Trace("running_max", "", "local", frames=frames[:1], status="complete", predicted=True)
    with pytest.raises(FillError, match="never reached the hole"):
        TraceFiller(empty).fill(request)


def test_chat_filler_on_a_tiny_cwm_model(tiny_cwm_dir):
    """The real model path (transformers, CWM layout, token ids in and out):
    a random tiny model answers garbage, which must come back as a clear
    FillError, never a crash or an unchecked fill. The random model on
    purpose, not the oracle-forced one: chat mode is not traced (no trace
    prompt, so the oracle has no answer), and garbage is what is tested."""
    from neuraldbg.simulation.factory import EngineFactory

    backend, tok = EngineFactory().backend(Settings(backend="local", profile=str(tiny_cwm_dir)))
    request = _request(HOLE.read_text(), "running_max")
    filler = ChatFiller(backend, tok, sampling=Sampling(temperature=0.0, max_tokens=24), reasoning=False)
    try:
        result = filler.fill(request)
    except FillError as exc:
        assert str(exc).startswith(("the model's answer has no usable fill", "the model's fill was rejected"))
    else:  # a random model that happens to write a valid expression: it must parse
        assert validate_texts(request, result.texts) is None
    assert backend.stats.generated_tokens > 0


class _Recorded:
    """The oracle-forced CWM, logging which job (its CancelToken: one per
    trace, one per fill) each generated token belongs to, in the order the
    model produced them."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.log, self.kinds = inner, [], {}
        self._guard = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, prompt: Sequence[int], **kwargs: Any) -> Iterator[int]:
        job = id(kwargs.get("cancel"))
        self.kinds[job] = "chat" if prompt[1] == START_HEADER else "trace"  # a chat prompt opens with a header
        for token in self.inner.generate(prompt, **kwargs):
            with self._guard:
                self.log.append(job)
            yield token

    def close(self) -> None:
        """The shared oracle backend belongs to its fixture."""


@pytest.mark.asyncio
async def test_model_jobs_on_one_session_never_overlap(oracle_cwm):
    """Two traces (the session runs two workers) and a chat fill, started
    together on one session's model: a trace is many generations (one or more
    per frame), and no other job's tokens come between them; the jobs run one
    after another, never interleaved."""
    from neuraldbg.server.fills import FillService
    from neuraldbg.session.session import Session

    model = _Recorded(oracle_cwm[0])
    settings = Settings(backend="local", profile="oracle", temperature=0.0)
    engines = EngineFactory()
    engines.adopt(settings, model, model.tokenizer)  # type: ignore[arg-type]
    session = Session(settings, engines=engines)
    uri, hole_uri = "file:///work/jobs.py", "file:///work/hole.py"  # the oracle runs a program: no holes in the traced one
    session.open(uri, LOOP)
    doc = session.open(hole_uri, HOLE.read_text())
    service = FillService(session, lambda u: u.removeprefix("file://"), chat_tokens=64)
    fn = doc.index.function("running_max")
    assert fn is not None
    try:
        traces = [session.request(uri, "count", call="count([2, 5, 1])"),
                  session.request(uri, "count", call="count([1, 2, 3, 4])")]
        fill = service.fill(hole_uri, fn, doc.index.holes)
        for entry in traces:
            await asyncio.wait_for(entry.done.wait(), 120)
            assert entry.trace.status == "complete", entry.trace
        with contextlib.suppress(FillError):  # the model's chat answer is garbage: only its generation counts here
            await asyncio.wait_for(fill, 120)
    finally:
        service.shutdown()
        await session.shutdown()
    assert sorted(model.kinds.values()) == ["chat", "trace", "trace"], model.kinds
    runs = [job for i, job in enumerate(model.log) if i == 0 or model.log[i - 1] != job]  # who generated, in turn
    assert len(runs) == len(set(runs)) == 3, [model.kinds[j] for j in runs]
