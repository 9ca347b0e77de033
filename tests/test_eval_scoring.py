"""``neuraldbg eval cruxeval`` on a model backend also rates each sample's real
run under the model in one teacher-forced prefill: the teacher-forced
per-frame accuracy (CWM's single-step metric) beside pass@1, exact-trace and
per-frame accuracy, in the table and in every JSON record."""

from __future__ import annotations

from pathlib import Path

from neuraldbg.backends.base import BackendError, Sampling
from neuraldbg.simulation.scoring import TraceScore
from neuraldbg.eval.cruxeval import CruxSample, evaluate_sample, run_cruxeval, summarize
from neuraldbg.config import Settings
from neuraldbg.eval.predictors import ModelPredictor, Program
from neuraldbg.eval.results import read_results
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer import run_trace


def _short_samples(cruxeval_samples: list[dict[str, str]], n: int) -> list[tuple[dict[str, str], Trace]]:
    """``n`` samples with short real runs (a model frame costs a second or more on the CPU), a loop among them."""
    picked: list[tuple[dict[str, str], Trace]] = []
    for s in cruxeval_samples[:60]:
        truth = run_trace(s["code"], f"f({s['input']})", function="f")
        if truth.status == "complete" and 4 <= len(truth.frames) <= 8:
            picked.append((s, truth))
        if len(picked) == n:
            break
    assert len(picked) == n
    return picked


def test_the_oracle_writes_every_frame_of_the_real_runs_teacher_forced(oracle_cwm, cruxeval_samples,
                                                                        tmp_path: Path) -> None:
    """The oracle-forced CWM behind the local backend (model-server --oracle
    behind the remote one is the CLI's test): every real frame is its greedy choice."""
    backend, _oracle = oracle_cwm
    picked = _short_samples(cruxeval_samples, 3)
    lines = [[f.line for f in t.frames if f.event == "line"] for _, t in picked]
    assert any(len(set(ls)) < len(ls) for ls in lines)  # a line run twice: a loop
    samples = [CruxSample(id=s["id"], code=s["code"], input=s["input"], output=s["output"]) for s, _ in picked]
    predictor = ModelPredictor(Settings(backend="local", profile="oracle-in-process"), sampling=Sampling(),
                               loaded=(backend, backend.tokenizer))
    out = tmp_path / "oracle.jsonl"
    run = run_cruxeval(samples, predictor, out=out, truths={s["id"]: t for s, t in picked})
    frames = sum(len(t.frames) - 1 for _, t in picked)  # every frame after the call frame (the input)
    summary = run.summary
    assert summary.passed == summary.exact_traces == 3 and summary.teacher_forced_accuracy == 1.0
    assert f"teacher-forced accuracy  100.0% ({frames}/{frames} frames of 3 real runs)" in summary.table()
    records = read_results(out)
    for s, truth in picked:
        record = records[s["id"]]
        assert record["teacher_forced_accuracy"] == 1.0 and record["teacher_forced_error"] is None
        assert record["teacher_forced_frames"] == record["teacher_forced_total"] == len(truth.frames) - 1
        assert record["teacher_forced_divergence"] is None


class _Disagreeing:
    """A model predictor whose prediction is the real run and whose rating of
    it is given (or fails): what the harness does with a rating, alone."""

    backend = "local"
    model = "stand-in"
    needs_truth = True

    def __init__(self, score: TraceScore | Exception) -> None:
        self._score = score

    def predict(self, program: Program, *, max_frames: int, truth: Trace | None) -> Trace:
        assert truth is not None
        return truth

    def score(self, program: Program, truth: Trace) -> TraceScore | None:
        if isinstance(self._score, Exception):
            raise self._score
        return self._score


def _sample(cruxeval_samples) -> CruxSample:
    s, _truth = _short_samples(cruxeval_samples, 1)[0]
    return CruxSample(id=s["id"], code=s["code"], input=s["input"], output=s["output"])


def test_a_rating_that_fails_is_recorded_and_keeps_the_sample(cruxeval_samples) -> None:
    sample = _sample(cruxeval_samples)
    result = evaluate_sample(sample, _Disagreeing(BackendError("cannot score 9,000 tokens: the context holds 8,192")),
                             max_frames=100)
    assert result.passed and result.exact_trace and result.error is None
    assert result.teacher_forced_accuracy is None and result.teacher_forced_total == 0
    assert result.teacher_forced_error == "BackendError: cannot score 9,000 tokens: the context holds 8,192"
    assert "teacher-forced" not in summarize([result]).table()  # nothing rated: no row


def test_the_summary_pools_the_frames_of_every_rated_run(cruxeval_samples) -> None:
    from neuraldbg.simulation.scoring import FrameScore

    sample = _sample(cruxeval_samples)

    def rating(agree: list[bool]) -> TraceScore:
        return TraceScore(tuple(FrameScore(i + 1, a, 0.0 if a else -5.0, None) for i, a in enumerate(agree)), True, 40)

    half = evaluate_sample(sample, _Disagreeing(rating([True, False, True, False])), max_frames=100)
    full = evaluate_sample(sample, _Disagreeing(rating([True, True])), max_frames=100)
    assert (half.teacher_forced_accuracy, half.teacher_forced_divergence) == (0.5, 2)
    assert (full.teacher_forced_accuracy, full.teacher_forced_divergence) == (1.0, None)
    summary = summarize([half, full])
    assert summary.teacher_forced_accuracy == 4 / 6  # pooled over frames, not the mean of 50% and 100%
    assert "teacher-forced accuracy  66.7% (4/6 frames of 2 real runs)" in summary.table()
