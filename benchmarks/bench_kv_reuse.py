"""KV reuse over a real 50-step debug session on the oracle-forced CWM.

The session (MOVES in _oracle_session.py) debugs ``scan(40)`` of PROGRAM (612 frames in its
real trace, two helpers called in a loop) through the Simulation, mixing
step in / over / out / back, run to line, an edit of a local and a resample
(a restart of the trace: at temperature 0 it re-predicts the same frames).
Every frame it shows after the call frame is written by the model's decode
loop: a random CwmForCausalLM whose logits the trace oracle masks to the real
run's next token (neuraldbg.backends.oracle), with the Llama-3 BPE for
realistic token counts. Each request is checked to return exactly one
complete, unflagged frame; the script exits non-zero otherwise.

The session runs twice on the local backend (SMALL random CWM: 8 layers,
hidden 256): with KV reuse (the default context pool) and without it (the
pool emptied before every request, so each prompt is prefilled from scratch,
as the release's demo does), then twice through the remote backend against
the model server (neuraldbg.hosting.modelserver) serving the oracle-forced TINY CWM
the same two ways; there the prefilled counts come from the server's
reported cached tokens (usage.prompt_tokens_details.cached_tokens).

Figures:

- kv_reuse.steps_asked: debug commands in the session;
- kv_reuse.frames_needed: frames the steps needed from the model (a step
  over writes the callee's return frame and the next line, a run to line
  many, a step back or an edit none);
- kv_reuse.steps_predicted: frames the model wrote (requests that returned a
  complete frame; equal to frames_needed and to the requests, asserted);
- kv_reuse.prefill_ratio: prompt tokens prefilled without reuse / with reuse;
- kv_reuse.wall_ratio_small: session wall time without / with reuse (SMALL);
- kv_reuse.remote_prefill_ratio: the same through the remote backend and
  the model server (TINY). Its wall times are printed but are no figure: on
  the TINY model a prefill costs almost nothing, so they differ by noise.

What they do not measure: CWM's own speed (the models are random and tiny;
on a CPU decoding is bound by the 128k-vocabulary lm_head, so prefill is a
smaller share of a step than on a 32B model at long contexts), sampling
(greedy; the oracle decides every token), or the oracle's cost, which is in
both wall times alike (its share is printed). Torch runs single-threaded by
default (``--threads``): on a shared 2-core host two OpenMP threads spin
against other processes and every op got about 5x slower.

    python benchmarks/bench_kv_reuse.py [--quick] [--threads 1] [--no-remote]
"""

# bench: timeout 1500
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _oracle_session import (  # noqa: E402
    MOVES,
    PROGRAM,
    QUICK,
    CheckedBackend,
    FreshPool,
    Move,
    SessionResult,
    TimedProcessor,
    check,
    oracle_folder,
    run_session,
)

from neuraldbg.backends.base import Sampling  # noqa: E402

GREEDY = Sampling(temperature=0.0)


def load(size: str) -> Any:
    from neuraldbg.backends.oracle import load_oracle_backend

    backend, _ = load_oracle_backend(str(oracle_folder(size)), speculative_tokens=0)
    backend.logits_processor = TimedProcessor(backend.logits_processor)
    return backend


def local_pair(size: str, moves: list[Move]) -> tuple[SessionResult, SessionResult]:
    backend = load(size)
    try:
        run_session(CheckedBackend(backend), PROGRAM, moves[:5], GREEDY)  # warm torch up before timing
        backend.contexts.clear()  # each session starts cold
        reuse = run_session(CheckedBackend(backend), PROGRAM, moves, GREEDY)
        backend.contexts.clear()
        fresh = run_session(CheckedBackend(FreshPool(backend)), PROGRAM, moves, GREEDY, stats_of=backend)
    finally:
        backend.close()
    return reuse, fresh


def remote_pair(size: str, moves: list[Move]) -> tuple[SessionResult, SessionResult]:
    """The session through RemoteBackend and the model server; the prefilled
    counts are the client's, from the cached tokens the server reports, and
    are checked against the served backend's own counters."""
    from neuraldbg.backends.remote import RemoteBackend
    from neuraldbg.hosting.modelserver import start_model_server

    backend = load(size)
    results = []
    try:
        for served in (backend, FreshPool(backend)):
            backend.contexts.clear()
            reused_before = backend.stats.reused_tokens
            with start_model_server(served, tokenizer=backend.tokenizer) as server:
                client = RemoteBackend(server.url, tokenizer=backend.tokenizer)
                try:
                    result = run_session(CheckedBackend(client), PROGRAM, moves, GREEDY, kind="remote", model=backend)
                finally:
                    client.close()
            served_reused = backend.stats.reused_tokens - reused_before
            if not client.reports_cached_tokens or result.stats.reused_tokens != served_reused:
                raise SystemExit(f"remote: the server reported {result.stats.reused_tokens} cached tokens "
                                 f"(reports them: {client.reports_cached_tokens}); its backend reused {served_reused}")
            results.append(result)
    finally:
        backend.close()
    return results[0], results[1]


def describe(label: str, r: SessionResult) -> None:
    s = r.stats
    print(f"  {label:40} {s.requests:>5} {s.prompt_tokens:>9,} {s.prefilled_tokens:>9,} {s.generated_tokens:>9,} "
          f"{r.wall_s:>8.2f} {r.oracle_s:>8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK)} moves, TINY size only (a smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see the docstring)")
    parser.add_argument("--no-remote", action="store_true", help="skip the remote backend runs")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    moves = QUICK if args.quick else MOVES
    local_size = "tiny" if args.quick else "small"
    runs = {"local": local_pair(local_size, moves)}
    if not args.no_remote:
        runs["remote"] = remote_pair("tiny", moves)
    errors = []
    print(f"{len(moves)}-move debug session of scan(40) on the oracle-forced random CWM (Llama-3 BPE, greedy)")
    print(f"  {'':40} {'reqs':>5} {'prompt':>9} {'prefill':>9} {'generated':>9} {'wall s':>8} {'oracle s':>8}")
    for where, (reuse, fresh) in runs.items():
        size = local_size if where == "local" else "tiny"
        describe(f"{where} {size}, KV reuse", reuse)
        describe(f"{where} {size}, no reuse (prefix re-sent)", fresh)
        errors += check(reuse, f"{where} reuse") + check(fresh, f"{where} no reuse")
        if (reuse.new_frames, reuse.stats.generated_tokens) != (fresh.new_frames, fresh.stats.generated_tokens):
            errors.append(f"{where}: the two runs wrote different frames")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    reuse, fresh = runs["local"]
    print(f"FIGURE kv_reuse.steps_asked | {reuse.steps_asked} | debug commands (in/over/out/back/run to line/edit/resample)")
    print(f"FIGURE kv_reuse.frames_needed | {reuse.new_frames} | frames the session's steps needed from the model "
          "(a step over or run to line needs several, a step back none)")
    print(f"FIGURE kv_reuse.steps_predicted | {reuse.log.complete_frames} | frames written by the oracle-forced CWM, "
          "one complete frame per request (checked)")
    ratio = fresh.stats.prefilled_tokens / max(reuse.stats.prefilled_tokens, 1)
    print(f"FIGURE kv_reuse.prefill_ratio | {ratio:.1f} | x fewer prompt tokens prefilled with KV reuse "
          f"({fresh.stats.prefilled_tokens} / {reuse.stats.prefilled_tokens})")
    key = "wall_ratio_small" if local_size == "small" else "wall_ratio_tiny"
    print(f"FIGURE kv_reuse.{key} | {fresh.wall_s / reuse.wall_s:.2f} | x session wall time without / with reuse "
          f"({local_size} random CWM, CPU, {args.threads} thread)")
    if "remote" in runs:
        reuse, fresh = runs["remote"]
        ratio = fresh.stats.prefilled_tokens / max(reuse.stats.prefilled_tokens, 1)
        print(f"FIGURE kv_reuse.remote_prefill_ratio | {ratio:.1f} | x fewer prompt tokens prefilled "
              "(model server's reported cached tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
