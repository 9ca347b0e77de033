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

    python benchmarks/gpu_decode.py [--quant bf16 8bit 4bit] [--tokens 128] [--prompt-tokens 512] [--layers 64]
    python benchmarks/gpu_decode.py --smoke      # the same code on a tiny model on the CPU (the test suite runs it)

``--layers`` shrinks the model (same layer shape) for a GPU too small for
all 64; the bound and the ratio stay meaningful.
"""

# bench: timeout 1800
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


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(device: str, size_bytes: int = 2 * GIB, repeats: int = 20) -> float:
    """Bytes per second moved by a device-to-device copy (read + write)."""
    import torch

    src = torch.empty(size_bytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    seconds = time.perf_counter() - start
    del src, dst
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return 2 * size_bytes * repeats / seconds


def resident_bytes(model: Any) -> int:
    """Bytes of the model's parameters and buffers as stored (quantized ones included)."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


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


def bare_decode(model: Any, prompt: list[int], tokens: int, device: str) -> float:
    """Seconds per token of a forward loop with a DynamicCache and argmax."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    where = model.get_input_embeddings().weight.device
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt], device=where), past_key_values=cache, use_cache=True, logits_to_keep=1)
        nxt = out.logits[0, -1].argmax().view(1, 1)
        sync(device)
        start = time.perf_counter()
        for _ in range(tokens):
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True, logits_to_keep=1)
            nxt = out.logits[0, -1].argmax().view(1, 1)
            int(nxt.item())  # the backend needs each id on the host too
        sync(device)
    return (time.perf_counter() - start) / tokens


def measure(quant: str, config: Any, device: str, args: argparse.Namespace, bandwidth: float) -> None:
    """Build one random model, measure its decode, print its figures, free it."""
    import gc

    import torch

    from neuraldbg.backends.base import Sampling
    from neuraldbg.backends.local import LocalBackend
    from neuraldbg.testing.tiny_tokenizer import build_tiny_tokenizer

    cuda = device.startswith("cuda")
    base = torch.cuda.memory_allocated(0) if cuda else 0
    t0 = time.perf_counter()
    try:
        model = build_random_model(config, quant, device)
    except torch.cuda.OutOfMemoryError:
        fail(f"out of GPU memory building the {quant} model: try --quant 4bit or --layers 32")
    sync(device)
    # on a GPU, what the allocator holds (bitsandbytes' quantization state included)
    weight_bytes = torch.cuda.memory_allocated(0) - base if cuda else resident_bytes(model)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: CWM shape, {config.num_hidden_layers} layers, random weights, {quant}: "
        f"{weight_bytes / GIB:.2f} GiB resident ({weight_bytes / 1e9:.1f} GB), built in {time.perf_counter() - t0:.0f} s"
        + ("" if quant != "bf16" else f", {params / 1e9:.2f}B parameters")
    )

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tiny_tokenizer(Path(tmp))  # CWM's id layout; ids are random anyway
    backend = LocalBackend(model, tokenizer, name=f"cwm-random-{quant}", context_tokens=args.prompt_tokens + args.tokens + 8)
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
    bare = bare_decode(model, prompt, args.tokens, device)
    print(f"decode, bare forward loop:               {1 / bare:.1f} tok/s ({bare * 1000:.1f} ms/token)")

    bound = bandwidth / weight_bytes
    print(f"bound: bandwidth / weight bytes = {bound:.1f} tok/s")
    print(f"ratio: backend {1 / per_token / bound:.2f} of the bound; bare loop {1 / bare / bound:.2f}")
    print(f"FIGURE gpu_decode.{quant}.weights | {weight_bytes / GIB:.2f} | GiB resident ({config.num_hidden_layers} layers)")
    print(f"FIGURE gpu_decode.{quant}.prefill | {args.prompt_tokens / first:.0f} | tokens/s ({args.prompt_tokens}-token prompt)")
    print(f"FIGURE gpu_decode.{quant}.decode | {1 / per_token:.1f} | tokens/s (LocalBackend.generate, batch 1)")
    print(f"FIGURE gpu_decode.{quant}.decode_bare | {1 / bare:.1f} | tokens/s (bare forward loop)")
    print(f"FIGURE gpu_decode.{quant}.bound | {bound:.1f} | tokens/s (copy bandwidth / weight bytes)")
    print(f"FIGURE gpu_decode.{quant}.ratio | {1 / per_token / bound:.2f} | of the bandwidth bound")
    backend.contexts.clear()
    del backend, model
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quant", nargs="+", choices=["bf16", "8bit", "4bit"], default=["bf16", "8bit", "4bit"])
    ap.add_argument("--tokens", type=int, default=128, help="tokens to decode (batch 1)")
    ap.add_argument("--prompt-tokens", type=int, default=512, help="prompt length to prefill first")
    ap.add_argument("--layers", type=int, default=None, help="fewer decoder layers (default: the released 64)")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny CWM-shaped model on the CPU: checks this script end to end, measures nothing useful")
    args = ap.parse_args(argv)
    if args.tokens < 2 or args.prompt_tokens < 1:
        fail("--tokens must be >= 2 and --prompt-tokens >= 1")

    try:
        import torch
    except ImportError:
        fail("torch is not installed (pip install -e .[local])")
    if not args.smoke and not torch.cuda.is_available():
        fail("no CUDA device: this benchmark measures GPU decode (run it on a GPU host)")
    if any(q != "bf16" for q in args.quant):
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            fail("--quant 8bit/4bit needs bitsandbytes")

    if args.smoke:
        from neuraldbg.testing.tiny_model import tiny_cwm_config

        device = "cpu"
        config = tiny_cwm_config()
        config.num_hidden_layers = args.layers or config.num_hidden_layers
        config.layer_types = config.layer_types[: config.num_hidden_layers]
        print(f"device: cpu (smoke run), torch {torch.__version__}")
        bandwidth = copy_bandwidth(device, size_bytes=64 * 1024**2, repeats=3)
    else:
        from transformers import CwmConfig

        device = "cuda:0"
        props = torch.cuda.get_device_properties(0)
        print(f"device: {props.name} ({props.total_memory / GIB:.1f} GiB), torch {torch.__version__}")
        bandwidth = copy_bandwidth(device)
        config = CwmConfig() if args.layers is None else CwmConfig(num_hidden_layers=args.layers)
    print(f"copy bandwidth: {bandwidth / 1e9:,.0f} GB/s (device-to-device copy, read + write)")
    print(f"FIGURE gpu_decode.copy_bandwidth | {bandwidth / 1e9:.0f} | GB/s (read + write)")
    for quant in args.quant:
        measure(quant, config, device, args, bandwidth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
