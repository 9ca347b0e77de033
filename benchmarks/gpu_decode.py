"""Decode speed of a full-size CWM on one GPU, against the memory-bandwidth bound.

Builds the released CWM shape (``CwmConfig()``: 32.58B parameters) with random
weights directly on the GPU, so no download is needed:

- bf16: every parameter is created on the GPU in bf16 (60.7 GiB: an 80 GB
  GPU);
- 8bit / 4bit: the model is laid out on the meta device and each decoder
  Linear is created as a random bf16 weight and quantized at once by
  bitsandbytes (``Int8Params`` / ``Params4bit`` NF4 with double
  quantization, what ``from_pretrained(quantization_config=...)`` produces),
  so the bf16 model never exists in full: 31.8 GiB / 17.8 GiB. Embeddings,
  norms and lm_head stay bf16 as bitsandbytes leaves them.

Then it measures:

1. device copy bandwidth: a 2 GiB device-to-device copy (read + write bytes
   per second), the practical ceiling of a memory-bound decode;
2. prefill of a --prompt-token prompt and decode of --tokens tokens at batch
   1 through ``LocalBackend.generate`` (the backend's real loop: KV cache,
   sampling, stop checks), and the same decode as a bare forward loop;
3. the bound = bandwidth / bytes of resident weights (each decoded token
   reads every weight once) and the ratio measured / bound.

Usage (needs a CUDA GPU; random weights, so the ids are meaningless):

    python benchmarks/gpu_decode.py --quant bf16|8bit|4bit [--tokens 128] [--prompt-tokens 512] [--layers 64]

``--layers`` shrinks the model (same layer shape) for a GPU too small for
all 64; the bound and the ratio stay meaningful.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GIB = 1024**3


def fail(message: str) -> None:
    print(f"gpu_decode: {message}", file=sys.stderr)
    raise SystemExit(2)


def copy_bandwidth(device: str, size_bytes: int = 2 * GIB, repeats: int = 20) -> float:
    """Bytes per second moved by a device-to-device copy (read + write)."""
    import torch

    src = torch.empty(size_bytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        dst.copy_(src)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000
    del src, dst
    torch.cuda.empty_cache()
    return 2 * size_bytes * repeats / seconds


def quantized_linear(weight: Any, quant: str, device: str) -> Any:
    """A bitsandbytes Linear holding ``weight`` (bf16, [out, in]) quantized."""
    import bitsandbytes as bnb
    import torch

    out_features, in_features = weight.shape
    with torch.device("meta"):
        if quant == "8bit":
            module = bnb.nn.Linear8bitLt(in_features, out_features, bias=False, has_fp16_weights=False, threshold=6.0)
        else:
            module = bnb.nn.Linear4bit(in_features, out_features, bias=False, compute_dtype=torch.bfloat16,
                                       compress_statistics=True, quant_type="nf4")
    if quant == "8bit":
        # Int8Params quantizes when moved from the CPU to the device
        module.weight = bnb.nn.Int8Params(weight.cpu(), requires_grad=False, has_fp16_weights=False).to(device)
    else:
        # Params4bit quantizes (NF4, blocks of 64, double quantization) on its first move
        module.weight = bnb.nn.Params4bit(weight, requires_grad=False, compress_statistics=True, quant_type="nf4",
                                          module=module).to(device)
    return module


def build_random_model(config: Any, quant: str, device: str, seed: int = 0) -> Any:
    """``CwmForCausalLM`` with random weights materialised straight on ``device``."""
    import torch
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from transformers import AutoModelForCausalLM

    config._attn_implementation = "sdpa"
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    gen = torch.Generator(device=device).manual_seed(seed)
    if quant != "bf16":
        for name, module in list(model.named_modules()):
            if type(module) is torch.nn.Linear and ".layers." in f".{name}.":
                w = torch.empty(module.out_features, module.in_features, dtype=torch.bfloat16, device=device)
                w.normal_(0.0, 0.02, generator=gen)
                model.set_submodule(name, quantized_linear(w, quant, device))
                del w
    for name, param in list(model.named_parameters()):
        if param.device.type != "meta":
            continue
        if name.endswith("norm.weight"):
            value = torch.ones(param.shape, dtype=torch.bfloat16, device=device)
        else:
            value = torch.empty(param.shape, dtype=torch.bfloat16, device=device).normal_(0.0, 0.02, generator=gen)
        set_module_tensor_to_device(model, name, device, value=value, dtype=torch.bfloat16)
    for name, buf in list(model.named_buffers()):
        set_module_tensor_to_device(model, name, device, value=buf.to(device))
    model.requires_grad_(False)
    model.eval()
    return model


def bare_decode(model: Any, prompt: list[int], tokens: int) -> float:
    """Seconds per token of a forward loop with a DynamicCache and argmax."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    device = model.get_input_embeddings().weight.device
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt], device=device), past_key_values=cache, use_cache=True, logits_to_keep=1)
        nxt = out.logits[0, -1].argmax().view(1, 1)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(tokens):
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True, logits_to_keep=1)
            nxt = out.logits[0, -1].argmax().view(1, 1)
            int(nxt.item())  # the backend needs each id on the host too
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / tokens


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quant", choices=["bf16", "8bit", "4bit"], default="bf16")
    ap.add_argument("--tokens", type=int, default=128, help="tokens to decode (batch 1)")
    ap.add_argument("--prompt-tokens", type=int, default=512, help="prompt length to prefill first")
    ap.add_argument("--layers", type=int, default=None, help="fewer decoder layers (default: the released 64)")
    args = ap.parse_args(argv)
    if args.tokens < 2 or args.prompt_tokens < 1:
        fail("--tokens must be >= 2 and --prompt-tokens >= 1")

    try:
        import torch
    except ImportError:
        fail("torch is not installed (pip install -e .[local])")
    if not torch.cuda.is_available():
        fail("no CUDA device: this benchmark measures GPU decode (run it on a GPU host)")
    if args.quant != "bf16":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            fail("--quant 8bit/4bit needs bitsandbytes")

    from transformers import CwmConfig

    from neuraldbg.backends.base import Sampling
    from neuraldbg.backends.local import LocalBackend
    from neuraldbg.backends.tiny_tokenizer import build_tiny_tokenizer

    device = "cuda:0"
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name} ({props.total_memory / GIB:.1f} GiB), torch {torch.__version__}")

    bandwidth = copy_bandwidth(device)
    print(f"copy bandwidth: {bandwidth / 1e9:,.0f} GB/s (2 GiB device-to-device copy, read + write)")

    config = CwmConfig() if args.layers is None else CwmConfig(num_hidden_layers=args.layers)
    base = torch.cuda.memory_allocated(0)
    t0 = time.perf_counter()
    try:
        model = build_random_model(config, args.quant, device)
    except torch.cuda.OutOfMemoryError:
        fail(f"out of GPU memory building the {args.quant} model: try --quant 4bit or --layers 32")
    torch.cuda.synchronize()
    weight_bytes = torch.cuda.memory_allocated(0) - base
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: CWM shape, {config.num_hidden_layers} layers, random weights, {args.quant}: "
        f"{weight_bytes / GIB:.2f} GiB resident ({weight_bytes / 1e9:.1f} GB), built in {time.perf_counter() - t0:.0f} s"
        + ("" if args.quant != "bf16" else f", {params / 1e9:.2f}B parameters")
    )

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tiny_tokenizer(Path(tmp))  # CWM's id layout; ids are random anyway
    backend = LocalBackend(model, tokenizer, name=f"cwm-random-{args.quant}", context_tokens=args.prompt_tokens + args.tokens + 8)
    gen = torch.Generator().manual_seed(0)
    prompt = [128000, *torch.randint(0, 128000, (args.prompt_tokens - 1,), generator=gen).tolist()]

    # warm-up (kernels, allocator), then a cold measured run on another prompt
    list(backend.generate(prompt[:64], stop_ids=[], sampling=Sampling(max_tokens=4)))
    backend.contexts.clear()
    times: list[float] = []
    start = time.perf_counter()
    for _ in backend.generate(prompt, stop_ids=[], sampling=Sampling(temperature=0.0, max_tokens=args.tokens)):
        times.append(time.perf_counter())
    first = times[0] - start
    per_token = (times[-1] - times[0]) / (len(times) - 1)
    print(f"prefill: {args.prompt_tokens} tokens + first token in {first:.3f} s ({args.prompt_tokens / first:,.0f} tok/s)")
    print(f"decode, LocalBackend.generate, batch 1: {1 / per_token:.1f} tok/s ({per_token * 1000:.1f} ms/token over {len(times) - 1} tokens)")
    bare = bare_decode(model, prompt, args.tokens)
    print(f"decode, bare forward loop:               {1 / bare:.1f} tok/s ({bare * 1000:.1f} ms/token)")

    bound = bandwidth / weight_bytes
    print(f"bound: bandwidth / weight bytes = {bound:.1f} tok/s")
    print(f"ratio: backend {1 / per_token / bound:.2f} of the bound; bare loop {1 / bare / bound:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
