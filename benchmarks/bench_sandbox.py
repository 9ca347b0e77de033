"""Wall time one exec trace costs on each isolation level, against the audit
hooks alone (level c): the price of bubblewrap and of Landlock + seccomp.

Each run is a whole ``run_trace`` of a small function (child start, the
sandbox, the traced call, the result), interleaved across levels so that
machine noise falls on all of them alike; the figures are medians.

    python benchmarks/bench_sandbox.py [--runs 40]
"""

from __future__ import annotations

import argparse
import statistics
import time

from neuraldbg.tracer import isolation, run_trace

SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
CALL = "f([1, 2, 3])"


def one(level: str) -> float:
    t0 = time.perf_counter()
    trace = run_trace(SOURCE, CALL, function="f", isolation=level)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - t0
    assert trace.status == "complete" and trace.return_value == "6", (level, trace.error)
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    levels = [lv for lv in isolation.LEVELS if isolation.detect(lv).level == lv]
    for level in levels:
        print(isolation.pinned(level).summary())  # type: ignore[arg-type]
        one(level)  # warm: the probe and the first child's page cache
    times: dict[str, list[float]] = {lv: [] for lv in levels}
    for _ in range(args.runs):
        for level in levels:
            times[level].append(one(level))
    base = statistics.median(times["audit"])
    print(f"FIGURE sandbox.audit_trace_ms | {base:.1f} | ms per trace (median of {args.runs}, audit hooks only)")
    names = {"bwrap": "bwrap_overhead_ms", "landlock": "landlock_overhead_ms"}
    for level in levels:
        if level == "audit":
            continue
        added = statistics.median(times[level]) - base
        print(f"FIGURE sandbox.{names[level]} | {added:.1f} | ms added per trace over audit hooks only (target < 50)")
    missing = [lv for lv in isolation.LEVELS if lv not in levels]
    if missing:
        print(f"levels not available here: {', '.join(missing)}")


if __name__ == "__main__":
    main()
