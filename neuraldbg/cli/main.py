"""Command line: ``neuraldbg trace|debug|fill|serve|dap|model-server|doctor|eval``.

Errors from bad input are printed as one line on stderr with a non-zero exit
status, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from neuraldbg import __version__
from neuraldbg.cli.errors import CliError
from neuraldbg.simulation.target import TargetError, resolve, split_spec

log = logging.getLogger("neuraldbg")


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["exec", "replay", "local", "remote"], default="exec",
                   help="exec: run it for real in the sandbox (default); replay: a real run fed back through the model path; local: CWM on this host's GPUs; remote: a vLLM/SGLang/neuraldbg model server")
    p.add_argument("--model", help="model profile name (see models/) or a local checkpoint folder (local backend)")
    p.add_argument("--url", help="model server URL (remote backend), e.g. http://gpu-host:8000")
    p.add_argument("--api-key", help="API key for the remote backend (default: $NEURALDBG_API_KEY)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (model backends; default: the profile's [sampling], 0.2 / 0.6 for imagined inputs)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (model backends)")
    p.add_argument("--max-frames", type=int, default=0,
                   help="frame budget (default: 10000 per second of --timeout for exec/replay, 2000 for models); "
                        "a trace that runs out of it stopped early")
    p.add_argument("--timeout", type=float, default=10.0, help="wall-clock limit in seconds (exec backend)")
    p.add_argument("--interpreter", default="", metavar="PYTHON",
                   help="the Python that runs the program (the project's, so its dependencies import; default: this one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuraldbg", description="A neural debugger for Python: predicted (or executed) traces of your functions.")
    parser.add_argument("--version", action="version", version=f"neuraldbg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("trace", help="trace one call of a function and print it")
    t.add_argument("target", metavar="FILE::FUNC")
    t.add_argument("--call", help='the call to trace, e.g. "f([3, 4])" (default: the file\'s doctest or __main__ call)')
    t.add_argument("--format", choices=["table", "json", "cwm"], default="table")
    t.add_argument("--score", action="store_true",
                   help="run the function for real and rate that run under the model of --backend local/remote in one "
                        "prefill: per-frame agreement and the first divergence")
    _add_backend_args(t)
    d = sub.add_parser("debug", help="step through a (simulated) execution in the terminal")
    d.add_argument("target", metavar="FILE::FUNC")
    d.add_argument("--call", help="the call to debug (default: the file's entry points; model backends may imagine one)")
    _add_backend_args(d)

    from neuraldbg.server.__main__ import add_serve_args

    sv = sub.add_parser("serve", help="the language server (LSP over stdio by default, or --tcp / --ws)")
    add_serve_args(sv)

    dr = sub.add_parser("doctor", help="the GPUs this host has, and how a model profile would be placed on them")
    dr.add_argument("--profile", help="a profile name or TOML path (default: every local profile)")
    dr.add_argument("--gpus", help='plan for another host, e.g. "2x80" or "1x24" (GiB per GPU; default: detect)')
    dr.add_argument("--json", action="store_true", help="print the plans as JSON")

    da = sub.add_parser("dap", help="the simulated step debugger as a Debug Adapter Protocol server (stdio, or --port); a launch runs code only with \"allowExecution\": true")
    da.add_argument("--port", type=int, help="listen on this loopback TCP port instead of stdio (0: pick one and print it)")
    da.add_argument("--host", default="127.0.0.1")

    m = sub.add_parser("model-server", help="serve a local model over an OpenAI-compatible /v1/completions API (token-id prompts)")
    m.add_argument("--model", required=True, help="model profile name (see models/) or a checkpoint folder")
    m.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    m.add_argument("--port", type=int, default=8000)
    m.add_argument("--api-key", help="require this bearer token (default: $NEURALDBG_API_KEY)")
    m.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    m.add_argument("--oracle", action="store_true",
                   help="a test fixture: mask the model's logits to the real run of the program in each trace prompt "
                        "(runs that program in the sandbox); for tests and benchmarks on a tiny CWM, never for users")
    from neuraldbg.eval.command import add_eval_parser

    add_eval_parser(sub, _add_backend_args)
    from neuraldbg.cli.fill import add_fill_parser

    add_fill_parser(sub, _add_backend_args)
    from neuraldbg.cli.inputs import add_inputs_parser

    add_inputs_parser(sub, _add_backend_args)
    return parser


def cmd_trace(args: argparse.Namespace) -> int:
    from neuraldbg.cli.predict import trace_for_cli
    from neuraldbg.cli.render import render_json, render_table, terminal_width, use_colour

    score = None
    if args.score:
        if args.backend not in ("local", "remote"):
            raise CliError("--score rates the real run under a model: add --backend local --model PROFILE "
                           "or --backend remote --url URL")
        from neuraldbg.cli.score import score_for_cli

        run, trace = trace_for_cli(args, backend="exec")
        score = score_for_cli(args, run.target, trace)
    else:
        run, trace = trace_for_cli(args)
    if args.format == "json":
        if score is not None:
            import json

            from neuraldbg.cli.score import score_json

            print(json.dumps({**trace.to_json(), "score": score_json(score)}, ensure_ascii=False))
        else:
            print(render_json(trace))
    elif args.format == "cwm":
        from neuraldbg.trace.cwm_text import render_cwm_text

        print(render_cwm_text(run.target.source, run.target.function, trace), end="")
    else:
        print(render_table(trace, colour=use_colour(sys.stdout), width=terminal_width()))
        if score is not None:
            from neuraldbg.cli.score import render_score

            print(render_score(score, trace))
    return 0 if trace.error is None else 1


def cmd_debug(args: argparse.Namespace) -> int:
    from neuraldbg.cli.debug import run_debugger
    from neuraldbg.cli.predict import cli_run

    with cli_run(args) as run:
        return run_debugger(run.simulation)


def cmd_model_server(args: argparse.Namespace) -> int:
    import os

    from neuraldbg.backends.base import BackendError, LoadProgress
    from neuraldbg.hosting.modelserver import ModelServerError, run_model_server

    logging.getLogger("neuraldbg").setLevel(logging.INFO)

    def progress(p: LoadProgress) -> None:
        frac = f" {p.fraction:.0%}" if p.fraction is not None else ""
        mem = ", ".join(f"{d}: {g:.1f} GiB" for d, g in p.memory_per_device.items())
        log.info("loading%s: %s%s", frac, p.message, f" ({mem})" if mem else "")

    try:
        run_model_server(args.model, args.host, args.port, args.api_key or os.environ.get("NEURALDBG_API_KEY") or None,
                         progress=progress, log_level=args.log_level, oracle=args.oracle)
    except (ModelServerError, BackendError) as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from neuraldbg.eval.command import run_eval
    from neuraldbg.eval.errors import EvalError

    try:
        return run_eval(args)
    except EvalError as exc:
        raise CliError(str(exc)) from None


def cmd_doctor(args: argparse.Namespace) -> int:
    from neuraldbg.backends.profiles import ProfileError
    from neuraldbg.hosting.doctor import DoctorError, run_doctor

    try:
        found = run_doctor(args.profile, args.gpus)
    except (DoctorError, ProfileError) as exc:
        raise CliError(str(exc)) from None
    print(found.json() if args.json else found.text())
    return 0 if found.fits else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from neuraldbg.server import run_server

    return run_server(args.transport, args.host, args.port)


def cmd_dap(args: argparse.Namespace) -> int:
    from neuraldbg.dap import run_stdio, start_tcp_server

    if args.port is None:
        return run_stdio()
    import threading

    port, stop = start_tcp_server(args.host, args.port)
    print(f"neuraldbg dap listening on {args.host}:{port}", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    finally:
        stop()
    return 0


def cmd_fill(args: argparse.Namespace) -> int:
    from neuraldbg.cli.fill import cmd_fill as run

    return run(args)


COMMANDS = {"serve": cmd_serve, "dap": cmd_dap, "fill": cmd_fill, "doctor": cmd_doctor, "trace": cmd_trace, "debug": cmd_debug, "model-server": cmd_model_server}
COMMANDS["eval"] = cmd_eval
COMMANDS["inputs"] = lambda args: __import__("neuraldbg.cli.inputs", fromlist=["cmd_inputs"]).cmd_inputs(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except (TargetError, CliError) as exc:
        print(f"neuraldbg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
