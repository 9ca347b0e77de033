"""``neuraldbg doctor`` planning: GPU specs, the real CWM shape on the meta
device, bytes per quantization, device maps and KV budgets."""

from __future__ import annotations

import pytest

from neuraldbg.doctor import (
    GIB,
    DoctorError,
    doctor_report,
    format_plan,
    parse_gpus,
    parse_nvidia_smi,
    plan,
    quantized_weight_bytes,
)
from neuraldbg.profiles import load_profile

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


def test_8bit_on_one_80gb_gpu_fits_and_bf16_is_recommended_where_it_fits() -> None:
    p = plan(load_profile("cwm-8bit-1x80"), parse_gpus("1x80"))
    assert p.weights is not None
    # int8 Linear weights + per-row scales, embeddings and lm_head in bf16
    assert 34.0e9 < p.weights.total_bytes < 34.5e9
    assert p.weights.kept_params == pytest.approx(2 * 128256 * 6144, rel=1e-3)
    assert p.fits and p.kv_tokens > 65536
    # 60.7 GiB of bf16 weights also fit on one 80 GB GPU with ample KV room
    assert p.recommendation == "bf16" and p.recommended_profile == "cwm-bf16-1x80"


def test_nf4_on_a_24gb_gpu_fits_with_a_kv_budget() -> None:
    p = plan(load_profile("cwm-4bit-nf4"), parse_gpus("1x24"))
    assert p.weights is not None
    assert 18.5e9 < p.weights.total_bytes < 19.5e9
    assert p.fits
    (gpu,) = [d for d in p.devices if d.device == "cuda:0"]
    assert gpu.layers == tuple(range(64))
    # ~4.7 GiB of KV room: 8192 tokens on all 64 layers, then 16 global layers
    assert 45_000 < p.kv_tokens < 60_000
    assert p.recommendation == "4bit-nf4"
    assert f"{p.kv_tokens:,}" in format_plan(p)


def test_a_plan_that_does_not_fit_says_so() -> None:
    p = plan(load_profile("cwm-bf16-multi-gpu"), parse_gpus("1x24"))
    assert not p.weights_fit and not p.fits and p.offloaded
    assert any("DOES NOT FIT" in n for n in p.notes)
    assert any("at least 2 GPUs" in n for n in p.notes)
    text = format_plan(p)
    assert "fits         NO" in text and "unplaced" in text
    assert p.recommendation == "4bit-nf4"  # what would work on this host
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
    from neuraldbg.backends.tiny_model import tiny_cwm_config

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
    from neuraldbg.doctor import detect_gpus

    gpus = detect_gpus()
    assert [(g.index, g.name, g.total_gib) for g in gpus] == [(0, "NVIDIA A100-SXM4-40GB", 40.0), (1, "NVIDIA A100-SXM4-40GB", 40.0)]
    assert gpus[1].free_gib == 0.5
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert detect_gpus() == []
