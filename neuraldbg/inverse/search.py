"""Inverse execution: find inputs of a function that meet a goal.

:class:`ExecSearch` (exec backend) is a search judged by real runs: the
function's known inputs first, then combinations of the values mined from
its code, defaults and annotations (lowest rank first), then mutations of
the inputs that came closest (approach level to the target line, then a
branch distance on values; :mod:`neuraldbg.inverse.guide`). Candidates run
in batches, one sandboxed child per batch (:mod:`neuraldbg.tracer.batch`),
a few children at once. The runs come from a :data:`BatchRunner` the caller
provides (the session applies its execution policy there), like the hole
search's Runner.

Model backends propose inputs instead (:mod:`neuraldbg.inverse.model`); both
end in a :class:`SearchResult`: the inputs found as call strings, most
different first, each ``checked`` (a real run met the goal) or predicted.
"""

from __future__ import annotations

import ast
import difflib
import random
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from neuraldbg.backends.base import CancelToken
from neuraldbg.inverse.candidates import (
    Param,
    Signature,
    annotation_values,
    combinations,
    fits_annotation,
    known_calls,
    mine,
    mutate_value,
    seed_values,
    signature,
)
from neuraldbg.inverse.goals import Goal, Observation
from neuraldbg.inverse.guide import Guide
from neuraldbg.source.model import FunctionInfo, SourceIndex
from neuraldbg.tracer.batch import CallOutcome

# (calls, goal line, lines whose locals to keep, cancel) -> one outcome per call, real runs in the sandbox
BatchRunner = Callable[[list[str], int, tuple[int, ...], "CancelToken | None"], list[CallOutcome]]
# (tried, budget, what is being tried)
Progress = Callable[[int, int, str], None]

DEFAULT_BUDGET = 2000  # candidates: the mined constants land in the first few hundred; mutations get the rest
GENERATION = 128  # candidates judged between two looks at the fitness
WORKERS = 2  # sandboxed children at once
MAX_FOUND = 5


@dataclass(frozen=True)
class InverseRequest:
    source: str
    index: SourceIndex
    function: FunctionInfo
    goal: Goal
    path: str = "<string>"


@dataclass(frozen=True)
class FoundInput:
    call: str
    checked: bool  # a real run met the goal (else: the model's predicted trace did)
    origin: str  # "known input", "code", "mutation", "model call frame", "model chat"
    outcome: str  # what the run did: "returns 3", "raises ValueError: x"
    typed: bool = True  # the arguments are of the types the parameters' annotations name


@dataclass(frozen=True)
class SearchResult:
    goal: Goal
    found: tuple[FoundInput, ...]
    tried: int
    tried_by_origin: dict[str, int] = field(default_factory=dict)
    closest_line: int | None = None  # the line nearest the goal that a run reached
    closest_call: str | None = None
    backend: str = "exec"

    def tried_text(self) -> str:
        parts = ", ".join(f"{n} {origin}" for origin, n in self.tried_by_origin.items() if n)
        return f"tried {self.tried} input{'s' if self.tried != 1 else ''}" + (f" ({parts})" if parts else "")

    def summary(self) -> str:
        """One line: what was found, or what was tried and the closest it got."""
        if self.found:
            checked = sum(f.checked for f in self.found)
            return f"found {len(self.found)} input(s) that {self.goal.describe()} ({checked} checked by a real run); {self.tried_text()}"
        closest = (f"; the closest reached line {self.closest_line}" + (f" with {self.closest_call}" if self.closest_call else "")
                   if self.closest_line is not None else "; no run reached the function's body")
        return f"no input found that would {self.goal.describe()}: {self.tried_text()}{closest}"

    def to_json(self) -> dict[str, object]:
        return {
            "goal": self.goal.describe(),
            "found": [{"call": f.call, "checked": f.checked, "origin": f.origin, "outcome": f.outcome} for f in self.found],
            "tried": self.tried,
            "triedByOrigin": dict(self.tried_by_origin),
            "closest": None if self.closest_line is None else {"line": self.closest_line, "call": self.closest_call},
            "backend": self.backend,
            "summary": self.summary(),
        }


def goal_values(goal: Goal) -> list[str]:
    """Values a ``--returns`` goal suggests as inputs (functions often give
    back their input transformed): the value and its parts."""
    if goal.kind != "returns":
        return []
    want = goal.want
    parts: list[object] = [want]
    if isinstance(want, (list, tuple, set)):
        parts += sorted(want, key=repr)[:6] if isinstance(want, set) else list(want)[:6]
        parts.append(list(want)[::-1])
    elif isinstance(want, dict):
        parts += [list(want), list(want.values())]
    elif isinstance(want, str) and want:
        parts += [want[::-1], want.lower(), want.upper(), list(want)]
    texts = [repr(v) for v in parts]
    return [t for t in dict.fromkeys(texts) if len(t) <= 400]


def outcome_text(obs: Observation) -> str:
    if obs.status == "returned":
        return f"returns {obs.value}"
    if obs.status == "raised":
        return f"raises {obs.error}"
    return obs.error or obs.status


def most_different_first(found: Sequence[FoundInput], limit: int = MAX_FOUND) -> tuple[FoundInput, ...]:
    """Checked before predicted, of the annotated types before not (a
    ``text: str`` gets ``'abc'`` before ``0``), and readable before escaped
    (a user reads these: ``f('abc')`` before ``f('\\x8d\\U000355db')``), the shortest first,
    then each next the one least like those already chosen."""
    pool = sorted(dict((_normal(f.call), f) for f in reversed(found)).values(),
                  key=lambda f: (not f.checked, not f.typed, _escaped(f.call), len(f.call), f.call))
    chosen: list[FoundInput] = []
    while pool and len(chosen) < limit:
        if not chosen:
            pick = pool[0]
        else:
            pick = min(pool, key=lambda f: (not f.checked, not f.typed, _escaped(f.call),
                                            max(difflib.SequenceMatcher(None, f.call, c.call).ratio() for c in chosen)))
        chosen.append(pick)
        pool.remove(pick)
    return tuple(chosen)


def _escaped(call: str) -> bool:
    """The call's text has escapes or characters outside printable ASCII."""
    return not call.isascii() or not call.isprintable() or bool(_ESCAPE.search(call))


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|[abfv])")


def _normal(call: str) -> str:
    """One text per call whatever its quoting and spacing (``f("a")`` is ``f('a')``)."""
    try:
        return ast.unparse(ast.parse(call, mode="eval"))
    except (SyntaxError, ValueError, RecursionError):
        return call


@dataclass
class _Tracker:
    """The search's memory: what was tried, the corpus to mutate, the closest."""

    guide: Guide
    params: Sequence[Param] = ()
    tried: set[str] = field(default_factory=set)
    by_origin: dict[str, int] = field(default_factory=dict)
    found: list[FoundInput] = field(default_factory=list)
    corpus: list[tuple[tuple[int, int, float], tuple[str, ...]]] = field(default_factory=list)
    covered: set[int] = field(default_factory=set)
    best: tuple[tuple[tuple[int, int, float], int], str, frozenset[int]] | None = None  # ((fitness, -depth), call, lines)

    def judge(self, values: tuple[str, ...] | None, origin: str, outcome: CallOutcome) -> None:
        obs = Observation.of_outcome(outcome)
        fit = self.guide.fitness(obs)
        if fit[0] == 0:
            typed = values is None or all(fits_annotation(p.annotation, v) for p, v in zip(self.params, values))
            self.found.append(FoundInput(outcome.call, True, origin, outcome_text(obs), typed))
        rank = (fit, -self.guide.depth(obs))
        if obs.status in ("returned", "raised", "timeout") and (self.best is None or rank < self.best[0]):
            self.best = (rank, outcome.call, obs.lines)
        if values is not None and (not obs.lines <= self.covered or len(self.corpus) < 8 or fit < self.corpus[-1][0]):
            self.corpus.append((fit, values))
            self.corpus.sort(key=lambda item: item[0])
            del self.corpus[24:]
        self.covered |= obs.lines


@dataclass
class ExecSearch:
    """The search judged by real runs (exec backend)."""

    run_batch: BatchRunner
    budget: int = DEFAULT_BUDGET
    workers: int = WORKERS
    seed: int = 0
    max_found: int = MAX_FOUND

    def search(self, request: InverseRequest, cancel: CancelToken | None = None,
               progress: Progress | None = None) -> SearchResult:
        sig, tree = signature(request.source, request.function)
        calls = known_calls(request.index, request.function)
        mine(sig, tree, seed_values(calls, request.source, request.function))
        rng = random.Random(self.seed)
        wanted = goal_values(request.goal)
        for p in sig.params:
            p.pool = list(dict.fromkeys([*wanted, *p.pool, *annotation_values(p.annotation, rng, 12)]))
        track = _Tracker(Guide.for_goal(request.goal, tree), sig.params)
        goal_line = request.goal.line if request.goal.kind == "when" else 0
        watch = track.guide.watch_lines()
        source = self._candidates(sig, calls, track, rng)
        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="neuraldbg-inverse") as pool:
            while len(track.tried) < self.budget:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                batch = _take(source, min(GENERATION, self.budget - len(track.tried)), track)
                if not batch:
                    break
                if progress is not None:
                    progress(len(track.tried) - len(batch), self.budget, batch[0][2])
                chunks = [batch[i :: self.workers] for i in range(self.workers) if batch[i :: self.workers]]
                results = pool.map(lambda chunk: self.run_batch([c for _, _, c in chunk], goal_line, watch, cancel), chunks)
                for chunk, outcomes in zip(chunks, results):
                    for (values, origin, _), outcome in zip(chunk, outcomes):
                        track.judge(values, origin, outcome)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                if track.found:
                    break
        if progress is not None:
            progress(len(track.tried), self.budget, "done")
        closest_call = track.best[1] if track.best is not None else None
        closest_line = track.guide.closest([track.best[2]]) if track.best is not None and not track.found else None
        return SearchResult(request.goal, most_different_first(track.found, self.max_found), len(track.tried),
                            dict(track.by_origin), closest_line, None if track.found else closest_call)

    def _candidates(self, sig: Signature, calls: list[str], track: _Tracker,
                    rng: random.Random) -> Iterator[tuple[tuple[str, ...] | None, str, str] | None]:
        """(values, origin, call) to try: known inputs, combinations of the
        pools, then mutations of the corpus interleaved with what is left of
        them; None when there is nothing to try before the next judgement."""
        for call in calls:
            yield None, "known input", call
        combos = combinations([p.pool for p in sig.params])
        while True:
            combo = next(combos, None)
            if combo is not None and (not track.corpus or rng.random() < 0.5):
                yield combo, "code", sig.call(combo)
                continue
            if not track.corpus:
                if combo is None:
                    yield None  # nothing to mutate until this generation is judged
                continue
            parent = track.corpus[min(int(rng.expovariate(0.3)), len(track.corpus) - 1)][1]
            child = list(parent)
            for _ in range(1 if rng.random() < 0.7 else 2):
                i = rng.randrange(len(child))
                child[i] = mutate_value(child[i], sig.params[i].pool, rng)
            yield tuple(child), "mutation", sig.call(child)


def _take(source: Iterator[tuple[tuple[str, ...] | None, str, str] | None], n: int,
          track: _Tracker) -> list[tuple[tuple[str, ...] | None, str, str]]:
    """The next ``n`` candidates never tried before, as (values, origin, call)."""
    out: list[tuple[tuple[str, ...] | None, str, str]] = []
    misses = 0
    while len(out) < n and misses < 20 * n:
        item = next(source, None)
        if item is None:
            break
        if item[2] in track.tried:
            misses += 1
            continue
        track.tried.add(item[2])
        track.by_origin[item[1]] = track.by_origin.get(item[1], 0) + 1
        out.append(item)
    return out
