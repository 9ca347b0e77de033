"""benchmarks/gpu_decode.py on the CPU (--smoke): the GPU benchmark's own code
(random model built on the meta device, bitsandbytes 8-bit / NF4 layers,
LocalBackend decode, bandwidth bound, FIGURE lines) runs end to end here, so
a session that gets a GPU spends its minutes measuring, not debugging."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_decode.py"


@pytest.fixture(scope="module")
def gpu_decode():
    spec = importlib.util.spec_from_file_location("bench_gpu_decode", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu_decode"] = module
    spec.loader.exec_module(module)
    return module


def test_smoke_run_prints_every_figure(gpu_decode, capsys) -> None:
    assert gpu_decode.main(["--smoke", "--tokens", "4", "--prompt-tokens", "16"]) == 0
    out = capsys.readouterr().out
    figures = dict(re.findall(r"^FIGURE (\S+) \| ([0-9.]+) \|", out, flags=re.M))
    assert float(figures["gpu_decode.copy_bandwidth"]) > 0
    for quant in ("bf16", "8bit", "4bit"):
        for name in ("weights", "prefill", "decode", "decode_bare", "bound", "ratio"):
            assert float(figures[f"gpu_decode.{quant}.{name}"]) > 0, (quant, name)


@pytest.mark.parametrize(("quant", "module_type", "dtype"), [("8bit", "Linear8bitLt", "torch.int8"),
                                                            ("4bit", "Linear4bit", "torch.uint8")])
def test_decoder_linears_are_really_quantized(gpu_decode, quant: str, module_type: str, dtype: str) -> None:
    import torch

    from neuraldbg.testing.tiny_model import tiny_cwm_config

    model = gpu_decode.build_random_model(tiny_cwm_config(), quant, "cpu")
    linears = {name: m for name, m in model.named_modules() if ".layers." in f".{name}." and hasattr(m, "weight")
               and type(m).__name__.startswith("Linear")}
    assert linears and {type(m).__name__ for m in linears.values()} == {module_type}
    assert {str(m.weight.dtype) for m in linears.values()} == {dtype}
    assert model.lm_head.weight.dtype == torch.bfloat16  # bitsandbytes leaves the head in bf16
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([[128000, 5, 6]])).logits
    assert logits.shape == (1, 3, 128256) and torch.isfinite(logits).all()


def test_without_cuda_the_real_run_is_a_one_line_error(gpu_decode, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        gpu_decode.main(["--quant", "bf16"])
    assert exc.value.code == 2
    assert "no CUDA device" in capsys.readouterr().err
