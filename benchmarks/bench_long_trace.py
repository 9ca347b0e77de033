"""A long real run under the default limits: TheAlgorithms/Python's recursive
``edit_distance("GATTIC", "GALTIC")`` (examples/edit_distance.py: 84,549 frames; the old fixed cap of
2,000 frames called it "may not halt"), traced whole by ``run_trace``.

Figures: the frames of the trace, the wall time of one whole run (child
start, tracing, the result's transfer and decoding; median of ``--runs``),
and how much the process's resident memory grew holding the trace (the
first run, measured in this fresh process).

    python benchmarks/bench_long_trace.py [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from pathlib import Path

from neuraldbg.config import Settings
from neuraldbg.tracer import Limits, run_trace

SOURCE = (Path(__file__).resolve().parents[1] / "examples" / "edit_distance.py").read_text()
CALL = 'edit_distance("GATTIC", "GALTIC")'


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    limits = Limits(wall_seconds=settings.timeout_seconds, max_frames=settings.max_frames)
    print(f"default limits: {settings.timeout_seconds:g} s, {settings.max_frames} frames")
    gc.collect()
    before = rss_mib()
    trace = run_trace(SOURCE, CALL, function="edit_distance", limits=limits)
    gc.collect()
    grown = rss_mib() - before
    assert trace.status == "complete" and trace.return_value == "1", (trace.status, trace.error)
    frames = len(trace.frames)
    del trace
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        again = run_trace(SOURCE, CALL, function="edit_distance", limits=limits)
        times.append((time.perf_counter() - t0) * 1000)
        assert again.status == "complete" and len(again.frames) == frames
        del again
    print(f"{CALL}: {frames} frames, {statistics.median(times):.0f} ms (median of {args.runs}), "
          f"resident memory +{grown:.1f} MiB holding the trace")
    print(f"FIGURE long_trace.frames | {frames} | frames ({CALL}, complete under the default limits)")
    print(f"FIGURE long_trace.ms | {statistics.median(times):.0f} | ms per whole run (median of {args.runs})")
    print(f"FIGURE long_trace.rss_mb | {grown:.1f} | MiB resident memory holding the trace")


if __name__ == "__main__":
    main()
