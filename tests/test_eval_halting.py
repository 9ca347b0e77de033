"""The halting benchmark: its labels hold on the real tracer, the exec
backend scores 100%, broken predictions are "unknown", the CLI prints it."""

from __future__ import annotations

import pytest

from neuraldbg.cli.main import main as cli_main
from neuraldbg.eval.errors import EvalError
from neuraldbg.eval.halting import classify, format_halting, run_halting, summarize_halting
from neuraldbg.eval.halting_programs import (
    DEFAULT_BUDGET,
    MAX_HALTING_FRAMES,
    builtin_programs,
    generated,
    hand_written,
)
from neuraldbg.eval.predictors import ExecPredictor, ReplayPredictor
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.tracer import Limits, run_traces


def test_the_set_has_enough_of_each_kind() -> None:
    hand = hand_written()
    assert sum(p.halts for p in hand) >= 20 and sum(not p.halts for p in hand) >= 20
    families: dict[str, set[bool]] = {}
    for p in generated():
        families.setdefault(p.family, set()).add(p.halts)
    assert len(families) >= 3
    assert all(kinds == {True, False} for kinds in families.values()), families  # each family yields both labels
    assert len({p.name for p in builtin_programs()}) == len(builtin_programs())


def test_labels_hold_on_the_real_tracer() -> None:
    """Halting programs complete within MAX_HALTING_FRAMES; the others are
    stopped by the frame cap (not by a time limit, not by an exception)."""
    programs = builtin_programs()
    cap = DEFAULT_BUDGET + 1
    traces = run_traces([(p.source, p.call, p.function, "<halting>") for p in programs],
                        Limits(max_frames=cap), workers=2)
    wrong = []
    for p, t in zip(programs, traces):
        if p.halts and not (t.status == "complete" and len(t.frames) <= MAX_HALTING_FRAMES):
            wrong.append((p.name, t.status, len(t.frames), t.error))
        if not p.halts and not (t.status == "truncated" and len(t.frames) == cap and "stopped after" in (t.error or "")):
            wrong.append((p.name, t.status, len(t.frames), t.error))
    assert not wrong, wrong


def test_exec_backend_scores_100_percent() -> None:
    programs = builtin_programs()
    results = run_halting(programs, ExecPredictor(), budget=DEFAULT_BUDGET, jobs=2)
    assert [r.name for r in results] == [p.name for p in programs]
    wrong = [(r.name, r.label, r.verdict, r.error) for r in results if not r.correct]
    assert not wrong, wrong
    summary = summarize_halting(results)
    halts = sum(p.halts for p in programs)
    assert summary.accuracy == 1.0
    assert summary.confusion == {"halts": {"halts": halts, "loops": 0, "unknown": 0},
                                 "loops": {"halts": 0, "loops": len(programs) - halts, "unknown": 0}}
    text = format_halting(results, backend="exec", budget=DEFAULT_BUDGET)
    assert f"accuracy: 100.0% ({len(programs)}/{len(programs)})" in text


def test_replay_reaches_the_budget_on_loops() -> None:
    programs = [p for p in builtin_programs() if p.family == "countdown_by"]
    results = run_halting(programs, ReplayPredictor(), budget=220)
    assert all(r.correct for r in results), [(r.name, r.verdict, r.error) for r in results]
    assert {r.frames for r in results if r.label == "loops"} == {220}


def test_classify() -> None:
    frames = [Frame("line", 1, "run", 0)] * 5
    assert classify(Trace("run", "run()", "x", frames, status="complete"), 5) == "halts"
    assert classify(Trace("run", "run()", "x", frames, status="truncated"), 5) == "loops"
    # Cut short for another reason (a frame the model never finished): no verdict.
    assert classify(Trace("run", "run()", "x", frames[:3], status="truncated"), 5) == "unknown"
    assert classify(Trace("run", "run()", "x", [], status="error", error="boom"), 5) == "unknown"


class _Broken:
    backend = "broken"
    model = None
    needs_truth = False

    def predict(self, program, *, max_frames, truth):
        raise RuntimeError("malformed\nsecond line")

    def close(self) -> None:
        pass


def test_a_failing_prediction_is_unknown_not_a_crash() -> None:
    results = run_halting(builtin_programs()[:3], _Broken(), budget=DEFAULT_BUDGET)
    assert {r.verdict for r in results} == {"unknown"}
    assert {r.error for r in results} == {"RuntimeError: malformed"}
    assert summarize_halting(results).accuracy == 0.0


def test_budgets_that_cannot_separate_the_kinds_are_refused() -> None:
    with pytest.raises(EvalError, match="between"):
        run_halting(builtin_programs()[:1], ExecPredictor(), budget=MAX_HALTING_FRAMES)
    with pytest.raises(EvalError, match="RecursionError"):
        run_halting(builtin_programs()[:1], ExecPredictor(), budget=5000)


def test_cli_prints_confusion_and_per_program_results(tmp_path, capsys) -> None:
    out = tmp_path / "halting.jsonl"
    code = cli_main(["eval", "halting", "--backend", "exec", "--family", "step_to_target", "--verbose",
                     "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    n = sum(p.family == "step_to_target" for p in builtin_programs())
    assert f"accuracy: 100.0% ({n}/{n})" in captured.out
    assert "label \\ predicted  halts  loops  unknown  total" in captured.out
    assert "step_to_target[0,13,3]  step_to_target  loops  loops" in captured.out
    assert len(out.read_text().splitlines()) == n
    assert cli_main(["eval", "halting", "--family", "nope"]) == 2
    assert "no family 'nope'" in capsys.readouterr().err
