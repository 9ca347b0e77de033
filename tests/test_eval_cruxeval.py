"""The CruxEval-O harness: its scoring, its own sanity (exec and replay are
perfect on all 800 samples), resumability, a tiny model end to end, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neuraldbg.cli.main import main as cli_main
from neuraldbg.eval.cruxeval import CruxSample, SampleResult, evaluate_sample, load_cruxeval, run_cruxeval
from neuraldbg.eval.errors import EvalError
from neuraldbg.eval.outputs import outputs_match
from neuraldbg.eval.predictors import ExecPredictor, ReplayPredictor
from neuraldbg.eval.results import read_results
from neuraldbg.eval.trace_compare import compare_traces
from neuraldbg.trace.frames import Frame, Trace

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def samples(cruxeval_samples) -> list[CruxSample]:
    return [CruxSample(id=s["id"], code=s["code"], input=s["input"], output=s["output"]) for s in cruxeval_samples]


@pytest.fixture(scope="module")
def truths(samples, cruxeval_traces) -> dict[str, Trace]:
    return {s.id: t for s, t in zip(samples, cruxeval_traces)}


@pytest.fixture(scope="module")
def data_file(cruxeval_samples, tmp_path_factory) -> Path:
    """The first 40 samples as a file of their own (tests read it, never the repo)."""
    path = tmp_path_factory.mktemp("crux") / "cruxeval40.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in cruxeval_samples[:40]))
    return path


# -- scoring -----------------------------------------------------------------


@pytest.mark.parametrize("predicted, expected, ok", [
    ("[1, 2]", "[1, 2]", True),
    ("[1,2]", "[1, 2]", True),  # same value, other spacing
    ("{3, 1, 2}", "{1, 2, 3}", True),  # set order does not matter
    ("{'b': 1, 'a': 2}", "{'a': 2, 'b': 1}", True),
    ('"abc"', "'abc'", True),
    ("1.0", "1", True),  # == as in CruxEval's assert
    ("True", "1", True),
    ("(1,)", "(1, )", True),
    ("'abc'", "'abd'", False),
    ("[1, 2]", "(1, 2)", False),
    ("<object at 0x1>", "<object at 0x1>", True),  # not literals: compared as text
    ("<object at 0x1>", "'x'", False),
    ("'" + "a" * 10, "'aaaaaaaaaa'", False),  # a torn repr fails, never raises
    (None, "None", False),  # no return value at all
    ("[" * 5000 + "]" * 5000, "[]", False),  # too deep for the parser: still an answer
])
def test_outputs_match(predicted, expected, ok) -> None:
    assert outputs_match(predicted, expected) is ok


def _frame(event, line, locals_=None, value=None, depth=0, function="f") -> Frame:
    return Frame(event, line, function, depth, dict(locals_ or {}), value)


TRUTH = [
    _frame("call", 1, {"x": "1"}),
    _frame("line", 2, {"x": "1"}),
    _frame("line", 3, {"x": "1", "y": "2"}),
    _frame("return", 3, value="3"),
]


def test_compare_identical_traces() -> None:
    c = compare_traces(list(TRUTH), list(TRUTH))
    assert (c.exact, c.frame_accuracy, c.first_divergence, c.frames_predicted, c.frames_truth) == (True, 1.0, None, 4, 4)


def test_compare_reports_the_first_differing_local() -> None:
    pred = list(TRUTH)
    pred[2] = _frame("line", 3, {"x": "1", "y": "5", "z": "0"})
    c = compare_traces(pred, TRUTH)
    assert not c.exact and c.frame_accuracy == 0.75
    d = c.first_divergence
    assert (d.step, d.what) == (2, "locals")
    assert d.names == {"y": {"predicted": "5", "executed": "2"}, "z": {"predicted": "0", "executed": None}}
    assert d.text == "step 2: locals y: predicted 5 vs executed 2; z: predicted 0 vs executed (absent)"
    assert json.loads(json.dumps(d.to_json()))["text"] == d.text


def test_compare_line_event_value_and_length() -> None:
    wrong_line = [TRUTH[0], _frame("line", 4, {"x": "1"}), *TRUTH[2:]]
    d = compare_traces(wrong_line, TRUTH).first_divergence
    assert (d.step, d.what, d.predicted, d.executed) == (1, "line", 4, 2)
    wrong_value = [*TRUTH[:3], _frame("return", 3, value="4")]
    d = compare_traces(wrong_value, TRUTH).first_divergence
    assert (d.step, d.what, d.predicted, d.executed) == (3, "value", "4", "3")
    short = compare_traces(TRUTH[:2], TRUTH)
    assert short.frame_accuracy == 0.5 and short.first_divergence.what == "length"
    assert short.first_divergence.step == 2 and short.first_divergence.predicted == "end of trace"
    assert short.first_divergence.text == "step 2: predicted end of trace vs executed line at line 3 in f"
    longer = compare_traces([*TRUTH, _frame("line", 9)], TRUTH)
    assert longer.frame_accuracy == 1.0 and not longer.exact and longer.first_divergence.executed == "end of trace"
    # Return frames carry no locals in CWM: a prediction without them still matches.
    assert compare_traces([*TRUTH[:3], _frame("return", 3, {"junk": "1"}, value="3")], TRUTH).exact


def test_a_predicted_exception_fails_the_sample() -> None:
    sample = CruxSample(id="raise", code="def f(x):\n    return 10 // x\n", input="0", output="0")
    result = evaluate_sample(sample, ExecPredictor(), max_frames=100)
    assert not result.passed and result.predicted_output is None
    assert result.raised == "ZeroDivisionError('integer division or modulo by zero')"
    assert result.exact_trace and result.error is None  # the prediction is exactly the real run


def test_frame_budget_cuts_the_prediction() -> None:
    sample = CruxSample(id="long", code="def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n",
                        input="50", output="1225")
    result = evaluate_sample(sample, ReplayPredictor(), max_frames=10)
    assert not result.passed and result.status == "truncated"
    assert result.frames_predicted == 10 and result.frames_truth > 10
    assert result.first_divergence["what"] == "length" and result.first_divergence["step"] == 10
    assert "stopped after 10 frames" in result.error


def test_bad_code_is_a_per_sample_error() -> None:
    sample = CruxSample(id="nof", code="def g(x):\n    return x\n", input="1", output="1")
    result = evaluate_sample(sample, ReplayPredictor(), max_frames=100)
    assert not result.passed and "no function 'f'" in result.error


# -- the harness on all 800 samples --------------------------------------------


@pytest.mark.slow
def test_exec_backend_passes_every_sample(samples, truths) -> None:
    run = run_cruxeval(samples, ExecPredictor(), truths=truths)
    failed = [(r.id, r.predicted_output, r.expected_output, r.error) for r in run.results if not r.passed]
    assert len(run.results) == 800
    assert not failed, failed[:5]
    summary = run.summary
    assert (summary.pass_at_1, summary.exact_trace_rate, summary.mean_frame_accuracy, summary.errors) == (1.0, 1.0, 1.0, 0)


@pytest.mark.slow
def test_replay_backend_reproduces_every_trace(samples, truths) -> None:
    run = run_cruxeval(samples, ReplayPredictor(), truths=truths, jobs=2)
    wrong = [(r.id, r.first_divergence, r.error) for r in run.results if not r.exact_trace or r.frame_accuracy != 1.0]
    assert len(run.results) == 800
    assert not wrong, wrong[:5]
    assert run.summary.pass_at_1 == 1.0 and run.summary.mean_frame_accuracy == 1.0
    assert [r.id for r in run.results] == [s.id for s in samples]  # data order, whatever finished first


# -- resuming ----------------------------------------------------------------------


def _comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "seconds"}


def test_an_interrupted_run_resumes_to_the_same_results(samples, truths, tmp_path) -> None:
    chosen = samples[:30]
    full_path, part_path = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    full = run_cruxeval(chosen, ReplayPredictor(), truths=truths, out=full_path)
    assert full.new == 30 and full.resumed == 0

    class Stop(KeyboardInterrupt):
        pass

    seen = []

    def interrupt_after_12(result: SampleResult) -> None:
        seen.append(result.id)
        if len(seen) == 12:
            raise Stop()

    with pytest.raises(Stop):
        run_cruxeval(chosen, ReplayPredictor(), truths=truths, out=part_path, on_result=interrupt_after_12)
    assert len(read_results(part_path)) == 12
    # A kill in the middle of a write leaves a torn line; it is redone.
    with part_path.open("a") as fh:
        fh.write('{"id": "' + chosen[20].id + '", "passed": tr')

    notices: list[str] = []
    resumed = run_cruxeval(chosen, ReplayPredictor(), truths=truths, out=part_path, jobs=2, notice=notices.append)
    assert (resumed.resumed, resumed.new) == (12, 18)
    assert notices == [f"resuming: 12 done, 18 to go ({part_path})"]
    full_records = {k: _comparable(v) for k, v in read_results(full_path).items()}
    part_records = {k: _comparable(v) for k, v in read_results(part_path).items()}
    assert part_records == full_records
    a, b = resumed.summary, full.summary
    assert (a.samples, a.passed, a.exact_traces, a.mean_frame_accuracy, a.errors) == (
        b.samples, b.passed, b.exact_traces, b.mean_frame_accuracy, b.errors)

    # Nothing left: a third run only reads the file back.
    again = run_cruxeval(chosen, ReplayPredictor(), truths=truths, out=part_path)
    assert (again.resumed, again.new) == (30, 0)
    assert [r.id for r in again.results] == [s.id for s in chosen]


def test_results_of_another_backend_are_not_mixed_in(samples, truths, tmp_path) -> None:
    out = tmp_path / "r.jsonl"
    run_cruxeval(samples[:2], ExecPredictor(), truths=truths, out=out)
    with pytest.raises(EvalError, match="holds results of backend exec"):
        run_cruxeval(samples[:3], ReplayPredictor(), truths=truths, out=out)


def test_bad_data_files_are_one_line_errors(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "code": "def f(): pass", "input": "", "output": "None"}\n{"id": "b"}\n')
    with pytest.raises(EvalError, match=r"bad.jsonl:2: missing or non-string field\(s\) code, input, output"):
        load_cruxeval(bad)
    bad.write_text("not json\n")
    with pytest.raises(EvalError, match="bad.jsonl:1: not JSON"):
        load_cruxeval(bad)
    with pytest.raises(EvalError, match="cannot read CruxEval data"):
        load_cruxeval(tmp_path / "missing.jsonl")


# -- a real model backend: the oracle-forced tiny CWM (and the random one) ------------


def test_a_model_backend_runs_through_the_whole_harness(oracle_server_url, cruxeval_samples, tmp_path,
                                                        capsys) -> None:
    """``eval cruxeval --backend remote`` on ``model-server --oracle``: every
    frame is written by a real CWM decode loop whose logits are masked to the
    real run, so the harness must score it perfect (pass@1, exact traces) and
    record the real run's output and frame counts."""
    from neuraldbg.tracer import run_trace

    # Three short samples (a model frame costs a second or more on the CPU),
    # a loop among them; the harness reads them from a file as a user's data.
    picked = []
    for s in cruxeval_samples[:40]:
        truth = run_trace(s["code"], f"f({s['input']})", function="f")
        if truth.status == "complete" and len(truth.frames) <= 7:
            picked.append((s, truth))
        if len(picked) == 3:
            break
    lines = [[f.line for f in t.frames if f.event == "line"] for _, t in picked]
    assert len(picked) == 3 and any(len(set(ls)) < len(ls) for ls in lines)  # a line run twice: a loop
    data = tmp_path / "short.jsonl"
    data.write_text("".join(json.dumps(s) + "\n" for s, _ in picked))
    out = tmp_path / "oracle.jsonl"
    code = cli_main(["eval", "cruxeval", "--data", str(data), "--backend", "remote", "--url", oracle_server_url,
                     "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "CruxEval-O · backend remote" in captured.out
    assert "pass@1                   100.0% (3/3)" in captured.out
    assert "exact-trace rate         100.0% (3/3)" in captured.out
    assert "errors                   0" in captured.out
    records = read_results(out)
    assert sorted(records) == sorted(s["id"] for s, _ in picked)
    for s, truth in picked:
        record = records[s["id"]]
        assert record["backend"] == "remote" and record["model"] == f"model server {oracle_server_url}"
        assert record["passed"] and record["exact_trace"] and record["frame_accuracy"] == 1.0
        assert record["first_divergence"] is None and record["error"] is None
        assert record["predicted_output"] == truth.return_value
        assert outputs_match(record["predicted_output"], s["output"])
        assert record["frames_predicted"] == record["frames_truth"] == len(truth.frames)


def test_malformed_model_output_is_recorded_per_sample(tiny_cwm_dir, data_file, tmp_path, capsys) -> None:
    """The random tiny CWM (randomness is the point here) never closes a frame
    within 8 tokens: each sample records the malformed frame, none raises."""
    out = tmp_path / "tiny.jsonl"
    code = cli_main(["eval", "cruxeval", "--data", str(data_file), "--backend", "local", "--model", str(tiny_cwm_dir),
                     "--limit", "3", "--max-frames", "4", "--frame-tokens", "8", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "CruxEval-O · backend local" in captured.out and "samples                  3" in captured.out
    records = read_results(out)
    assert len(records) == 3
    for record in records.values():
        assert record["backend"] == "local" and record["model"] == Path(tiny_cwm_dir).resolve().name
        assert record["frames_truth"] > 0 and 1 <= record["frames_predicted"] <= 4
        # The call frame is forced from the real arguments; the model's first own frame is noise.
        assert record["first_divergence"] is not None and record["first_divergence"]["step"] >= 1
        assert record["error"]  # malformed (no frame within 8 tokens) or the frame cap: recorded, not raised
        assert not record["exact_trace"]


def test_a_missing_model_is_a_one_line_cli_error(data_file, tmp_path, capsys) -> None:
    code = cli_main(["eval", "cruxeval", "--data", str(data_file), "--backend", "local",
                     "--model", str(tmp_path / "nothing-here")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("neuraldbg: error: ") and err.count("\n") == 1


# -- the command line -----------------------------------------------------------------


def test_cli_prints_the_table_and_writes_jsonl(data_file, tmp_path) -> None:
    out = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "neuraldbg", "eval", "cruxeval", "--backend", "exec", "--limit", "5",
           "--data", str(data_file), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pass@1                   100.0% (5/5)" in proc.stdout
    assert "exact-trace rate         100.0% (5/5)" in proc.stdout
    assert "errors                   0" in proc.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    record = json.loads(lines[0])
    assert set(record) >= {"id", "passed", "predicted_output", "expected_output", "exact_trace", "frame_accuracy",
                           "first_divergence", "frames_predicted", "frames_truth", "seconds", "error"}
    assert "5/5" in proc.stderr  # progress (plain lines: stderr is not a terminal here)

    again = subprocess.run(cmd[:-5] + ["7"] + cmd[-4:], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming: 5 done, 2 to go" in again.stderr
    assert len(out.read_text().splitlines()) == 7


def test_cli_bad_input_exits_2_with_one_line(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "neuraldbg", "eval", "cruxeval", "--data", str(tmp_path / "no.jsonl")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("neuraldbg: error: cannot read CruxEval data")
    assert "Traceback" not in proc.stderr


def test_progress_redraws_on_a_terminal_and_logs_lines_elsewhere() -> None:
    import io

    from neuraldbg.eval.progress import Progress

    tty = io.StringIO()
    bar = Progress(3, "cruxeval", stream=tty, tty=True)
    for _ in range(3):
        bar.update(1, "pass@1 100.0%")
    bar.close()
    assert tty.getvalue().count("\r") >= 2 and "3/3" in tty.getvalue() and tty.getvalue().endswith("\n")
    log = io.StringIO()
    bar = Progress(100, "cruxeval", stream=log, tty=False, interval_s=3600)
    for _ in range(100):
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "1/100" in lines[0] and "100/100" in lines[1] and "\r" not in log.getvalue()
