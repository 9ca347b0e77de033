"""``neuraldbg trace --score``: the real run rated under a model in one
prefill, from the command line as a user runs it, against the oracle-forced
CWM behind ``neuraldbg model-server --oracle`` and on the random tiny CWM."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import ndbg


def test_score_against_the_oracle_server_agrees_with_the_real_run(oracle_server_url: str) -> None:
    oracle_url = oracle_server_url
    res = ndbg("trace", "examples/strawberry.py::count_letter", "--score", "--backend", "remote", "--url", oracle_url,
               "--format", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    score = out["score"]
    assert len(score["frames"]) == len(out["frames"]) - 1  # every frame after the call frame (the input)
    assert score["frame_accuracy"] == 1.0 and score["first_divergence"] is None and score["ends"] is True
    table = ndbg("trace", "examples/strawberry.py::count_letter", "--score", "--backend", "remote", "--url", oracle_url)
    assert table.returncode == 0, table.stderr
    assert f"model agreement: {len(score['frames'])}/{len(score['frames'])} frames" in table.stdout
    assert "greedy decoding would reproduce the whole real run" in table.stdout


def test_score_on_the_random_model_names_the_first_divergence(tiny_cwm_dir: Path) -> None:
    res = ndbg("trace", "examples/strawberry.py::count_letter", "--score", "--backend", "local", "--model",
               str(tiny_cwm_dir), "--format", "json")
    assert res.returncode == 0, res.stderr
    score = json.loads(res.stdout)["score"]
    first = score["first_divergence"]
    assert first is not None and score["frame_accuracy"] < 1.0
    frame = next(f for f in score["frames"] if f["step"] == first)
    assert not frame["agrees"] and frame["disagreement"]["part"] in ("event", "locals", "line", "value")
    assert all(f["agrees"] for f in score["frames"] if f["step"] < first)


def test_score_needs_a_model_backend() -> None:
    res = ndbg("trace", "examples/strawberry.py::count_letter", "--score")
    assert res.returncode == 2
    assert "--score rates the real run under a model" in res.stderr and "Traceback" not in res.stderr
