"""Prefix-cache hit rate and decode throughput over a debug session.

Runs the standard 50-move debug session of benchmarks/_oracle_session.py
(scan(40): step in / over / out / back, run to line, an edit, a resample)
through ModelEngine + LocalBackend and prints, from the backend's stats:
requests, prompt tokens sent, tokens served from the KV cache (reused /
prompt = the hit rate), tokens prefilled, tokens generated, and generated
tokens per second of session wall time.

On a GPU host, give the real model (a profile name or checkpoint folder):

    python benchmarks/gpu_prefix_cache.py --model cwm [--speculative-tokens 8]

The frames are then CWM's own; a request that did not return one complete
frame is counted and printed (it is the model's answer, not an error here).

Without --model it runs the oracle-forced tiny CWM (a random CwmForCausalLM,
Llama-3 BPE, its logits masked to the real run's next token) on whatever
device there is: every frame is the real run's, written by the decode loop,
and any request that did not return one complete frame fails the run. On a
CPU that measures the machinery (the figures are named
``prefix_cache_oracle_tiny``), not CWM.
"""
# bench: cpu-ok
# bench: timeout 900

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _oracle_session import MOVES, PROGRAM, CheckedBackend, check, oracle_folder, run_session  # noqa: E402

from neuraldbg.backends.base import Sampling  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="profile name or checkpoint folder (default: the oracle-forced tiny CWM)")
    parser.add_argument("--speculative-tokens", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU (1: see bench_kv_reuse.py)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    oracle = args.model is None
    t_load = time.perf_counter()
    if oracle:
        from neuraldbg.backends.oracle import load_oracle_backend

        backend, _ = load_oracle_backend(str(oracle_folder("tiny")), speculative_tokens=args.speculative_tokens)
    else:
        from neuraldbg.backends.local import LocalBackend

        backend = LocalBackend.load(args.model, speculative_tokens=args.speculative_tokens)
    load_s = time.perf_counter() - t_load
    try:
        result = run_session(CheckedBackend(backend), PROGRAM, MOVES, Sampling(temperature=0.0))
    finally:
        backend.close()
    errors = check(result, "session")
    if errors and oracle:
        print("\n".join(errors), file=sys.stderr)
        return 1
    s = result.stats
    model = "the oracle-forced tiny CWM" if oracle else args.model
    print(f"{len(MOVES)}-move debug session of {PROGRAM.call} on {model}; model loaded in {load_s:.1f} s")
    print(f"requests {s.requests}, complete frames {result.log.complete_frames}; prompt tokens {s.prompt_tokens:,}, "
          f"reused {s.reused_tokens:,}, prefilled {s.prefilled_tokens:,}, generated {s.generated_tokens:,}; "
          f"wall {result.wall_s:.2f} s")
    for problem in errors:
        print(f"  {problem}")
    name = "prefix_cache_oracle_tiny" if oracle else "prefix_cache"
    hit = s.reused_tokens / s.prompt_tokens if s.prompt_tokens else 0.0
    print(f"FIGURE {name}.hit_rate | {hit:.3f} | reused / prompt tokens")
    print(f"FIGURE {name}.frames | {result.log.complete_frames} | complete frames the model wrote "
          f"({s.requests} requests)")
    print(f"FIGURE {name}.prefilled_tokens | {s.prefilled_tokens} | tokens over {s.requests} requests")
    print(f"FIGURE {name}.decode_throughput | {s.generated_tokens / result.wall_s:.1f} | "
          "generated tokens/s (session wall)")
    print(f"FIGURE {name}.session_wall | {result.wall_s:.2f} | s for {len(MOVES)} moves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
