"""``neuraldbg doctor`` run as the command a user types: a real subprocess,
planning for ``--gpus`` specs so no GPU is needed, checked on what it prints
and its exit status (0: every plan fits, 1: one does not, 2: bad input)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from neuraldbg.tracer import isolation


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neuraldbg", "doctor", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})})


def test_two_80gb_gpus_get_the_multi_gpu_bf16_profile_split_in_two() -> None:
    done = doctor("--profile", "cwm-bf16-multi-gpu", "--gpus", "2x80")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "profile      cwm-bf16-multi-gpu (local)\n" in out
    assert "GPUs         80 GiB GPU (80.0 GiB), 80 GiB GPU (80.0 GiB)\n" in out
    # the shard plan: one line per GPU, the 64 layers split between them, embeddings first, lm_head last
    shards = re.findall(r"^(cuda:\d)\s+80\.0G\s+74\.0G\s+[\d.]+G\s+[\d.]+G\s+[\d.]+G\s+131,072  layers (\d+)-(\d+) \+ (.+)$",
                        out, re.MULTILINE)
    assert [(dev, int(lo), int(hi)) for dev, lo, hi, _ in shards] == [("cuda:0", 0, 31), ("cuda:1", 32, 63)], out
    assert shards[0][3] == "embed_tokens" and shards[1][3].endswith("lm_head")
    assert "\nfits         yes: weights fit, KV room for 5 contexts of 131,072 tokens" in out
    assert "\nrecommended  bf16 (profile cwm-bf16-multi-gpu): 60.7 GiB of weights fit on 2 GPU(s)" in out
    # planned for another host: this one's GPUs and sandbox are not reported
    assert "GPUs on this host" not in out and "Exec tracer sandbox" not in out
    assert done.stderr == ""


def test_a_profile_that_does_not_fit_exits_1_and_names_the_one_that_does() -> None:
    done = doctor("--profile", "cwm-bf16-1x80", "--gpus", "1x80")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^cuda:0 .* layers 0-63 \+ embed_tokens, norm, lm_head$", done.stdout, re.MULTILINE)
    assert "\nfits         NO: KV room for 5 contexts of only 19,384 tokens (context_tokens 65,536)\n" in done.stdout
    assert "\nrecommended  8bit (profile cwm-8bit-1x80): 31.8 GiB of weights fit on 1 GPU(s) (80 GiB)" in done.stdout


def test_no_gpu_recommends_the_remote_profile() -> None:
    done = doctor("--profile", "cwm-4bit-nf4", "--gpus", "none")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "\nfits         NO: no GPU on this host\n" in done.stdout
    assert "\nrecommended  remote (profile vllm-remote): no GPU on this host" in done.stdout


def test_json_has_the_plan_the_text_shows() -> None:
    done = doctor("--profile", "cwm-8bit-1x80", "--gpus", "1x80", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    (p,) = json.loads(done.stdout)
    assert (p["profile"], p["fits"], p["recommended_profile"]) == ("cwm-8bit-1x80", True, "cwm-8bit-1x80")
    assert [d["device"] for d in p["devices"]] == ["cuda:0"] and p["devices"][0]["layers"] == list(range(64))


def test_this_hosts_run_reports_its_gpus_and_the_sandbox_level() -> None:
    """Without --gpus the doctor plans for this host: its GPUs and the exec
    tracer's sandbox come first. A remote profile's plan needs no GPU, so the
    exit status is 0 on any host; the cap makes the sandbox level the same
    everywhere."""
    done = doctor("--profile", "vllm-remote", env={isolation.ENV_CAP: "audit"})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("GPUs on this host: ")
    assert lines[1] == "Exec tracer sandbox: audit: audit hooks only"
    assert lines[2] == f"  does not stop: {isolation.WEAKNESSES['audit']}"
    assert "  not used: capped by NEURALDBG_ISOLATION=audit" in lines
    assert "profile      vllm-remote (remote)" in lines
    assert "server       the model runs on the server at http://localhost:8000; this host needs no GPU" in lines


@pytest.mark.parametrize(("spec", "message"), [
    ("2y80", "bad --gpus entry '2y80': expected COUNTxGIB, e.g. 2x80 or 4x40,1x80"),
    ("65x80", "bad --gpus entry '65x80': the count must be 1..64"),
    ("", "empty --gpus: expected COUNTxGIB, e.g. 2x80 or 4x40,1x80 (or 'none')"),
])
def test_a_bad_gpu_spec_is_one_line_on_stderr_and_exit_2(spec: str, message: str) -> None:
    done = doctor("--profile", "cwm-4bit-nf4", "--gpus", spec)
    assert done.returncode == 2
    assert done.stderr == f"neuraldbg: error: {message}\n"
    assert done.stdout == ""


def test_an_unknown_profile_is_one_line_on_stderr_and_exit_2() -> None:
    done = doctor("--profile", "no-such-profile", "--gpus", "1x80")
    assert done.returncode == 2
    assert done.stderr.startswith("neuraldbg: error: unknown model profile 'no-such-profile'; available: ")
    assert done.stderr.count("\n") == 1 and "cwm-4bit-nf4" in done.stderr and done.stdout == ""


def test_help_lists_the_options() -> None:
    done = doctor("--help")
    assert done.returncode == 0
    for option in ("--profile PROFILE", "--gpus GPUS", "--json"):
        assert option in done.stdout
