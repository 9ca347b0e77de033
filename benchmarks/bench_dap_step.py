"""Debug-adapter step latency, request to ``stopped`` event, as an editor sees it.

(a) A step whose frame is already predicted: stop at a breakpoint, then
    repeat stepBack + stepIn; the forward step is served from the
    simulation's memory of undone frames (no engine call). Run over stdio
    against ``python -m neuraldbg.dap`` on the replay backend (the model
    path: codec, parser, line mapper), so this is the adapter's own cost.
(b) A step that needs one new frame from the tiny random CWM (LocalBackend,
    CPU), the adapter served over TCP in this process. The tiny model's
    noise never closes a frame, so each request is capped at the token
    length of a real frame of the same program (the replay's average) and
    every stepIn is one model request of that many decoded tokens.

    python benchmarks/bench_dap_step.py [--steps 200] [--model-steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the DAP client the tests use

from dap_client.pyclient import DapClient  # noqa: E402

from neuraldbg.backends.base import Sampling  # noqa: E402
from neuraldbg.config import Settings  # noqa: E402
from neuraldbg.engines.factory import EngineFactory  # noqa: E402

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
        dap.start(PROGRAM, function="count_letter", args=CALL, backend="replay", breakpoints=[{"line": 13}])
        for _ in range(3):  # predict a few frames ahead once
            dap.step("next")
        for _ in range(3):
            dap.step("stepBack")
        back, forward = [], []
        for _ in range(steps):
            t, body = timed_step(dap, "stepBack")
            assert body.get("reason") == "step", body
            back.append(t)
            t, body = timed_step(dap, "stepIn")
            assert body.get("reason") == "step", body
            forward.append(t)
        return back, forward
    finally:
        dap.shutdown()


def real_frame_tokens(tok: Any) -> float:
    """Average token length of a frame of the program's real trace, as the
    codec writes it for the model."""
    from neuraldbg.trace.cwm_encode import encode_frame, reference_locals
    from neuraldbg.tracer import run_trace

    truth = run_trace(PROGRAM.read_text(), CALL, function="count_letter", path=str(PROGRAM))
    frames = truth.frames
    sizes = [len(encode_frame(tok, f, reference_locals(frames, i) if f.event == "line" else None))
             for i, f in enumerate(frames)]
    return statistics.mean(sizes)


class TinyFactory(EngineFactory):
    def __init__(self, backend: Any, cap: int) -> None:
        super().__init__(require_permission=False)
        self.tiny, self.cap = backend, cap

    def make(self, settings: Settings, *, source: str, index: Any, function: Any, call: str, path: str,
             cancel: Any = None) -> Any:  # type: ignore[override]
        from neuraldbg.engines.model_engine import ModelEngine

        return ModelEngine(self.tiny, self.tiny.tokenizer, source=source, function=function, functions=index.functions,
                           call=call, sampling=Sampling(temperature=0.0, seed=0), backend_kind="local",
                           frame_token_cap=self.cap)


@dataclass
class Host:
    engines: EngineFactory
    settings: Settings = field(default_factory=lambda: Settings(backend="local"))
    documents: dict[str, Any] = field(default_factory=dict)


def model_steps(steps: int) -> tuple[list[float], int, float, Any]:
    from neuraldbg.backends.local import LocalBackend
    from neuraldbg.backends.tiny_model import build_tiny_cwm
    from neuraldbg.dap import start_tcp_server

    folder = build_tiny_cwm(Path(tempfile.gettempdir()) / "neuraldbg-bench-tiny-cwm")
    backend = LocalBackend.load(folder)
    mean_tokens = real_frame_tokens(backend.tokenizer)
    cap = round(mean_tokens)
    port, stop = start_tcp_server(session=Host(TinyFactory(backend, cap)))
    dap = DapClient.connect(port)
    times: list[float] = []
    try:
        dap.start(PROGRAM, function="count_letter", args=CALL, backend="local", stopOnEntry=True)
        before = backend.stats.requests
        for _ in range(steps):
            t, body = timed_step(dap, "stepIn")
            times.append(t)
        assert backend.stats.requests - before == steps, "each step must be exactly one model request"
    finally:
        dap.shutdown()
        stop()
        backend.close()
    return times, cap, mean_tokens, backend.stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--model-steps", type=int, default=20)
    args = parser.parse_args()

    back, forward = predicted_steps(args.steps)
    print(f"(a) already-predicted step over stdio (replay backend, {args.steps} runs each), request -> stopped event:")
    print(f"    stepIn served from memory   p50 {pct(forward, 50) * 1e3:7.2f} ms   p99 {pct(forward, 99) * 1e3:7.2f} ms")
    print(f"    stepBack                    p50 {pct(back, 50) * 1e3:7.2f} ms   p99 {pct(back, 99) * 1e3:7.2f} ms")
    print(f"FIGURE dap_step.predicted_p50 | {pct(forward, 50) * 1e3:.2f} | ms")
    print(f"FIGURE dap_step.predicted_p99 | {pct(forward, 99) * 1e3:.2f} | ms")
    print(f"FIGURE dap_step.back_p50 | {pct(back, 50) * 1e3:.2f} | ms")
    print(f"FIGURE dap_step.back_p99 | {pct(back, 99) * 1e3:.2f} | ms")

    times, cap, mean_tokens, stats = model_steps(args.model_steps)
    print(f"(b) step needing one new frame from the tiny CWM (CPU, LocalBackend with KV reuse), {args.model_steps} runs;")
    print(f"    each is one model request decoding {cap} tokens (a real frame of this program averages {mean_tokens:.1f}):")
    print(f"    stepIn with a model call     p50 {pct(times, 50) * 1e3:7.1f} ms   p99 {pct(times, 99) * 1e3:7.1f} ms")
    print(f"    backend totals: {stats.requests} requests, {stats.prefilled_tokens:,} tokens prefilled, "
          f"{stats.reused_tokens:,} reused from the KV cache, {stats.generated_tokens:,} generated")
    print(f"FIGURE dap_step.model_frame_p50 | {pct(times, 50) * 1e3:.1f} | ms")
    print(f"FIGURE dap_step.model_frame_p99 | {pct(times, 99) * 1e3:.1f} | ms")
    print(f"FIGURE dap_step.model_frame_tokens | {cap} | tokens per request")


if __name__ == "__main__":
    main()
