"""``neuraldbg eval cruxeval|halting``: parsers and the command.

The tables go to stdout; progress, "resuming" and model loading go to
stderr. Failures of the whole run are :class:`EvalError` (one line).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from neuraldbg.eval.errors import EvalError

if TYPE_CHECKING:  # the parser is built on every CLI call: import the harness only when it runs
    from neuraldbg.eval.predictors import Predictor

log = logging.getLogger(__name__)


def add_eval_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]",
                    add_backend_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``eval`` with its two benchmarks; ``add_backend_args`` is the
    CLI's shared --backend/--model/--url/... options."""
    e = sub.add_parser("eval", help="evaluate a backend: CruxEval-O with trace metrics, or halting prediction")
    kinds = e.add_subparsers(dest="eval_kind", metavar="BENCHMARK")

    c = kinds.add_parser("cruxeval", help="CruxEval-O output prediction (pass@1) + exact-trace and per-frame accuracy")
    c.add_argument("--data", required=True, help="CruxEval JSONL ({code, input, output, id} per line)")
    c.add_argument("--limit", type=int, default=None, help="only the first N samples")
    c.add_argument("--out", help="append one JSON record per sample here; ids already in it are skipped (resume)")
    _common(c, add_backend_args)
    c.set_defaults(max_frames=2000)  # the frame budget every published CruxEval figure of this project used

    from neuraldbg.eval.cruxeval_i import add_cruxeval_i_parser

    add_cruxeval_i_parser(kinds, add_backend_args)

    h = kinds.add_parser("halting", help="predict whether built-in programs halt, within a frame budget")
    h.add_argument("--family", default=None, help="only programs of this family (hand, step_to_target, ...)")
    h.add_argument("--verbose", dest="per_program", action="store_true", help="also print every program's result")
    h.add_argument("--json", dest="json_out", help="write every program's result to this JSONL file")
    _common(h, add_backend_args)
    from neuraldbg.eval.halting_programs import DEFAULT_BUDGET

    h.set_defaults(max_frames=DEFAULT_BUDGET)


def _common(p: argparse.ArgumentParser, add_backend_args: Callable[[argparse.ArgumentParser], None]) -> None:
    add_backend_args(p)
    p.add_argument("--jobs", type=int, default=1, help="samples evaluated in parallel (model backends serialise on the model)")
    p.add_argument("--frame-tokens", type=int, default=None,
                   help="tokens one predicted frame may take before it counts as malformed (model backends)")


def _predictor(args: argparse.Namespace) -> "Predictor":
    from neuraldbg.backends.base import LoadProgress
    from neuraldbg.config import Settings
    from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP
    from neuraldbg.eval.predictors import EVAL_BACKENDS, make_predictor
    from neuraldbg.simulation.sampling import sampling_plan
    from neuraldbg.tracer import Limits

    if args.backend not in EVAL_BACKENDS:
        raise EvalError(f"unknown backend {args.backend!r}")
    if args.frame_tokens is not None and args.frame_tokens < 1:
        raise EvalError(f"--frame-tokens must be at least 1, got {args.frame_tokens}")
    if args.timeout is not None and not args.timeout > 0:
        raise EvalError(f"--timeout must be positive, got {args.timeout}")

    def progress(p: LoadProgress) -> None:
        frac = f" {p.fraction:.0%}" if p.fraction is not None else ""
        print(f"loading{frac}: {p.message}", file=sys.stderr, flush=True)

    # The inputs are given (CruxEval calls, halting programs): only the frames' sampling is used.
    sampling = sampling_plan(Settings(profile=args.model or "", temperature=args.temperature,
                                      seed=args.seed if args.seed is not None else 0),
                             default_max_tokens=FRAME_TOKEN_CAP).frames
    return make_predictor(
        args.backend, model=args.model or "", url=args.url or "",
        api_key=args.api_key or os.environ.get("NEURALDBG_API_KEY", ""), sampling=sampling,
        limits=Limits(wall_seconds=args.timeout), frame_token_cap=args.frame_tokens or sampling.max_tokens,
        progress=progress,
    )


def _notice(message: str) -> None:
    print(f"neuraldbg eval: {message}", file=sys.stderr, flush=True)


def run_eval(args: argparse.Namespace) -> int:
    """The ``eval`` command; 0 when the evaluation ran (a failed sample is a result, not an error)."""
    if args.eval_kind == "cruxeval":
        return _cruxeval(args)
    if args.eval_kind == "halting":
        return _halting(args)
    if args.eval_kind == "cruxeval-i":
        from neuraldbg.eval.cruxeval_i import cmd_cruxeval_i

        return cmd_cruxeval_i(args)
    raise EvalError("say which benchmark: neuraldbg eval cruxeval|halting (see --help)")


def _cruxeval(args: argparse.Namespace) -> int:
    from neuraldbg.eval.cruxeval import load_cruxeval, run_cruxeval
    from neuraldbg.eval.progress import Progress
    from neuraldbg.tracer import Limits

    if args.limit is not None and args.limit < 1:
        raise EvalError(f"--limit must be at least 1, got {args.limit}")
    samples = load_cruxeval(args.data)
    if args.limit is not None:
        samples = samples[: args.limit]
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise EvalError(f"--out {out} is a folder; give a file name")
    predictor = _predictor(args)
    try:
        run = run_cruxeval(samples, predictor, max_frames=args.max_frames, jobs=args.jobs, out=out,
                           truth_limits=Limits(wall_seconds=args.timeout),
                           progress=lambda n: Progress(n, "cruxeval"), notice=_notice)
    finally:
        predictor.close()
    print(run.summary.table())
    if out is not None:
        print(f"results: {out} ({run.new} new, {run.resumed} resumed)")
    return 0


def _halting(args: argparse.Namespace) -> int:
    from neuraldbg.eval.halting import format_halting, run_halting
    from neuraldbg.eval.halting_programs import builtin_programs
    from neuraldbg.eval.progress import Progress
    from neuraldbg.tracer import Limits

    programs = builtin_programs()
    if args.family:
        families = sorted({p.family for p in programs})
        programs = [p for p in programs if p.family == args.family]
        if not programs:
            raise EvalError(f"no family {args.family!r}; one of {', '.join(families)}")
    from neuraldbg.eval.halting import check_budget

    check_budget(args.max_frames)
    predictor = _predictor(args)
    try:
        results = run_halting(programs, predictor, budget=args.max_frames, jobs=args.jobs,
                              limits=Limits(wall_seconds=args.timeout), progress=lambda n: Progress(n, "halting"))
    finally:
        predictor.close()
    if args.json_out:
        path = Path(args.json_out)
        try:
            path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in results), encoding="utf-8")
        except OSError as exc:
            raise EvalError(f"cannot write {path}: {exc}") from None
    print(format_halting(results, backend=args.backend, budget=args.max_frames, verbose=args.per_program))
    return 0
