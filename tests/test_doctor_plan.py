"""``neuraldbg doctor`` planning: GPU specs, the real CWM shape on the meta
device, bytes per quantization, device maps and KV budgets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import pytest

from neuraldbg.hosting.doctor import doctor_report, plan
from neuraldbg.hosting.gpus import GIB, DoctorError, parse_gpus, parse_nvidia_smi
from neuraldbg.hosting.report import format_plan
from neuraldbg.hosting.sizing import quantized_weight_bytes
from neuraldbg.backends.profiles import load_profile

CWM_PARAMS = 32.6e9


def test_parse_gpus_accepts_counts_sizes_and_mixtures() -> None:
    two = parse_gpus("2x80")
    assert [(g.index, g.total_gib) for g in two] == [(0, 80.0), (1, 80.0)]
    mixed = parse_gpus("4x40, 1x80GB")
    assert [g.total_gib for g in mixed] == [40.0, 40.0, 40.0, 40.0, 80.0]
    assert [g.index for g in mixed] == [0, 1, 2, 3, 4]
    assert parse_gpus("1X23.5")[0].total_gib == 23.5
    assert parse_gpus("none") == []


@pytest.mark.parametrize("spec", ["", "2y80", "x80", "0x80", "2x0", "eighty", "2x80,", "65x80"])
def test_parse_gpus_rejects_bad_specs_with_a_clear_message(spec: str) -> None:
    with pytest.raises(DoctorError, match=r"--gpus|COUNTxGIB"):
        parse_gpus(spec)


def test_nvidia_smi_output_is_parsed() -> None:
    out = "0, NVIDIA H100 80GB HBM3, 81559, 80000\n1, NVIDIA H100 80GB HBM3, 81559, 1024\nbad line\n"
    gpus = parse_nvidia_smi(out)
    assert [g.name for g in gpus] == ["NVIDIA H100 80GB HBM3"] * 2
    assert gpus[0].total_gib == pytest.approx(79.65, abs=0.01) and gpus[1].free_gib == 1.0


def test_quantized_bytes_per_weight() -> None:
    n, rows = 6144 * 21504, 21504
    assert quantized_weight_bytes(n, rows, "8bit", True) == n + 4 * rows
    nf4 = quantized_weight_bytes(n, rows, "4bit-nf4", True) / n
    assert 0.515 < nf4 < 0.517  # 4 bits + an 8-bit absmax per 64 + nested fp32 scales
    assert quantized_weight_bytes(n, rows, "4bit-nf4", False) / n == pytest.approx(0.5625)


def test_bf16_on_two_80gb_gpus_fits_with_the_layers_split() -> None:
    p = plan(load_profile("cwm-bf16-multi-gpu"), parse_gpus("2x80"))
    assert abs(p.param_count - CWM_PARAMS) / CWM_PARAMS < 0.01
    assert p.weights is not None and p.weights.total_bytes == pytest.approx(2 * p.param_count, rel=1e-6)
    assert p.weights_fit and p.fits and not p.offloaded
    gpus = [d for d in p.devices if d.device.startswith("cuda:")]
    assert len(gpus) == 2
    assert sorted(gpus[0].layers + gpus[1].layers) == list(range(64))
    assert all(20 < len(d.layers) < 44 for d in gpus)  # balanced, not all on the first GPU
    assert sum(d.weights_gib for d in gpus) == pytest.approx(p.weights.total_gib, rel=1e-3)
    assert p.kv_bytes_per_token_per_layer == 4096
    assert p.kv_tokens == 131072  # capped at the model's positions
    assert p.recommendation == "bf16" and p.recommended_profile == "cwm-bf16-multi-gpu"
    text = format_plan(p)
    assert "32.58B" in text and "fits         yes" in text and "cuda:1" in text


def test_8bit_on_one_80gb_gpu_fits_and_is_recommended_over_bf16_that_does_not() -> None:
    p = plan(load_profile("cwm-8bit-1x80"), parse_gpus("1x80"))
    assert p.weights is not None
    # int8 Linear weights + per-row scales, embeddings and lm_head in bf16
    assert 34.0e9 < p.weights.total_bytes < 34.5e9
    assert p.weights.kept_params == pytest.approx(2 * 128256 * 6144, rel=1e-3)
    assert p.fits and p.kv_tokens > 65536
    # bf16 leaves 80 - 60.7 - 1.5 = 17.8 GiB; its profile's 5 contexts of
    # 65,536 tokens need 5 x (16 x 65,536 + 48 x 12,287) x 4 KiB = 31.3 GiB
    bf16 = plan(load_profile("cwm-bf16-1x80"), parse_gpus("1x80"))
    assert not bf16.fits and 15_000 < bf16.kv_tokens < 25_000
    assert p.recommendation == bf16.recommendation == "8bit" and p.recommended_profile == "cwm-8bit-1x80"


def test_nf4_on_a_24gb_gpu_holds_short_contexts_only() -> None:
    p = plan(load_profile("cwm-4bit-nf4"), parse_gpus("1x24"))
    assert p.weights is not None
    assert 18.5e9 < p.weights.total_bytes < 19.5e9
    (gpu,) = [d for d in p.devices if d.device == "cuda:0"]
    assert gpu.layers == tuple(range(64))
    # ~4.7 GiB of KV room for 3 contexts (cached_contexts 2 + 1): below 10,239
    # tokens every layer holds them all, 3 x 64 x 4 KiB = 768 KiB per token,
    # plus ~33 KiB per token of attention transient: ~6,090 tokens, not 16,384
    assert 5_500 < p.kv_tokens < 6_500 and not p.fits and p.weights_fit
    assert p.recommendation == "remote"
    assert "3 contexts of 6," in p.reason
    assert f"{p.kv_tokens:,}" in format_plan(p)
    roomy = plan(load_profile("cwm-4bit-nf4"), parse_gpus("1x48"))
    assert roomy.fits and roomy.recommendation == "4bit-nf4"


def test_a_plan_that_does_not_fit_says_so() -> None:
    p = plan(load_profile("cwm-bf16-multi-gpu"), parse_gpus("1x24"))
    assert not p.weights_fit and not p.fits and p.offloaded
    assert any("DOES NOT FIT" in n for n in p.notes)
    assert any("at least 2 GPUs" in n for n in p.notes)
    text = format_plan(p)
    assert "fits         NO" in text and "unplaced" in text
    assert p.recommendation == "remote"  # not even NF4's KV fits on 24 GB (above)
    assert plan(load_profile("cwm-bf16-multi-gpu"), parse_gpus("1x32")).recommendation == "4bit-nf4"
    tiny = plan(load_profile("cwm-4bit-nf4"), parse_gpus("1x16"))
    assert not tiny.fits and tiny.recommendation == "remote"


def test_no_gpu_recommends_a_remote_server() -> None:
    p = plan(load_profile("cwm-4bit-nf4"), [])
    assert not p.fits and p.recommendation == "remote" and p.recommended_profile == "vllm-remote"
    assert any("no GPU" in n for n in p.notes)


def test_remote_profiles_need_no_gpu() -> None:
    p = plan(load_profile("vllm-remote"), [])
    assert p.kind == "remote" and p.fits and p.recommendation == "remote"
    assert "http://localhost:8000" in format_plan(p)


def test_a_local_checkpoint_config_is_used(tiny_cwm_dir, tmp_path) -> None:
    profile_file = tmp_path / "tiny.toml"
    profile_file.write_text(f'checkpoint = "{tiny_cwm_dir}"\nreserve_gib = 0.5\n')
    p = plan(load_profile(str(profile_file)), parse_gpus("1x4"))
    from neuraldbg.testing.tiny_model import tiny_cwm_config

    cfg = tiny_cwm_config()
    expected = 2 * cfg.vocab_size * cfg.hidden_size + cfg.num_hidden_layers * (
        cfg.hidden_size * cfg.num_attention_heads * cfg.head_dim * 2
        + cfg.hidden_size * cfg.num_key_value_heads * cfg.head_dim * 2
        + 3 * cfg.hidden_size * cfg.intermediate_size
        + 2 * cfg.hidden_size
    ) + cfg.hidden_size
    assert p.param_count == expected
    assert p.checkpoint_present and p.checkpoint == str(tiny_cwm_dir)
    assert p.shape is not None and p.shape.sliding_window == 24
    assert p.kv_bytes_per_token_per_layer == 2 * 2 * 16 * 2
    assert p.weights is not None and p.weights.total_bytes < 0.05 * GIB and p.fits


def test_doctor_report_plans_every_local_profile() -> None:
    text = doctor_report(None, "2x80")
    for name in ("cwm-bf16-multi-gpu", "cwm-8bit-1x80", "cwm-4bit-nf4", "cwm-bf16-1x80"):
        assert f"profile      {name} (local)" in text
    assert "vllm-remote" not in text.split("recommended")[0]
    with pytest.raises(DoctorError):
        doctor_report(None, "lots")


def test_detect_gpus_falls_back_to_nvidia_smi(tmp_path, monkeypatch) -> None:
    import torch

    assert not torch.cuda.is_available()  # this suite runs on CPU-only hosts
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '0, NVIDIA A100-SXM4-40GB, 40960, 40000'\necho '1, NVIDIA A100-SXM4-40GB, 40960, 512'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    from neuraldbg.hosting.gpus import detect_gpus

    gpus = detect_gpus()
    assert [(g.index, g.name, g.total_gib) for g in gpus] == [(0, "NVIDIA A100-SXM4-40GB", 40.0), (1, "NVIDIA A100-SXM4-40GB", 40.0)]
    assert gpus[1].free_gib == 0.5
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert detect_gpus() == []


def test_8bit_on_one_80gb_gpu_at_131k_with_4_contexts_does_not_fit() -> None:
    """Regression: the doctor said "fits" here.

    KV room: 80 - 31.83 GiB of weights - 1.5 GiB = 46.67 GiB. One context of
    131,072 tokens: 16 global layers x 131,072 x 4 KiB = 8 GiB, plus 48
    sliding layers x (10,239 kept + 2,048 of the last chunk's storage) x 4 KiB
    = 2.25 GiB: 10.25 GiB. The pool's 4 contexts and the one a request builds:
    5 x 10.25 = 51.25 GiB > 46.67 GiB, before the prefill chunk's attention
    peak (3 GiB of repeated K/V, 1 GiB of additive mask, 0.27 GiB of bool
    masks). The old estimate: one context with sliding layers at 8,192:
    8 + 1.5 = 9.5 GiB, which "fit".
    """
    profile = replace(load_profile("cwm-8bit-1x80"), context_tokens=131072, cached_contexts=4)
    p = plan(profile, parse_gpus("1x80"))
    assert p.weights_fit and not p.fits
    (gpu,) = [d for d in p.devices if d.device == "cuda:0"]
    assert gpu.free_for_kv_gib == pytest.approx(46.67, abs=0.01)
    assert gpu.kv_need_gib == pytest.approx(51.25 + 4.27, abs=0.01)
    # the longest context when all 5 are that long: 5 x (16 T x 4 KiB + 2.25 GiB) + ~34 KiB x T <= 46.67 GiB
    assert 103_000 < p.kv_tokens < 106_000
    text = format_plan(p)
    assert "fits         NO: KV room for 5 contexts of only" in text
    assert "cached_contexts = 3 would fit" in text
    assert plan(replace(profile, cached_contexts=3), parse_gpus("1x80")).fits  # 4 x 10.25 + 4.27 = 45.27 GiB


def test_bf16_on_four_24gb_gpus_does_not_fit_131k() -> None:
    """Regression: "fits" before. cuda:1 holds layers 15-32 (5 global, 13
    sliding) in 6.26 GiB of KV room: one context of 131,072 tokens is 5 x
    0.5 + 13 x 0.047 = 3.1 GiB there, five of them 15.5 GiB."""
    p = plan(load_profile("cwm-bf16-multi-gpu"), parse_gpus("4x24"))
    assert p.weights_fit and not p.fits and p.kv_tokens < 32768


def test_the_report_says_what_the_kv_budget_assumes() -> None:
    p = plan(load_profile("cwm-bf16-multi-gpu"), parse_gpus("2x80"))
    assert p.kv is not None
    assert (p.kv.sliding_kept_tokens, p.kv.sliding_storage_tokens) == (10239, 12287)
    assert (p.kv.contexts_at_once, p.kv.assumptions.cached_contexts) == (5, 4)
    assert (p.kv.assumptions.rollback_tokens, p.kv.assumptions.prefill_chunk) == (2048, 2048)
    assert p.kv.assumptions.attn_implementation == "sdpa"
    assert p.kv.transient_bytes >= 3 * GIB  # repeat_kv alone at 131,072
    text = format_plan(p)
    for words in ("8,192 - 1 + rollback 2,048 = 10,239", "5 contexts at once (cached_contexts 4",
                  "prefill chunk 2,048", "SDPA repeats K/V to 48 heads", "math fallback"):
        assert words in text
    as_json = json.loads(json.dumps(dataclasses.asdict(p), default=str))  # what `doctor --json` prints
    assert as_json["kv"]["sliding_kept_tokens"] == 10239 and as_json["kv"]["contexts_at_once"] == 5
    assert as_json["kv"]["assumptions"]["prefill_chunk"] == 2048 and "repeats K/V" in as_json["kv"]["summary"]


def test_every_context_of_the_pool_is_budgeted() -> None:
    profile = load_profile("cwm-8bit-1x80")  # one GPU holds every layer: its need is the whole model's
    few, many = (plan(replace(profile, cached_contexts=n), parse_gpus("1x80")) for n in (1, 8))
    for p, at_once in ((few, 2), (many, 9)):
        assert p.kv is not None and p.kv.contexts_at_once == at_once
        (gpu,) = [d for d in p.devices if d.device == "cuda:0"]
        assert gpu.kv_need_gib * GIB == pytest.approx(at_once * p.kv.context_bytes + p.kv.transient_bytes)
    assert few.fits and not many.fits and few.kv_tokens > many.kv_tokens
