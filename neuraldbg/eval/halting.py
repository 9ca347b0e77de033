"""Halting prediction: does the predicted trace end, or run out of budget?

Each program is predicted with a frame budget. The verdict is ``halts``
when the predicted trace ends (status complete, an escaping exception
included), ``loops`` when the budget is exhausted (the trace "stopped
early", status truncated) or the run came back to an exact state, and
``unknown`` when the prediction broke off otherwise (malformed output, a
backend error). It is scored against the label the program was built with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

from neuraldbg.eval.halting_programs import DEFAULT_BUDGET, MAX_BUDGET, MAX_HALTING_FRAMES, HaltingProgram
from neuraldbg.eval.predictors import EvalError, Predictor, Program
from neuraldbg.eval.progress import Progress
from neuraldbg.eval.tables import format_table, percent
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import Limits

log = logging.getLogger(__name__)

Verdict = Literal["halts", "loops", "unknown"]
VERDICTS: tuple[Verdict, ...] = ("halts", "loops", "unknown")


@dataclass(frozen=True)
class HaltingResult:
    name: str
    family: str
    label: str  # "halts" / "loops"
    verdict: Verdict
    frames: int
    status: str  # the predicted trace's status
    seconds: float
    error: str | None

    @property
    def correct(self) -> bool:
        return self.verdict == self.label

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["correct"] = self.correct
        return out


def classify(trace: Trace, budget: int) -> Verdict:
    """The budget is what tells the two kinds apart here (every halting
    program ends well within it), so a trace it stopped early counts as a
    loop, as does one the tracer saw come back to an exact state."""
    if trace.status == "complete":
        return "halts"
    if trace.status == "truncated" and (len(trace.frames) >= budget or trace.stop == "cycle"):
        return "loops"
    return "unknown"


def check_budget(budget: int) -> None:
    if not MAX_HALTING_FRAMES < budget <= MAX_BUDGET:
        raise EvalError(
            f"the halting frame budget must be between {MAX_HALTING_FRAMES + 1} (the longest halting program "
            f"runs {MAX_HALTING_FRAMES} frames) and {MAX_BUDGET} (unbounded recursion raises RecursionError "
            f"after ~2000 frames in Python), got {budget}"
        )


def evaluate_program(program: HaltingProgram, predictor: Predictor, *, budget: int,
                     limits: Limits = Limits()) -> HaltingResult:
    started = time.perf_counter()
    verdict: Verdict = "unknown"
    frames, status, error = 0, "error", None
    try:
        target = Program(source=program.source, function=program.function, call=program.call, path="<halting>")
        truth = None
        if predictor.needs_truth:
            # One frame past the budget is enough for the budget to be the
            # first thing a non-halting run hits.
            truth = target.truth(Limits(wall_seconds=limits.wall_seconds, cpu_seconds=limits.cpu_seconds,
                                        memory_mb=limits.memory_mb, max_frames=budget + 1))
        trace = predictor.predict(target, max_frames=budget, truth=truth)
        verdict = classify(trace, budget)
        frames, status = len(trace.frames), trace.status
        if verdict == "unknown":
            error = trace.error or f"the predicted trace is {trace.status}"
    except Exception as exc:  # a broken prediction is an "unknown", not a crash
        log.debug("halting program %s failed", program.name, exc_info=True)
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return HaltingResult(name=program.name, family=program.family, label=program.label, verdict=verdict,
                         frames=frames, status=status, seconds=time.perf_counter() - started, error=error)


def run_halting(programs: Sequence[HaltingProgram], predictor: Predictor, *, budget: int = DEFAULT_BUDGET,
                jobs: int = 1, limits: Limits = Limits(),
                progress: Callable[[int], Progress] | None = None) -> list[HaltingResult]:
    """Results in program order."""
    check_budget(budget)
    if jobs < 1:
        raise EvalError(f"--jobs must be at least 1, got {jobs}")
    bar = progress(len(programs)) if progress is not None and programs else None

    def one(program: HaltingProgram) -> HaltingResult:
        result = evaluate_program(program, predictor, budget=budget, limits=limits)
        if bar is not None:
            bar.update(1)
        return result

    try:
        if jobs == 1:
            return [one(p) for p in programs]
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="neuraldbg-halting") as pool:
            return list(pool.map(one, programs))
    finally:
        if bar is not None:
            bar.close()


@dataclass(frozen=True)
class HaltingSummary:
    programs: int
    correct: int
    confusion: dict[str, dict[str, int]]  # label -> verdict -> count

    @property
    def accuracy(self) -> float:
        return self.correct / self.programs if self.programs else 0.0


def summarize_halting(results: Sequence[HaltingResult]) -> HaltingSummary:
    confusion = {label: {v: 0 for v in VERDICTS} for label in ("halts", "loops")}
    for r in results:
        confusion[r.label][r.verdict] += 1
    return HaltingSummary(programs=len(results), correct=sum(r.correct for r in results), confusion=confusion)


def format_halting(results: Sequence[HaltingResult], *, backend: str, budget: int, verbose: bool = False) -> str:
    summary = summarize_halting(results)
    parts = [
        f"Halting · backend {backend} · frame budget {budget}",
        f"accuracy: {percent(summary.correct, summary.programs)} ({summary.correct}/{summary.programs})",
        "",
        format_table(
            ("label \\ predicted", *VERDICTS, "total"),
            [(label, *(row[v] for v in VERDICTS), sum(row.values())) for label, row in summary.confusion.items()],
            right=(1, 2, 3, 4),
        ),
    ]
    families = sorted({r.family for r in results})
    fam_rows = []
    for fam in families:
        rs = [r for r in results if r.family == fam]
        ok = sum(r.correct for r in rs)
        fam_rows.append((fam, len(rs), ok, percent(ok, len(rs))))
    parts += ["", format_table(("family", "programs", "correct", "accuracy"), fam_rows, right=(1, 2, 3))]
    if verbose:
        rows = [(r.name, r.family, r.label, r.verdict, "ok" if r.correct else "WRONG", r.frames, f"{r.seconds:.2f}",
                 r.error or "") for r in results]
        parts += ["", format_table(("program", "family", "label", "predicted", "", "frames", "seconds", "error"), rows,
                                   right=(5, 6))]
    return "\n".join(parts)
