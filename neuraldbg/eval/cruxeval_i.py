"""``neuraldbg eval cruxeval-i``: CruxEval input prediction, pass@1.

The paper's metric: one predicted input per sample, run for real, must give
the expected output (``f(pred) == output``). On exec the prediction is the
first input the search (:mod:`neuraldbg.inverse`) found for "returns
OUTPUT", from the code and the output alone (never the sample's input); on
local/remote it is the model's first proposal (chat mode as in CruxEval-I,
or an open call frame), neither filtered by a real run nor traced by the
model: the real run here is the judge. Each result keeps what the model
wrote (``answer``), so a model-path figure shows it measured the model's own
proposals; an answer without a usable call is a failed sample with its note.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from neuraldbg.backends.base import CancelToken
from neuraldbg.config import Settings
from neuraldbg.eval.cruxeval import ENTRY, PATH, CruxSample
from neuraldbg.eval.errors import EvalError
from neuraldbg.eval.results import ResultWriter, read_results
from neuraldbg.inverse.goals import GoalError, Observation, make_goal
from neuraldbg.session.inputs import find_inputs
from neuraldbg.session.policy import ExecutionPolicy
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import Target
from neuraldbg.source.index import index_text
from neuraldbg.tracer import Limits, run_trace

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cruxeval.jsonl"
EXEC_BUDGET = 5000  # candidates per sample on exec: 800 samples in about ten minutes on 2 cores (the search alone: 2000)
PER_CALL_SECONDS = 0.25  # CruxEval functions are small: a candidate over this is a loop the search made
JUDGE_SECONDS = 5.0  # the real run that judges a prediction


@dataclass(frozen=True)
class InputResult:
    id: str
    predicted: str  # the call, "" when nothing was proposed
    passed: bool
    tried: int
    note: str  # what the real run gave, or why there is no prediction
    origin: str = ""  # where the prediction came from: "code", "mutation", "model chat", ...
    answer: str = ""  # model backends: what the model wrote for this sample ("" on exec)

    def to_json(self, run: "RunKey") -> dict[str, Any]:
        return {**asdict(self), **asdict(run)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "InputResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RunKey:
    """What makes two records comparable: an --out file mixing runs of other
    backends, models, budgets or modes would make a meaningless score."""

    backend: str
    model: str | None
    budget: int | None
    mode: str


@dataclass(frozen=True)
class InputRun:
    backend: str
    results: tuple[InputResult, ...]
    seconds: float  # of the samples run now (not of those resumed from --out)
    resumed: int = 0  # records taken from the --out file

    @property
    def pass_at_1(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 0.0

    def table(self) -> str:
        n = len(self.results)
        proposed = sum(bool(r.predicted) for r in self.results)
        written = [] if self.backend in ("exec", "replay") else [
            f"  answered    {sum(bool(r.answer) for r in self.results)}/{n}  (samples the model wrote an answer for)"]
        return "\n".join([
            f"CruxEval-I ({self.backend}): {n} samples",
            f"  pass@1      {self.pass_at_1:.3f}  ({sum(r.passed for r in self.results)}/{n})",
            f"  proposed    {proposed}/{n}",
            *written,
            f"  wall time   {self.seconds:.1f} s" + (f"  ({n - self.resumed} run now, {self.resumed} resumed)"
                                                     if self.resumed else ""),
            f"FIGURE cruxeval_i_pass_at_1_{self.backend} | {self.pass_at_1:.4f} | fraction",
            # the wall time is a figure of the whole set only when no sample came from --out
            *([] if self.resumed else [f"FIGURE cruxeval_i_wall_{self.backend} | {self.seconds:.1f} | s"]),
        ])


def evaluate_input(sample: CruxSample, session: Session, *, budget: int | None, modes: tuple[str, ...],
                   cancel: CancelToken | None = None) -> InputResult:
    index = index_text(sample.code)
    fn = index.function(ENTRY)
    if fn is None:
        return InputResult(sample.id, "", False, 0, f"no function {ENTRY} in the sample")
    try:
        goal = make_goal(fn, sample.code, "returns", expr=sample.output)
    except GoalError as exc:
        return InputResult(sample.id, "", False, 0, str(exc))
    target = Target(PATH, sample.code, index, fn, "", "imagined")
    try:
        found = find_inputs(session, target, goal, budget=budget, cancel=cancel, per_call_seconds=PER_CALL_SECONDS,
                            modes=modes, check=False, judge=False)
    except GoalError as exc:
        return InputResult(sample.id, "", False, 0, str(exc))
    result = found.result
    answer = found.proposals[0].answer if found.proposals else ""
    if result.found:
        first, origin = result.found[0].call, result.found[0].origin
    else:
        proposal = next((p for p in found.proposals if p.call), None)
        first, origin = (proposal.call, proposal.origin) if proposal is not None else ("", "")
    if not first:
        why = found.proposals[0].note if found.proposals else result.summary()
        return InputResult(sample.id, "", False, result.tried, why, "", answer)
    trace = run_trace(sample.code, first, function=ENTRY, path=PATH, limits=Limits(wall_seconds=JUDGE_SECONDS))
    obs = Observation.of_trace(trace, 0)
    return InputResult(sample.id, first, goal.met(obs), result.tried,
                       f"returns {obs.value}" if obs.status == "returned" else (obs.error or obs.status), origin,
                       next((p.answer for p in found.proposals if p.call == first), answer))


def previous_inputs(out: Path | None, key: RunKey) -> dict[str, InputResult]:
    """The records already in ``out``, by id; an :class:`EvalError` when
    they come from another run (:class:`RunKey`)."""
    if out is None:
        return {}
    done: dict[str, InputResult] = {}
    for sample_id, record in read_results(out).items():
        theirs = RunKey(record.get("backend", ""), record.get("model"), record.get("budget"), record.get("mode", ""))
        if theirs != key:
            raise EvalError(f"{out} holds results of another run ({_describe(theirs)}), not {_describe(key)}: "
                            "use another --out file")
        try:
            done[sample_id] = InputResult.from_json(record)
        except TypeError:  # a record of an older layout
            continue
    return done


def _describe(key: RunKey) -> str:
    model = f" {key.model}" if key.model else ""
    return f"{key.backend}{model}, budget {key.budget}, mode {key.mode}"


def run_cruxeval_i(samples: Sequence[CruxSample], settings: Settings, *, budget: int | None = None,
                   modes: tuple[str, ...] = ("chat",), on_sample: Callable[[InputResult], None] | None = None,
                   session: Session | None = None, out: Path | None = None,
                   on_start: Callable[[int, int], None] | None = None) -> InputRun:
    """Predict an input for each sample; with ``out``, append each record
    there as soon as it is judged and skip the ids already in it (resume).
    ``on_start`` gets the numbers of samples resumed and to run, before any runs."""
    key = RunKey(settings.backend, settings.profile or None, budget, modes[0] if modes else "")
    wanted = {s.id for s in samples}
    done = {k: v for k, v in previous_inputs(out, key).items() if k in wanted}
    own = session is None
    started = time.monotonic()
    fresh: dict[str, InputResult] = {}
    todo = [s for s in samples if s.id not in done]
    if on_start is not None:
        on_start(len(done), len(todo))
    if todo:
        session = session or Session(settings, policy=ExecutionPolicy.command_line(), workers=1)
    writer = ResultWriter(out) if out is not None and todo else None
    try:
        for sample in todo:
            assert session is not None
            r = evaluate_input(sample, session, budget=budget, modes=modes)
            fresh[r.id] = r
            if writer is not None:
                writer.write(r.to_json(key))
            if on_sample is not None:
                on_sample(r)
    finally:
        if writer is not None:
            writer.close()
        if own and session is not None:
            session.engines.close()
    results = tuple(done.get(s.id) or fresh[s.id] for s in samples)
    return InputRun(settings.backend, results, time.monotonic() - started, resumed=len(done))


def add_cruxeval_i_parser(kinds: "argparse._SubParsersAction[argparse.ArgumentParser]",
                          add_backend_args: Callable[[argparse.ArgumentParser], None]) -> None:
    c = kinds.add_parser("cruxeval-i", help="CruxEval-I input prediction (pass@1): exec = the inverse search, "
                                            "local/remote = the model")
    c.add_argument("--data", default=str(DEFAULT_DATA), help=f"CruxEval JSONL (default: {DEFAULT_DATA})")
    c.add_argument("--limit", type=int, default=None, help="only the first N samples")
    c.add_argument("--budget", type=int, default=None,
                   help=f"per sample: candidates on exec (default {EXEC_BUDGET}), model proposals otherwise (default 1)")
    c.add_argument("--mode", choices=["chat", "frame"], default="chat",
                   help="model backends: chat-mode input prediction (CruxEval-I) or an open call frame")
    c.add_argument("--out", help="append one JSON record per sample here (the predicted call, the verdict, what "
                                 "the model wrote); ids already in it are skipped (resume)")
    add_backend_args(c)


def cmd_cruxeval_i(args: argparse.Namespace) -> int:
    import os
    import sys
    from neuraldbg.eval.cruxeval import load_cruxeval
    from neuraldbg.eval.progress import Progress

    if args.limit is not None and args.limit < 1:
        raise EvalError(f"--limit must be at least 1, got {args.limit}")
    if args.budget is not None and args.budget < 1:
        raise EvalError(f"--budget must be at least 1, got {args.budget}")
    samples = load_cruxeval(args.data)[: args.limit]
    settings = Settings(backend=args.backend, profile=args.model or "", url=args.url or "",
                        api_key=args.api_key or os.environ.get("NEURALDBG_API_KEY", ""), temperature=args.temperature,
                        seed=args.seed if args.seed is not None else 0, timeout_seconds=args.timeout,
                        allow_execution=True)  # the evaluation runs every prediction for real
    budget = args.budget or (EXEC_BUDGET if settings.backend in ("exec", "replay") else 1)
    out = Path(args.out) if args.out else None
    bars: list[Progress] = []

    def start(resumed: int, todo: int) -> None:
        if resumed:
            print(f"resuming: {resumed} done, {todo} to go ({out})", file=sys.stderr)
        bars.append(Progress(todo, "cruxeval-i"))

    try:
        run = run_cruxeval_i(samples, settings, budget=budget, modes=(args.mode,), out=out, on_start=start,
                             on_sample=lambda r: bars[0].update(1, f"pass {r.passed}"))
    finally:
        for bar in bars:
            bar.close()
    print(run.table())
    return 0
