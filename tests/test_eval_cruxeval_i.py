"""``neuraldbg eval cruxeval-i``: CruxEval input prediction, pass@1 judged by
a real run ``f(pred) == output``. On exec the prediction comes from the
inverse search, which is given the code and the output only (a sample whose
input is replaced gets the same predictions); the tiny random CWM runs
through the harness in chat mode and each result keeps what the model wrote,
an answer without a call being a failed sample with its note."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from neuraldbg.cli.main import main as cli_main
from neuraldbg.config import Settings
from neuraldbg.eval.cruxeval import CruxSample
from neuraldbg.eval.cruxeval_i import run_cruxeval_i
from neuraldbg.eval.outputs import outputs_match
from neuraldbg.session.policy import ExecutionPolicy
from neuraldbg.session.session import Session
from neuraldbg.tracer import run_trace


@pytest.fixture(scope="module")
def samples(cruxeval_samples) -> list[CruxSample]:
    return [CruxSample(id=s["id"], code=s["code"], input=s["input"], output=s["output"]) for s in cruxeval_samples[:12]]


def _real_output(sample: CruxSample, call: str) -> str | None:
    trace = run_trace(sample.code, call, function="f")
    return trace.return_value if trace.raised is None and trace.status == "complete" else None


def test_exec_predictions_are_judged_by_a_real_run_and_never_see_the_input(samples) -> None:
    run = run_cruxeval_i(samples, Settings(backend="exec", allow_execution=True))
    assert [r.id for r in run.results] == [s.id for s in samples]
    for sample, r in zip(samples, run.results):
        if r.predicted:  # the harness's verdict is the real run's: f(pred) == output
            assert r.passed == outputs_match(_real_output(sample, r.predicted) or "<raised>", sample.output), r
            assert r.origin in ("code", "mutation") and r.answer == ""
        else:
            assert not r.passed and r.note.startswith("no input found")
    assert run.pass_at_1 == sum(r.passed for r in run.results) / len(samples) and run.pass_at_1 >= 0.5
    # the search is given the code and the output only: another input changes no prediction
    hidden = [replace(s, input="__never_seen__") for s in samples]
    again = run_cruxeval_i(hidden, Settings(backend="exec", allow_execution=True))
    assert [(r.predicted, r.passed) for r in again.results] == [(r.predicted, r.passed) for r in run.results]
    assert "FIGURE cruxeval_i_pass_at_1_exec |" in run.table()


def test_the_tiny_model_runs_through_the_harness_and_wrote_what_is_scored(tiny_cwm_dir, samples) -> None:
    settings = Settings(backend="local", profile=str(tiny_cwm_dir), allow_execution=True, temperature=1.0, seed=3)
    session = Session(settings, policy=ExecutionPolicy.command_line(), workers=1)
    try:
        backend, _tok = session.engines.backend(settings)
        before = backend.stats.generated_tokens
        run = run_cruxeval_i(samples[:3], settings, session=session, modes=("chat",), budget=1)
        generated = backend.stats.generated_tokens - before
    finally:
        session.engines.close()
    assert len(run.results) == 3 and run.backend == "local"
    # the model wrote every answer the harness scored: tokens were generated for each, and each answer is kept
    assert generated >= 3 and all(r.answer for r in run.results)
    for sample, r in zip(samples, run.results):
        if not r.predicted:  # a random model's text holds no call: a failure, with why
            assert not r.passed and r.note == "the model's answer held no call of the function"
        else:
            assert r.origin == "model chat"
            assert r.passed == outputs_match(_real_output(sample, r.predicted) or "<raised>", sample.output)
    table = run.table()
    assert "CruxEval-I (local): 3 samples" in table and "answered    3/3" in table
    assert f"FIGURE cruxeval_i_pass_at_1_local | {run.pass_at_1:.4f} | fraction" in table


def test_the_cli_runs_on_a_file_and_rejects_bad_numbers(samples, tmp_path: Path, capsys) -> None:
    data = tmp_path / "four.jsonl"
    data.write_text("".join(json.dumps({"id": s.id, "code": s.code, "input": s.input, "output": s.output}) + "\n"
                            for s in samples[:4]))
    assert cli_main(["eval", "cruxeval-i", "--data", str(data), "--backend", "exec", "--budget", "300"]) == 0
    out = capsys.readouterr().out
    assert "CruxEval-I (exec): 4 samples" in out and "FIGURE cruxeval_i_pass_at_1_exec |" in out
    assert cli_main(["eval", "cruxeval-i", "--data", str(data), "--budget", "0"]) == 2
    err = capsys.readouterr().err
    assert "--budget must be at least 1" in err and err.count("\n") == 1


def test_out_keeps_one_record_per_sample_and_a_second_run_resumes(samples, tmp_path: Path, capsys) -> None:
    data = tmp_path / "four.jsonl"
    data.write_text("".join(json.dumps({"id": s.id, "code": s.code, "input": s.input, "output": s.output}) + "\n"
                            for s in samples[:4]))
    out = tmp_path / "runs" / "exec.jsonl"
    common = ["eval", "cruxeval-i", "--data", str(data), "--backend", "exec", "--budget", "300", "--out", str(out)]
    assert cli_main([*common, "--limit", "3"]) == 0
    first = capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [s.id for s in samples[:3]]
    for sample, r in zip(samples, records):  # each record holds the call and the real run's verdict on it
        assert r["backend"] == "exec" and r["budget"] == 300 and r["mode"] == "chat" and r["model"] is None
        if r["predicted"]:
            assert r["passed"] == outputs_match(_real_output(sample, r["predicted"]) or "<raised>", sample.output)
    # a second run over four samples runs only the fourth and scores all four
    assert cli_main(common) == 0
    captured = capsys.readouterr()
    assert f"resuming: 3 done, 1 to go ({out})" in captured.err
    assert "CruxEval-I (exec): 4 samples" in captured.out and "(1 run now, 3 resumed)" in captured.out
    assert "FIGURE cruxeval_i_wall_exec" not in captured.out  # the time of one sample is no figure of four
    assert "FIGURE cruxeval_i_wall_exec" in first
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [s.id for s in samples[:4]]
    passed = sum(json.loads(line)["passed"] for line in out.read_text().splitlines())
    assert f"pass@1      {passed / 4:.3f}  ({passed}/4)" in captured.out
    assert "pass@1" in first
    # another budget is another run: its records do not mix with these
    assert cli_main([*common[:-4], "--budget", "100", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds results of another run (exec, budget 300, mode chat), not exec, budget 100, mode chat" in err
