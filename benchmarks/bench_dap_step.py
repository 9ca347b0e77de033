"""Debug-adapter step latency, request to ``stopped`` event, as an editor sees it.

(a) A step whose frame is already predicted: stop at a breakpoint, then
    repeat stepBack + stepIn; the forward step is served from the
    simulation's memory of undone frames (no engine call). Run over stdio
    against ``python -m neuraldbg.dap`` on the replay backend (the model
    path: codec, parser, line mapper), so this is the adapter's own cost.
(b) A step that needs one new frame from the model: the oracle-forced tiny
    CWM (neuraldbg.backends.oracle: a random CwmForCausalLM with the Llama-3
    BPE in the real LocalBackend decode loop, its logits masked to the real
    run's next token), the adapter served over TCP in this process. Every
    stepIn is one model request that must return one complete, unflagged
    frame (checked: the script exits non-zero otherwise); the frames are
    the real run's. The figure is CPU decode of a tiny model plus the
    oracle's masking, not CWM's latency: it measures what the adapter, the
    engine and the backend add around one frame's decode.

    python benchmarks/bench_dap_step.py [--steps 200] [--model-steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the DAP client the tests use
sys.path.insert(0, str(ROOT / "benchmarks"))

from _oracle_session import CheckedBackend, check_log, oracle_folder  # noqa: E402
from dap_client.pyclient import DapClient  # noqa: E402

from neuraldbg.config import Settings  # noqa: E402

PROGRAM = ROOT / "examples" / "strawberry.py"
CALL = 'count_letter("strawberry", "r")'


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def timed_step(dap: DapClient, command: str) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    dap.req(command, {"threadId": 1})
    body = dap.wait_stop()
    return time.perf_counter() - t0, body


def predicted_steps(steps: int) -> tuple[list[float], list[float]]:
    dap = DapClient.spawn()
    try:
        dap.start(PROGRAM, function="count_letter", args=CALL, backend="replay", allowExecution=True,
                  breakpoints=[{"line": 13}])
        for _ in range(3):  # predict a few frames ahead once
            dap.step("next")
        for _ in range(3):
            dap.step("stepBack")
        back, forward = [], []
        for _ in range(steps):
            t, body = timed_step(dap, "stepBack")
            assert body.get("reason") in ("step", "breakpoint"), body  # a step onto a breakpoint line reports it, as debugpy does
            back.append(t)
            t, body = timed_step(dap, "stepIn")
            assert body.get("reason") in ("step", "breakpoint"), body  # a step onto a breakpoint line reports it, as debugpy does
            forward.append(t)
        return back, forward
    finally:
        dap.shutdown()


def oracle_session(backend: CheckedBackend) -> Any:
    """A real session whose local model is the one oracle-forced backend given, greedy."""
    from neuraldbg.session.session import Session

    session = Session(Settings(backend="local", profile="oracle-in-process", temperature=0.0, seed=0))
    session.engines.adopt(session.settings, backend, backend.tokenizer)
    return session


def model_steps(steps: int) -> tuple[list[float], Any, list[str]]:
    from neuraldbg.backends.oracle import load_oracle_backend
    from neuraldbg.dap import start_tcp_server

    backend, _ = load_oracle_backend(str(oracle_folder("tiny")), speculative_tokens=0)
    checked = CheckedBackend(backend)
    port, stop = start_tcp_server(session=oracle_session(checked))
    dap = DapClient.connect(port)
    times: list[float] = []
    try:
        dap.start(PROGRAM, function="count_letter", args=CALL, backend="local", stopOnEntry=True)
        before = backend.stats.requests
        for _ in range(steps):
            t, body = timed_step(dap, "stepIn")
            assert body.get("reason") in ("step", "breakpoint"), body  # a step onto a breakpoint line reports it, as debugpy does
            times.append(t)
        stats = backend.stats
        errors = check_log(checked.log, "dap")
        if stats.requests - before != steps or checked.log.complete_frames != steps:
            errors.append(f"{steps} steps made {stats.requests - before} requests, "
                          f"{checked.log.complete_frames} complete frames")
    finally:
        dap.shutdown()
        stop()
        backend.close()
    return times, stats, errors


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--model-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: see bench_kv_reuse.py)")
    parser.add_argument("--quick", action="store_true", help="20 memory steps, 4 model steps (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.model_steps = 20, 4
    import torch

    torch.set_num_threads(args.threads)

    back, forward = predicted_steps(args.steps)
    print(f"(a) already-predicted step over stdio (replay backend, {args.steps} runs each), request -> stopped event:")
    print(f"    stepIn served from memory   p50 {pct(forward, 50) * 1e3:7.2f} ms   p99 {pct(forward, 99) * 1e3:7.2f} ms")
    print(f"    stepBack                    p50 {pct(back, 50) * 1e3:7.2f} ms   p99 {pct(back, 99) * 1e3:7.2f} ms")
    memory = "ms, stepIn -> stopped, frame already predicted (served from memory, replay backend, no model call)"
    backward = "ms, stepBack -> stopped (replay backend, no model call)"
    print(f"FIGURE dap_step.predicted_p50 | {pct(forward, 50) * 1e3:.2f} | {memory}")
    print(f"FIGURE dap_step.predicted_p99 | {pct(forward, 99) * 1e3:.2f} | {memory}")
    print(f"FIGURE dap_step.back_p50 | {pct(back, 50) * 1e3:.2f} | {backward}")
    print(f"FIGURE dap_step.back_p99 | {pct(back, 99) * 1e3:.2f} | {backward}")

    times, stats, errors = model_steps(args.model_steps)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    per_frame = stats.generated_tokens / stats.requests
    print(f"(b) stepIn needing one new frame from the oracle-forced tiny CWM (CPU, LocalBackend, KV reuse), "
          f"{args.model_steps} runs;")
    print(f"    each is one model request that wrote one complete frame ({per_frame:.1f} tokens on average):")
    print(f"    stepIn with a model call     p50 {pct(times, 50) * 1e3:7.1f} ms   p99 {pct(times, 99) * 1e3:7.1f} ms")
    print(f"    backend totals: {stats.requests} requests, {stats.prefilled_tokens:,} tokens prefilled, "
          f"{stats.reused_tokens:,} reused from the KV cache, {stats.generated_tokens:,} generated")
    what = "ms, stepIn -> stopped, one frame written by the oracle-forced tiny CWM (CPU)"
    print(f"FIGURE dap_step.model_frame_p50 | {pct(times, 50) * 1e3:.1f} | {what}")
    print(f"FIGURE dap_step.model_frame_p99 | {pct(times, 99) * 1e3:.1f} | {what}")
    print(f"FIGURE dap_step.model_frame_tokens | {per_frame:.1f} | tokens per predicted frame (Llama-3 BPE, real frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
