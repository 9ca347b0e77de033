"""Shared pytest fixtures. Keep each fixture self-contained."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dap_client.pyclient import DapClient

# One intra-op thread for torch here and in every server the tests start (they
# inherit the environment): test processes and their servers run side by side
# on few cores, where spinning OpenMP workers made each small op many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The tiny CWM-layout tokenizer (byte-level BPE in 0..127999, CWM's 256
    specials at 128000..128255), built once per session, saved with
    ``save_pretrained`` and loaded back with ``AutoTokenizer`` (its folder is
    ``tiny_tokenizer.name_or_path``)."""
    from neuraldbg.backends.hf_tokenizer import load_tokenizer
    from neuraldbg.testing.tiny_tokenizer import build_tiny_tokenizer

    out_dir = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer(out_dir)
    return load_tokenizer(out_dir)


@pytest.fixture(scope="session")
def tiny_cwm_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random CWM checkpoint (CwmForCausalLM, vocab 128,256, sliding
    window 24, two bf16 safetensors shards) with the tiny tokenizer, built
    once per session; load it like a real checkpoint folder."""
    from neuraldbg.testing.tiny_model import build_tiny_cwm

    return build_tiny_cwm(tmp_path_factory.mktemp("tiny_cwm"))


@pytest.fixture(scope="session")
def cruxeval_samples() -> list[dict[str, str]]:
    """CruxEval from ../shared/data (or $NEURALDBG_CRUXEVAL). Missing data is a
    loud failure, never a skip."""
    import json
    import os
    from pathlib import Path

    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "cruxeval.jsonl"
    path = Path(os.environ.get("NEURALDBG_CRUXEVAL", default))
    if not path.is_file():
        pytest.fail(f"CruxEval data not found at {path}: put cruxeval.jsonl there or set NEURALDBG_CRUXEVAL")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def cruxeval_traces(cruxeval_samples):
    """Ground-truth traces of f(input) for every CruxEval sample, computed once
    per test session (about a minute on 2 cores)."""
    from neuraldbg.tracer import Limits, run_traces

    jobs = [(s["code"], f"f({s['input']})", "f", "<cruxeval>") for s in cruxeval_samples]
    return run_traces(jobs, Limits(), workers=2)


@pytest.fixture(scope="session")
def oracle_cwm(tiny_cwm_dir):
    """The tiny CWM behind the real LocalBackend with the trace oracle in its
    decode loop (neuraldbg.backends.oracle): every forward pass runs, and the
    logits are masked to the real run's next token, so the frames are written
    by the model's generation loop and are the ones the real run has.
    Returns ``(backend, oracle)``; the backend is shared: read its stats as
    differences."""
    from neuraldbg.backends.oracle import load_oracle_backend

    backend, oracle = load_oracle_backend(str(tiny_cwm_dir))
    yield backend, oracle
    backend.close()


@pytest.fixture(scope="session")
def oracle_server_url(tiny_cwm_dir):
    """``neuraldbg model-server --model TINY --oracle --port 0`` started as a
    user would (a subprocess), serving the oracle-forced tiny CWM behind the
    OpenAI-compatible API; yields its URL (read from the server's own
    "serving ... on URL" log line, so no port is guessed). For processes a
    test starts (language server, DAP, CLI), which cannot be handed an
    in-process backend: point them at it with ``backend: remote``."""
    import re
    import subprocess
    import sys
    import threading
    import time

    cmd = [sys.executable, "-m", "neuraldbg", "model-server", "--model", str(tiny_cwm_dir), "--oracle",
           "--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:
        # Read stderr to the end (a full pipe would block the server); the
        # first "serving ... on URL" line gives the URL.
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            m = re.search(r"serving .* on (http://\S+)", line)
            if m and not url:
                url.append(m.group(1))
                found.set()
        found.set()

    reader = threading.Thread(target=drain, name="oracle-model-server-stderr", daemon=True)
    reader.start()
    found.wait(timeout=300)
    if not url:
        proc.kill()
        proc.wait(10)
        pytest.fail("model-server --oracle did not start:\n" + "".join(lines[-20:]))
    # The socket listens before the model loads, and the log line comes after
    # the load: wait for the API itself to answer before handing it out.
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url[0] + "/v1/models", timeout=5).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("model-server --oracle does not answer /v1/models:\n" + "".join(lines[-20:]))
            time.sleep(0.2)
    yield url[0]
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    reader.join(10)


@pytest.fixture
def dap() -> Iterator[DapClient]:
    """A debug adapter in its own process (python -m neuraldbg.dap), shut down after the test;
    every request must have had exactly one response."""
    client = DapClient.spawn()
    yield client
    client.shutdown()
    client.assert_one_response_each()
