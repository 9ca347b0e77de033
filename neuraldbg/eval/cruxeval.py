"""CruxEval-O (output prediction, pass@1) plus what only a tracer can score.

A sample is ``f`` (its code), an input (the argument list as text) and the
expected output (a repr). The predicted output of a trace-predicting
backend is the return value of the entry's depth-0 return frame; an
exception or no return fails the sample. Against the ground truth (the
sandboxed tracer running the same ``f(input)``) each sample also gets
full-trace exact match, per-frame accuracy and the first divergent step
(:mod:`neuraldbg.eval.trace_compare`). On a model backend the real run is
also rated under the model in one teacher-forced prefill
(:func:`neuraldbg.simulation.scoring.score_trace`): the teacher-forced
per-frame accuracy, CWM's single-step metric, is the share of the real run's
frames (after the call frame, which is the input) whose every token is the
model's greedy choice given the true prefix.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from neuraldbg.eval.outputs import outputs_match
from neuraldbg.eval.predictors import EvalError, Predictor, Program
from neuraldbg.eval.progress import Progress
from neuraldbg.eval.results import ResultWriter, read_results
from neuraldbg.eval.tables import format_table, percent
from neuraldbg.eval.trace_compare import compare_traces
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import Limits

log = logging.getLogger(__name__)

ENTRY = "f"  # every CruxEval program defines f
PATH = "<cruxeval>"


@dataclass(frozen=True)
class CruxSample:
    id: str
    code: str
    input: str  # the arguments as written, e.g. "[1, 2], 3"
    output: str  # repr of the expected return value

    @property
    def call(self) -> str:
        return f"{ENTRY}({self.input})"

    @property
    def program(self) -> Program:
        return Program(source=self.code, function=ENTRY, call=self.call, path=PATH)


def load_cruxeval(path: str | Path) -> list[CruxSample]:
    """Samples of a CruxEval JSONL file ({code, input, output, id} per line);
    a bad file is an :class:`EvalError` naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"cannot read CruxEval data {path}: {exc}") from None
    samples: list[CruxSample] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise EvalError(f"{path}:{number}: expected a JSON object")
        missing = [k for k in ("id", "code", "input", "output") if not isinstance(row.get(k), str)]
        if missing:
            raise EvalError(f"{path}:{number}: missing or non-string field(s) {', '.join(missing)}")
        if row["id"] in seen:
            raise EvalError(f"{path}:{number}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        samples.append(CruxSample(id=row["id"], code=row["code"], input=row["input"], output=row["output"]))
    if not samples:
        raise EvalError(f"{path}: no samples")
    return samples


@dataclass
class SampleResult:
    """One JSONL record."""

    id: str
    passed: bool
    predicted_output: str | None
    expected_output: str
    exact_trace: bool
    frame_accuracy: float
    first_divergence: dict[str, Any] | None
    frames_predicted: int
    frames_truth: int
    seconds: float  # wall time of the sample: the real run (unless given), the prediction, the scoring
    error: str | None  # the harness could not score it, or the prediction did not finish
    backend: str = ""
    model: str | None = None
    status: str = ""  # the predicted trace's status
    raised: str | None = None  # the exception a predicted trace ended with
    # The real run rated under the model (model backends; None elsewhere or when it could not be rated):
    teacher_forced_accuracy: float | None = None  # share of its frames greedy decoding writes given the true prefix
    teacher_forced_frames: int = 0  # of them, the frames greedy decoding writes
    teacher_forced_total: int = 0  # frames rated (all but the call frame)
    teacher_forced_divergence: int | None = None  # index of the first frame it would not write
    teacher_forced_error: str | None = None  # why the real run could not be rated

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SampleResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def evaluate_sample(sample: CruxSample, predictor: Predictor, *, max_frames: int, truth: Trace | None = None,
                    truth_limits: Limits = Limits()) -> SampleResult:
    """Predict and score one sample. Never raises for a bad prediction or a
    failing program: the record says what went wrong."""
    started = time.perf_counter()
    result = SampleResult(id=sample.id, passed=False, predicted_output=None, expected_output=sample.output,
                          exact_trace=False, frame_accuracy=0.0, first_divergence=None, frames_predicted=0,
                          frames_truth=0, seconds=0.0, error=None, backend=predictor.backend, model=predictor.model)
    try:
        program = sample.program
        if truth is None:
            truth = program.truth(truth_limits)
        predicted = predictor.predict(program, max_frames=max_frames, truth=truth)
        result.status = predicted.status
        result.predicted_output = predicted.return_value
        raised = predicted.raised
        result.raised = raised.value if raised is not None else None
        result.passed = outputs_match(result.predicted_output, sample.output)
        comparison = compare_traces(predicted, truth)
        result.exact_trace = comparison.exact
        result.frame_accuracy = comparison.frame_accuracy
        result.first_divergence = comparison.first_divergence.to_json() if comparison.first_divergence else None
        result.frames_predicted = comparison.frames_predicted
        result.frames_truth = comparison.frames_truth
        _rate_real_run(result, predictor, program, truth)
        if predicted.status != "complete":
            result.error = predicted.error or f"the predicted trace is {predicted.status}"
        if truth.status != "complete":
            result.error = f"the real run did not finish ({truth.error or truth.status})" + (
                f"; {result.error}" if result.error else "")
    except Exception as exc:  # one sample's failure (malformed model output, bad code) must not stop the run
        log.debug("sample %s failed", sample.id, exc_info=True)
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    result.seconds = time.perf_counter() - started
    return result


def _rate_real_run(result: SampleResult, predictor: Predictor, program: Program, truth: Trace) -> None:
    """The teacher-forced fields of ``result``; a failure to rate is recorded
    there and leaves the sample's other metrics alone."""
    try:
        score = predictor.score(program, truth)
    except Exception as exc:  # a context overflow or a server without scoring must not lose the sample
        log.debug("rating the real run of %s failed", result.id, exc_info=True)
        result.teacher_forced_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return
    if score is None:
        return
    result.teacher_forced_accuracy = score.frame_accuracy
    result.teacher_forced_frames = sum(f.agrees for f in score.frames)
    result.teacher_forced_total = len(score.frames)
    result.teacher_forced_divergence = score.first_divergence


@dataclass(frozen=True)
class CruxSummary:
    samples: int
    passed: int
    exact_traces: int
    mean_frame_accuracy: float
    mean_seconds: float
    errors: int
    backend: str = ""
    model: str | None = None
    teacher_forced_samples: int = 0  # samples whose real run was rated under the model
    teacher_forced_frames: int = 0  # frames greedy decoding writes given the true prefix, over those samples
    teacher_forced_total: int = 0  # frames rated

    @property
    def teacher_forced_accuracy(self) -> float | None:
        """Teacher-forced per-frame accuracy over every rated frame (None: nothing rated)."""
        return self.teacher_forced_frames / self.teacher_forced_total if self.teacher_forced_total else None

    @property
    def pass_at_1(self) -> float:
        return self.passed / self.samples if self.samples else 0.0

    @property
    def exact_trace_rate(self) -> float:
        return self.exact_traces / self.samples if self.samples else 0.0

    def table(self) -> str:
        who = self.backend + (f" ({self.model})" if self.model and self.model != self.backend else "")
        rows = [
            ("samples", str(self.samples)),
            ("pass@1", f"{percent(self.passed, self.samples)} ({self.passed}/{self.samples})"),
            ("exact-trace rate", f"{percent(self.exact_traces, self.samples)} ({self.exact_traces}/{self.samples})"),
            ("mean per-frame accuracy", f"{100 * self.mean_frame_accuracy:.1f}%" if self.samples else "n/a"),
            *self._teacher_forced_rows(),
            ("mean seconds per sample", f"{self.mean_seconds:.3f}"),
            ("errors", str(self.errors)),
        ]
        return f"CruxEval-O · backend {who}\n" + format_table(("metric", "value"), rows)

    def _teacher_forced_rows(self) -> list[tuple[str, str]]:
        if not self.teacher_forced_samples:
            return []
        value = (f"{percent(self.teacher_forced_frames, self.teacher_forced_total)} "
                 f"({self.teacher_forced_frames}/{self.teacher_forced_total} frames of "
                 f"{self.teacher_forced_samples} real runs)")
        return [("teacher-forced accuracy", value)]


def summarize(results: Sequence[SampleResult]) -> CruxSummary:
    n = len(results)
    return CruxSummary(
        samples=n,
        passed=sum(r.passed for r in results),
        exact_traces=sum(r.exact_trace for r in results),
        mean_frame_accuracy=sum(r.frame_accuracy for r in results) / n if n else 0.0,
        mean_seconds=sum(r.seconds for r in results) / n if n else 0.0,
        errors=sum(r.error is not None for r in results),
        backend=results[0].backend if results else "",
        model=results[0].model if results else None,
        teacher_forced_samples=sum(r.teacher_forced_accuracy is not None for r in results),
        teacher_forced_frames=sum(r.teacher_forced_frames for r in results),
        teacher_forced_total=sum(r.teacher_forced_total for r in results),
    )


@dataclass
class CruxRun:
    results: list[SampleResult]  # every selected sample, in data order (earlier runs' records included)
    resumed: int  # records taken from the --out file
    new: int  # samples evaluated now

    @property
    def summary(self) -> CruxSummary:
        return summarize(self.results)


def previous_results(out: Path | None, predictor: Predictor) -> dict[str, SampleResult]:
    """Records already in ``out``; an :class:`EvalError` when they come from
    another backend or model (mixing them would make a meaningless score)."""
    if out is None:
        return {}
    records = read_results(out)
    for record in records.values():
        backend, model = record.get("backend"), record.get("model")
        if backend and (backend != predictor.backend or model != predictor.model):
            raise EvalError(
                f"{out} holds results of backend {backend}" + (f" ({model})" if model else "")
                + f", not {predictor.backend}" + (f" ({predictor.model})" if predictor.model else "")
                + ": use another --out file"
            )
    done: dict[str, SampleResult] = {}
    for key, record in records.items():
        try:
            done[key] = SampleResult.from_json(record)
        except TypeError:
            log.warning("%s: record %s lacks fields; it will be redone", out, key)
    return done


def run_cruxeval(
    samples: Sequence[CruxSample],
    predictor: Predictor,
    *,
    max_frames: int = 2000,
    jobs: int = 1,
    out: Path | None = None,
    truths: Mapping[str, Trace] | None = None,
    truth_limits: Limits = Limits(),
    progress: Callable[[int], Progress] | None = None,
    notice: Callable[[str], None] | None = None,
    on_result: Callable[[SampleResult], None] | None = None,
) -> CruxRun:
    """Evaluate ``samples`` (``jobs`` at a time), appending each record to
    ``out`` as soon as it is scored and skipping ids already there.

    ``truths`` (id -> real trace) saves re-running the tracer. ``progress``
    makes the display for the number of samples left; ``notice`` gets
    one-line messages for the user (resuming). An interrupt
    (KeyboardInterrupt, or one raised by ``on_result``) stops the run after
    the records written so far; running again with the same ``out`` resumes.
    """
    if jobs < 1:
        raise EvalError(f"--jobs must be at least 1, got {jobs}")
    if max_frames < 1:
        raise EvalError(f"--max-frames must be at least 1, got {max_frames}")
    wanted = {s.id for s in samples}
    done = {k: v for k, v in previous_results(out, predictor).items() if k in wanted}
    todo = [s for s in samples if s.id not in done]
    if done and notice is not None:
        notice(f"resuming: {len(done)} done, {len(todo)} to go ({out})")
    bar = progress(len(todo)) if progress is not None and todo else None
    fresh: dict[str, SampleResult] = {}
    writer = ResultWriter(out) if out is not None else None
    passed = sum(r.passed for r in done.values())

    def one(sample: CruxSample) -> SampleResult:
        truth = truths.get(sample.id) if truths is not None else None
        return evaluate_sample(sample, predictor, max_frames=max_frames, truth=truth, truth_limits=truth_limits)

    def record(result: SampleResult) -> None:
        nonlocal passed
        fresh[result.id] = result
        if writer is not None:
            writer.write(result.to_json())
        passed += result.passed
        if bar is not None:
            scored = len(done) + len(fresh)
            bar.update(1, f"pass@1 {percent(passed, scored)}")
        if on_result is not None:
            on_result(result)

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="neuraldbg-eval") if jobs > 1 else None
    try:
        if pool is None:
            for sample in todo:
                record(one(sample))
        else:
            futures: list[Future[SampleResult]] = [pool.submit(one, s) for s in todo]
            for future in as_completed(futures):
                record(future.result())
    finally:
        if pool is not None:
            # On an interrupt, queued samples are dropped; running ones finish
            # (each is bounded by the tracer's or the frame budget's limits).
            pool.shutdown(wait=True, cancel_futures=True)
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    results = [done.get(s.id) or fresh[s.id] for s in samples]
    return CruxRun(results=results, resumed=len(done), new=len(fresh))
