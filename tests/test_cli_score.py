"""``neuraldbg trace --score``: the real run rated under a model in one
prefill, from the command line as a user runs it, against the oracle-forced
CWM behind ``neuraldbg model-server --oracle`` and on the random tiny CWM."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_cli import ndbg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def oracle_url(tiny_cwm_dir: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "neuraldbg", "model-server", "--model", str(tiny_cwm_dir), "--oracle",
                             "--port", str(port), "--log-level", "warning"], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"model-server --oracle did not start: {proc.stderr.read()[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_score_against_the_oracle_server_agrees_with_the_real_run(oracle_url: str) -> None:
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
