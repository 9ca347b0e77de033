"""CruxEval-O through the evaluation harness on the exec and replay backends.

For each backend, runs the first --limit samples the way
``neuraldbg eval cruxeval --backend B --limit N --jobs J`` does (the real run
of each sample included) and prints pass@1, the exact-trace rate, the mean
per-frame accuracy (all 100% when the harness, the tracer and the codec are
right) and the harness's throughput in samples per second. The replay
backend feeds each real run through the codec, parser and simulation with no
model and no generation loop: its figures check the harness and the codec,
never a model (the oracle-forced CWM's run of the harness is a test,
tests/test_eval_cruxeval.py, and bench_speculation.py debugs CruxEval traces
on it).

    python benchmarks/bench_eval_cruxeval.py [--limit 100] [--jobs 2] [--data PATH]

The data defaults to $NEURALDBG_CRUXEVAL, else ../shared/data/cruxeval.jsonl
next to the repository.
"""
# bench: timeout 900

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from neuraldbg.eval.cruxeval import load_cruxeval, run_cruxeval
from neuraldbg.eval.errors import EvalError
from neuraldbg.eval.predictors import make_predictor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cruxeval.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NEURALDBG_CRUXEVAL", str(DEFAULT_DATA)))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--backends", default="exec,replay")
    args = parser.parse_args()
    try:
        samples = load_cruxeval(args.data)[: args.limit]
    except EvalError as exc:
        print(f"bench_eval_cruxeval: {exc}", file=sys.stderr)
        return 2
    for backend in args.backends.split(","):
        what = " (no model: codec + harness)" if backend == "replay" else ""
        predictor = make_predictor(backend)
        t0 = time.perf_counter()
        run = run_cruxeval(samples, predictor, jobs=args.jobs)
        wall = time.perf_counter() - t0
        s = run.summary
        print(f"CruxEval-O, first {s.samples} samples, backend {backend}, {args.jobs} jobs: {wall:.1f} s")
        print(s.table())
        print(f"FIGURE cruxeval_{backend}.pass_at_1 | {100 * s.pass_at_1:.1f} | % of {s.samples} samples{what}")
        print(f"FIGURE cruxeval_{backend}.exact_trace | {100 * s.exact_trace_rate:.1f} | % of {s.samples} samples{what}")
        print(f"FIGURE cruxeval_{backend}.frame_accuracy | {100 * s.mean_frame_accuracy:.1f} | % (mean per sample){what}")
        print(f"FIGURE cruxeval_{backend}.throughput | {s.samples / wall:.2f} | samples/s ({args.jobs} jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
