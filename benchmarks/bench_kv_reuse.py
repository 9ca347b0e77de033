"""KV reuse over a 50-step debug session on the tiny CWM.

Runs the same simulated debug session (step in / over / out / back, an edit)
twice through ModelEngine + LocalBackend: once with the backend's KV cache
(each step prefills only its new tokens) and once re-sending and re-encoding
the whole prefix at every step, as the release's demo does (the cache is
dropped before every request). Prints the tokens prefilled by each, their
ratio, and the wall time of each, on the tiny test model (a prefill is
nearly free there, so the wall times differ little) and, with
``--sizes small``, on a random CWM of 8 layers and hidden 256 (building it
takes a few minutes; at this example's ~300-token contexts CPU decode still
dominates, so the wall ratio stays modest: 1.12x measured on 2 cores).

    python benchmarks/bench_kv_reuse.py [--steps 50] [--sizes tiny small]
"""

# bench: timeout 1200
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.local import LocalBackend
from neuraldbg.backends.tiny_model import SMALL, TINY, build_tiny_cwm
from neuraldbg.engines.model_engine import ModelEngine
from neuraldbg.simulation import Simulation
from neuraldbg.source.index import index_text

ROOT = Path(__file__).resolve().parents[1]
SOURCE = (ROOT / "examples" / "recursion.py").read_text()
SIZES = {"tiny": (TINY, "tiny CWM", "kv_reuse"), "small": (SMALL, "small random CWM", "kv_reuse_small")}
MOVES = "iiiioiibiiuoobbiiiioiiiiibiiioooiiiibiiiiuiiiiiiii"  # 50 moves: in, over, out, back


class NoReuse:
    """The demo's way: every request is prefilled from scratch."""

    def __init__(self, backend: LocalBackend) -> None:
        self.inner = backend
        self.name = backend.name
        self.stats = backend.stats

    def generate(self, prompt, *, stop_ids, sampling, cancel=None):
        self.inner.contexts.clear()
        return self.inner.generate(prompt, stop_ids=stop_ids, sampling=sampling, cancel=cancel)

    def close(self) -> None:
        self.inner.close()


def session(backend, steps: int) -> tuple[float, int, int, int]:
    index = index_text(SOURCE)
    fn = index.function("fib_list")
    engine = ModelEngine(backend, getattr(backend, "inner", backend).tokenizer,
                         source=SOURCE, function=fn, functions=index.functions, call="fib_list(4)",
                         sampling=Sampling(temperature=0.0), backend_kind="local", frame_token_cap=24)
    sim = Simulation(engine, function="fib_list", call="fib_list(4)", max_frames=10_000)
    getattr(backend, "inner", backend).contexts.clear()  # each session starts cold
    before = (backend.stats.prompt_tokens, backend.stats.prefilled_tokens, backend.stats.generated_tokens)
    t0 = time.perf_counter()
    sim.start()
    moves = {"i": sim.step_in, "o": sim.step_over, "u": sim.step_out, "b": sim.step_back}
    for move in MOVES[:steps]:
        if sim.done:  # the tiny model's noise may end the trace: start again, as a user would
            sim.start()
        moves[move]()
    wall = time.perf_counter() - t0
    s = backend.stats
    return wall, s.prompt_tokens - before[0], s.prefilled_tokens - before[1], s.generated_tokens - before[2]


def compare(folder: Path, steps: int, label: str, key: str) -> None:
    reuse = LocalBackend.load(folder)
    plain = NoReuse(LocalBackend.load(folder))
    session(reuse, 5)  # warm up torch before timing anything
    # Alternate the two ways and keep each one's best wall time: the machine may be busy.
    runs1, runs2 = [], []
    for _ in range(2):
        runs1.append(session(reuse, steps))
        runs2.append(session(plain, steps))
    w1, sent1, pre1, gen1 = min(runs1)
    w2, sent2, pre2, gen2 = min(runs2)
    print(f"{steps}-step debug session on the {label} (examples/recursion.py::fib_list, greedy, best of 2)")
    print(f"{'':28}{'prompt tokens':>15}{'prefilled':>12}{'generated':>11}{'wall s':>9}")
    print(f"{'with KV reuse':28}{sent1:>15,}{pre1:>12,}{gen1:>11,}{w1:>9.2f}")
    print(f"{'re-send whole prefix (demo)':28}{sent2:>15,}{pre2:>12,}{gen2:>11,}{w2:>9.2f}")
    ratio = pre2 / max(pre1, 1)
    print(f"prefill ratio (demo / reuse): {ratio:.1f}x; wall ratio: {w2 / max(w1, 1e-9):.2f}x\n")
    print(f"FIGURE {key}.prefilled_tokens_reuse | {pre1} | tokens")
    print(f"FIGURE {key}.prefilled_tokens_resend | {pre2} | tokens")
    print(f"FIGURE {key}.prefill_ratio | {ratio:.1f} | x fewer tokens prefilled")
    print(f"FIGURE {key}.wall_reuse | {w1:.2f} | s")
    print(f"FIGURE {key}.wall_resend | {w2:.2f} | s")
    print(f"FIGURE {key}.wall_ratio | {w2 / max(w1, 1e-9):.2f} | x (re-send / reuse)")
    reuse.close()
    plain.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["tiny"],
                        help="tiny: the 4-layer test model (prefill nearly free); small: 8 layers, hidden 256")
    args = parser.parse_args()
    for name in args.sizes:
        size, label, key = SIZES[name]
        folder = build_tiny_cwm(Path(tempfile.gettempdir()) / f"neuraldbg-bench-{name}-cwm", size=size)
        compare(folder, args.steps, label, key)


if __name__ == "__main__":
    main()
