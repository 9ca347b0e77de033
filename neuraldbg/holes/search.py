"""Filling ``??`` holes: where a fill comes from and how it is checked.

Three fillers, one contract (:class:`Filler`): given the source, the
function and the holes to fill together, return one replacement per hole or
raise :class:`FillError` with a one-line reason.

* :class:`SearchFiller` (exec backend, execution allowed, no model): tries
  candidate expressions built from the function's own scope (the names
  visible at the hole, literals of the doctest, simple combinations) by
  running the function's doctest/entry call with the real tracer; the first
  candidate whose run gives the expected output wins. It is an honest
  search, not a model: titles say "found by search".
* :class:`ChatFiller` (model backends): CWM in chat mode with its required
  system prompt; the prompt is built as token ids (special tokens as ids, the
  user's code encoded as ordinary text so it cannot smuggle specials in).
* :class:`TraceFiller` (model backends): the line the model wrote as its
  action when its simulated execution reached the hole.

Every fill must parse (tree-sitter: no new syntax error) and, where
execution is allowed and an input exists, is checked by a real run
(:class:`RunChecker`); the verdict travels with the result.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import itertools
import logging
import re
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from neuraldbg.backends.base import CancelToken, Sampling
from neuraldbg.trace.values import exception_text
from neuraldbg.source.model import FunctionInfo, Hole, SourceIndex
from neuraldbg.trace.frames import Trace

if TYPE_CHECKING:
    from neuraldbg.backends.base import TokenBackend
    from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)

HOLE_TEXT = "??"

# (source, call, qualname, path) -> the trace of a real run
Runner = Callable[[str, str, str, str], Trace]


class FillError(ValueError):
    """No acceptable fill (one line for the user)."""


@dataclass(frozen=True)
class FillRequest:
    source: str
    index: SourceIndex
    function: FunctionInfo
    holes: tuple[Hole, ...]  # filled together: one hole, or every hole of the function
    path: str = ""


@dataclass(frozen=True)
class Expectation:
    """A call of the function and, for a doctest, the output it must give."""

    call: str
    want: str | None  # doctest output ("" = prints nothing); None = no expected output (a __main__ call)
    kind: str


@dataclass(frozen=True)
class FillCheck:
    """The verdict of a real run of the filled program."""

    passed: bool
    call: str
    want: str | None
    got: str

    @property
    def summary(self) -> str:
        if self.want is None:
            return f"✓ runs {self.call} → {self.got}" if self.passed else f"✗ fails {self.call}: {self.got}"
        want = self.want or "None"
        if self.passed:
            return f"✓ passes {self.call} == {want}"
        return f"✗ fails {self.call}: got {self.got}, expected {want}"


@dataclass(frozen=True)
class FillResult:
    texts: tuple[str, ...]  # one replacement per hole of the request, in order
    method: str  # "search", "model", "model trace"
    check: FillCheck | None = None
    tried: int = 1  # candidates tried (search)


class Filler(Protocol):
    name: str

    def fill(self, request: FillRequest, cancel: CancelToken | None = None) -> FillResult:
        """Replacements for ``request.holes``; raises FillError."""
        ...


# -- text helpers -----------------------------------------------------------

def _line_starts(text: str) -> list[int]:
    from neuraldbg.source.positions import line_starts

    return line_starts(text)


def hole_offsets(source: str, hole: Hole) -> tuple[int, int]:
    starts = _line_starts(source)
    s = starts[hole.span.start_line] + hole.span.start_col
    e = starts[hole.span.end_line] + hole.span.end_col
    return s, e


def apply_fills(source: str, holes: Sequence[Hole], texts: Sequence[str]) -> str:
    """``source`` with each hole replaced by its text (holes in any order)."""
    spans = sorted(((*hole_offsets(source, h), t) for h, t in zip(holes, texts)), reverse=True)
    out = source
    for s, e, t in spans:
        out = out[:s] + t + out[e:]
    return out


def placeholder_for(hole: Hole) -> str:
    return "pass" if hole.kind == "statement" else "None"


def runnable_source(source: str, index: SourceIndex, holes: Sequence[Hole], texts: Sequence[str]) -> str:
    """The filled source with every OTHER hole made inert (``None`` /
    ``pass``) so that the file compiles for a real run."""
    chosen = {(h.span.start_line, h.span.start_col) for h in holes}
    others = [h for h in index.holes if (h.span.start_line, h.span.start_col) not in chosen]
    return apply_fills(source, [*holes, *others], [*texts, *(placeholder_for(h) for h in others)])


def syntax_problem(source: str, filled: str) -> str | None:
    """None if ``filled`` has no syntax error that ``source`` did not have."""
    from neuraldbg.source.index import index_text

    before = len(index_text(source).syntax_errors)
    after = index_text(filled).syntax_errors
    if len(after) > before:
        first = after[0]
        return f"the fill does not parse (line {first.span.start_line + 1}: {first.message})"
    return None


def validate_texts(request: FillRequest, texts: Sequence[str]) -> str | None:
    """A reason to reject these replacements, or None."""
    if len(texts) != len(request.holes):
        return f"expected {len(request.holes)} fills, got {len(texts)}"
    for hole, text in zip(request.holes, texts):
        if not text.strip():
            return "the fill is empty"
        if HOLE_TEXT in text:
            return "the fill still contains ??"
        if "\n" in text or "\r" in text:
            return "a fill must be a single line"
        if hole.kind == "expression":
            try:
                ast.parse(text.strip(), mode="eval")
            except SyntaxError:
                return f"{text.strip()!r} is not an expression"
    return syntax_problem(request.source, apply_fills(request.source, request.holes, texts))


# -- expectations (doctest / entries) ----------------------------------------

def function_text(source: str, fn: FunctionInfo) -> str:
    lines = source.splitlines()
    return "\n".join(lines[fn.first_line - 1 : fn.end_line])


def docstring_of(source: str, fn: FunctionInfo) -> str:
    parsed = _function_ast(source, fn)
    if parsed is None:
        return ""
    tree, _offset = parsed
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None) if isinstance(tree, ast.Module) else None
    return (ast.get_docstring(node) or "") if node is not None else ""


def expectations_for(source: str, index: SourceIndex, fn: FunctionInfo) -> list[Expectation]:
    """The function's doctest examples that call it (with their outputs), or
    else its default entry call (no expected output)."""
    out: list[Expectation] = []
    try:
        examples = doctest.DocTestParser().get_examples(docstring_of(source, fn))
    except ValueError:  # inconsistent doctest indentation
        examples = []
    for ex in examples:
        call = ex.source.strip()
        if re.match(rf"{re.escape(fn.name)}\s*\(", call) and "\n" not in call:
            out.append(Expectation(call=call, want=ex.want.strip(), kind="doctest"))
    if out:
        return out
    try:
        from neuraldbg.source.calls import default_call_for

        entry = default_call_for(index, fn.qualname)
    except Exception:  # the index may be unusable mid-typing
        entry = None
    if entry is not None and entry.call:
        return [Expectation(call=entry.call, want=None, kind=entry.kind)]
    return []


def outcome(trace: Trace, want: str | None) -> tuple[bool, str]:
    """(passed, what happened) for a real run against an expectation."""
    raised = trace.raised
    if trace.status not in ("complete",) and raised is None:
        return False, trace.error or trace.status
    if raised is not None:
        got = f"raises {exception_text(raised.value)}"
        if want is not None and want.startswith("Traceback (most recent call last):"):
            last = want.strip().splitlines()[-1].strip()
            return _norm(last) == _norm(exception_text(raised.value)), got
        return False, got
    value = trace.return_value
    got = "None" if value is None else value
    if want is None:
        return True, got
    shown = "" if got == "None" else got
    return _norm(shown) == _norm(want), got


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass
class RunChecker:
    """Checks a fill by running the filled program for real."""

    run: Runner

    def check(self, request: FillRequest, texts: Sequence[str],
              expectations: Sequence[Expectation] | None = None) -> FillCheck | None:
        exps = list(expectations) if expectations is not None else expectations_for(request.source, request.index, request.function)
        if not exps:
            return None
        filled = runnable_source(request.source, request.index, request.holes, texts)
        verdict: FillCheck | None = None
        for exp in exps:
            trace = self.run(filled, exp.call, request.function.qualname, request.path)
            passed, got = outcome(trace, exp.want)
            verdict = FillCheck(passed=passed, call=exp.call, want=exp.want, got=got)
            if not passed:
                return verdict
        return verdict


def first_fill(fillers: Sequence[Filler], request: FillRequest, cancel: CancelToken | None = None) -> FillResult:
    """The first filler's result that is not a FillError; else one FillError
    with every filler's reason."""
    errors: list[str] = []
    for filler in fillers:
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            result = filler.fill(request, cancel)
        except FillError as exc:
            errors.append(str(exc))
            continue
        if cancel is not None:
            cancel.raise_if_cancelled()  # its check may be a killed run's: no verdict
        return result
    raise FillError("; ".join(errors) or "no filler available")


def tracer_runner(timeout_seconds: float, max_frames: int, cancel: CancelToken | None = None) -> Runner:
    """A :data:`Runner` on the sandboxed tracer (checks cap a run at 5 s);
    ``cancel`` kills the run in progress (its trace is a "cancelled" error)."""

    def run(source: str, call: str, qualname: str, path: str) -> Trace:
        from neuraldbg.tracer import Limits, run_trace

        limits = Limits(wall_seconds=min(timeout_seconds, 5.0), max_frames=max_frames)
        return run_trace(source, call, function=qualname, path=path or "<string>", limits=limits, cancel=cancel)

    return run


def fill_title(result: FillResult, single: bool, fn: FunctionInfo) -> str:
    """"Fill hole: x (found by search) ✓ passes f(1) == 2": what a fill is,
    where it came from and how its check went (code actions and the CLI)."""
    texts = ", ".join(result.texts)
    head = f"Fill hole: {texts}" if single else f"Fill all holes in {fn.name}: {texts}"
    how = {"search": "found by search", "model": "model", "model trace": "model trace"}.get(result.method, result.method)
    if result.check is not None:
        return f"{head} ({how}) {result.check.summary}"
    return f"{head} ({how}, not checked: no real run)"


# -- search filler -----------------------------------------------------------

def _function_ast(source: str, fn: FunctionInfo) -> tuple[ast.AST, int] | None:
    """The function parsed on its own (holes as ``__``), and the line offset
    to add to its line numbers."""
    from neuraldbg.source.sanitize import sanitize

    text = function_text(source, fn)
    clean = sanitize(text.encode("utf-8", "surrogatepass")).parse.decode("utf-8", "surrogatepass")
    try:
        tree = ast.parse(textwrap.dedent(clean))
    except SyntaxError:
        return None
    return tree, fn.first_line - 1


def visible_names(source: str, fn: FunctionInfo, hole: Hole) -> list[str]:
    """Local names of the function (parameters and assigned names), nearest
    mention before the hole first."""
    parsed = _function_ast(source, fn)
    if parsed is None:
        return list(fn.params)
    tree, offset = parsed
    locals_: set[str] = set(fn.params)
    mentions: dict[str, tuple[int, int]] = {}
    hole_pos = (hole.span.start_line + 1, hole.span.start_col)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            locals_.add(node.arg)
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                locals_.add(node.id)
            pos = (node.lineno + offset, node.col_offset)
            if pos < hole_pos and pos > mentions.get(node.id, (0, -1)):
                mentions[node.id] = pos
    locals_.discard("__")
    ranked = sorted(locals_, key=lambda n: (mentions.get(n, (0, -1)), n in fn.params), reverse=True)
    # parameters that were never mentioned before the hole still count, after the mentioned names
    return ranked


def doctest_literals(expectations: Sequence[Expectation]) -> list[str]:
    seen: dict[str, None] = {}
    for exp in expectations:
        for text in (exp.call, exp.want or ""):
            try:
                tree = ast.parse(text, mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool):
                    seen.setdefault(repr(node.value), None)
    return list(seen)[:6]


def candidates(source: str, fn: FunctionInfo, hole: Hole, expectations: Sequence[Expectation], limit: int = 80) -> list[str]:
    """Candidate replacements for one hole, simplest and nearest first."""
    names = visible_names(source, fn, hole)
    lits = doctest_literals(expectations)
    out: dict[str, None] = {}
    if hole.kind == "statement":
        out["pass"] = None
        for n in names:
            out[f"return {n}"] = None
        for lit in [*lits, "None", "0"]:
            out[f"return {lit}"] = None
        return list(out)[:limit]
    for n in names:
        out[n] = None
    for lit in [*lits, "0", "1", "None", "True", "False", "[]", "''", "-1"]:
        out[lit] = None
    top = names[:4]
    for n in top:
        for form in (f"{n} + 1", f"{n} - 1", f"not {n}", f"len({n})", f"-{n}", f"{n}[0]", f"{n}[-1]"):
            out[form] = None
    for a, b in itertools.permutations(top, 2):
        for form in (f"{a} + {b}", f"max({a}, {b})", f"min({a}, {b})", f"{a} * {b}", f"{a} - {b}", f"{a}[{b}]"):
            out[form] = None
    return list(out)[:limit]


def _combos(per_hole: Sequence[Sequence[str]], limit: int) -> Iterator[tuple[str, ...]]:
    """Joint candidates for several holes, best ranks first (by rank sum)."""
    sizes = [len(c) for c in per_hole]
    if not sizes or 0 in sizes:
        return
    made = 0
    for total in range(sum(s - 1 for s in sizes) + 1):
        for ranks in itertools.product(*(range(s) for s in sizes)):
            if sum(ranks) != total:
                continue
            yield tuple(c[r] for c, r in zip(per_hole, ranks))
            made += 1
            if made >= limit:
                return


@dataclass
class SearchFiller:
    """Search over candidate expressions, judged by real runs."""

    run: Runner
    max_runs: int = 60
    budget_seconds: float = 30.0
    name: str = "search"

    def fill(self, request: FillRequest, cancel: CancelToken | None = None) -> FillResult:
        exps = expectations_for(request.source, request.index, request.function)
        if not exps:
            raise FillError(f"no input to check a fill against: add a doctest example to {request.function.name}")
        checker = RunChecker(self.run)
        per_hole = [candidates(request.source, request.function, h, exps) for h in request.holes]
        deadline = time.monotonic() + self.budget_seconds
        tried = 0
        best_fail: FillCheck | None = None
        for texts in _combos(per_hole, self.max_runs):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if time.monotonic() > deadline:
                break
            if validate_texts(request, texts) is not None:
                continue
            tried += 1
            verdict = checker.check(request, texts, exps)
            if verdict is not None and verdict.passed:
                return FillResult(texts=tuple(texts), method="search", check=verdict, tried=tried)
            best_fail = best_fail or verdict
        want = exps[0].want if exps[0].want is not None else "a clean run"
        raise FillError(f"no candidate made {exps[0].call} give {want or 'None'} (tried {tried})")


# -- model fillers -------------------------------------------------------------

SYSTEM_PROMPT_REASONING = (
    "You are a helpful AI assistant. You always reason before responding, using the following format:\n\n"
    "<think>\nyour internal reasoning\n</think>\nyour external response"
)
SYSTEM_PROMPT_PLAIN = "You are a helpful AI assistant."


def fill_question(request: FillRequest) -> str:
    fn = request.function
    lines = [
        f"The Python code below has {'a hole' if len(request.holes) == 1 else f'{len(request.holes)} holes'} "
        f"written `??` in the function `{fn.qualname}`.",
        "Reply with only the code that replaces each `??`, one per line in order, with no explanation.",
    ]
    exps = expectations_for(request.source, request.index, fn)
    for exp in exps[:3]:
        if exp.want is not None:
            lines.append(f"It must satisfy: {exp.call} == {exp.want or 'None'}")
    lines += ["", "```python", request.source.rstrip("\n"), "```"]
    return "\n".join(lines)


def chat_prompt_ids(tok: "TokenizerLike", user: str, *, reasoning: bool = True) -> list[int]:
    """A CWM chat prompt as ids: BOS, system turn with CWM's required system
    prompt, user turn, and the opened assistant turn."""
    from neuraldbg.trace.cwm_tokens import BOS, END_HEADER, EOT_ID, START_HEADER

    def turn(role: str, content: str) -> list[int]:
        return [START_HEADER, *tok.encode(role), END_HEADER, *tok.encode("\n\n" + content), EOT_ID]

    system = SYSTEM_PROMPT_REASONING if reasoning else SYSTEM_PROMPT_PLAIN
    ids = [BOS, *turn("system", system), *turn("user", user), START_HEADER, *tok.encode("assistant"), END_HEADER]
    ids += tok.encode("\n\n<think>\n" if reasoning else "\n\n")
    return ids


def parse_answer(text: str, n: int, *, reasoning: bool) -> list[str]:
    """The ``n`` fills in a chat answer (after ``</think>``; code fences and
    backticks removed)."""
    if reasoning:
        if "</think>" not in text:
            raise FillError("the model did not finish reasoning within its token budget")
        text = text.split("</think>", 1)[1]
    lines = [ln.strip() for ln in text.strip().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("```")]
    lines = [ln[1:-1] if len(ln) > 1 and ln.startswith("`") and ln.endswith("`") else ln for ln in lines]
    if len(lines) < n:
        raise FillError("the model's answer has no usable fill")
    return lines[:n]


@dataclass
class ChatFiller:
    backend: "TokenBackend"
    tok: "TokenizerLike"
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=1024))
    reasoning: bool = True
    checker: RunChecker | None = None
    lock: Any = None  # held while generating: one generation at a time per model
    name: str = "model"

    def fill(self, request: FillRequest, cancel: CancelToken | None = None) -> FillResult:
        from neuraldbg.trace.cwm_tokens import EOM_ID, EOT, EOT_ID

        ids = chat_prompt_ids(self.tok, fill_question(request), reasoning=self.reasoning)
        out: list[int] = []
        with self.lock if self.lock is not None else contextlib.nullcontext():
            for tok_id in self.backend.generate(ids, stop_ids=(EOT, EOM_ID, EOT_ID), sampling=self.sampling, cancel=cancel):
                if tok_id in (EOT, EOM_ID, EOT_ID):
                    break
                out.append(tok_id)
        text = self.tok.decode(out)
        texts = parse_answer(text, len(request.holes), reasoning=self.reasoning)
        problem = validate_texts(request, texts)
        if problem is not None:
            raise FillError(f"the model's fill was rejected: {problem}")
        check = self.checker.check(request, texts) if self.checker is not None else None
        return FillResult(texts=tuple(texts), method=self.name, check=check)


def fill_from_line(line_text: str, hole_start: int, hole_end: int, emitted: str) -> str | None:
    """What the model wrote in place of ``??`` when it emitted ``emitted`` as
    the action for the hole's line (None when the line does not match)."""
    prefix, suffix = line_text[:hole_start], line_text[hole_end:].rstrip()
    emitted = emitted.rstrip("\r\n").rstrip()
    if prefix.strip() == "" and hole_start > 0:
        emitted_body = emitted.lstrip()
        prefix = ""
    else:
        emitted_body = emitted
    if not emitted_body.startswith(prefix) or not emitted_body.endswith(suffix):
        return None
    middle = emitted_body[len(prefix) : len(emitted_body) - len(suffix)] if suffix else emitted_body[len(prefix):]
    middle = middle.strip()
    if not middle or HOLE_TEXT in middle:
        return None
    return middle


@dataclass
class TraceFiller:
    """Fills from a predicted trace: the model's action line at the hole."""

    trace: Trace
    checker: RunChecker | None = None
    name: str = "model trace"

    def fill(self, request: FillRequest, cancel: CancelToken | None = None) -> FillResult:
        lines = request.source.splitlines()
        texts: list[str] = []
        for hole in request.holes:
            if hole.span.start_line != hole.span.end_line:
                raise FillError("a hole spanning lines cannot be read from a trace")
            line_text = lines[hole.span.start_line]
            found = None
            for frame in self.trace.frames:
                if frame.line not in (hole.span.start_line + 1, 0) or not frame.source:
                    continue
                found = fill_from_line(line_text, hole.span.start_col, hole.span.end_col, frame.source)
                if found is not None:
                    break
            if found is None:
                raise FillError("the predicted trace never reached the hole with a filled line")
            texts.append(found)
        problem = validate_texts(request, texts)
        if problem is not None:
            raise FillError(f"the model's fill was rejected: {problem}")
        check = self.checker.check(request, texts) if self.checker is not None else None
        return FillResult(texts=tuple(texts), method=self.name, check=check)
