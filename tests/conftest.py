"""Shared pytest fixtures. Keep each fixture self-contained."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The tiny CWM-layout tokenizer (byte-level BPE in 0..127999, CWM's 256
    specials at 128000..128255), built once per session, saved with
    ``save_pretrained`` and loaded back with ``AutoTokenizer`` (its folder is
    ``tiny_tokenizer.name_or_path``)."""
    from neuraldbg.backends.tiny_tokenizer import build_tiny_tokenizer, load_tokenizer

    out_dir = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer(out_dir)
    return load_tokenizer(out_dir)


@pytest.fixture(scope="session")
def tiny_cwm_dir(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random CWM checkpoint (CwmForCausalLM, vocab 128,256, sliding
    window 24, two bf16 safetensors shards) with the tiny tokenizer, built
    once per session; load it like a real checkpoint folder."""
    from neuraldbg.backends.tiny_model import build_tiny_cwm

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
