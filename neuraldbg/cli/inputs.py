"""``neuraldbg inputs FILE::FUNC``: find inputs that reach a line, return a
value, raise an exception, or reach a line with a condition true.

Exit 0 when an input was found, 1 when none was (what was tried and the
closest run are said on stderr), 2 for bad input (one line). The search runs
off the main thread so that Ctrl-C cancels it cleanly: the token kills the
sandboxed children and the command exits 130.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import Future

from neuraldbg.backends.base import BackendError, CancelToken, Cancelled
from neuraldbg.cli.errors import CliError
from neuraldbg.inverse.goals import Goal, GoalError, make_goal
from neuraldbg.inverse.search import DEFAULT_BUDGET, SearchResult
from neuraldbg.session.inputs import FoundInputs, find_inputs, found_json
from neuraldbg.session.policy import Refused, runs_code
from neuraldbg.simulation.target import Target, resolve, split_spec


def add_inputs_parser(sub: argparse._SubParsersAction, add_backend_args) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("inputs", help="find inputs of a function that reach a line, return a value or raise "
                                      "(a search judged by real runs on exec, CWM's proposals on model backends)")
    p.add_argument("target", metavar="FILE::FUNC")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--reach", type=int, metavar="LINE", help="an input whose run executes this line")
    goal.add_argument("--returns", metavar="EXPR", help="an input for which the function returns this constant")
    goal.add_argument("--raises", metavar="EXCEPTION", help="an input for which the function raises this (or a subclass)")
    goal.add_argument("--when", nargs=2, metavar=("LINE", "EXPR"),
                      help="an input whose run reaches LINE with EXPR true on the locals there")
    p.add_argument("--budget", type=int, default=None,
                   help=f"candidate inputs to try (default: {DEFAULT_BUDGET} on exec, 8 model proposals on local/remote)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    add_backend_args(p)


def goal_from_args(args: argparse.Namespace, target: Target) -> Goal:
    fn, source = target.function, target.source
    try:
        if args.reach is not None:
            return make_goal(fn, source, "reach", line=args.reach)
        if args.returns is not None:
            return make_goal(fn, source, "returns", expr=args.returns)
        if args.raises is not None:
            return make_goal(fn, source, "raises", expr=args.raises)
        line_text, expr = args.when
        try:
            line = int(line_text)
        except ValueError:
            raise GoalError(f"--when takes a line number first, not {line_text!r}") from None
        return make_goal(fn, source, "when", line=line, expr=expr)
    except GoalError as exc:
        raise CliError(f"{target.path}: {exc}") from None


def cmd_inputs(args: argparse.Namespace) -> int:
    from neuraldbg.cli.predict import cli_session

    if args.budget is not None and args.budget < 1:
        raise CliError(f"--budget must be at least 1, got {args.budget}")
    path, qualname = split_spec(args.target)
    target = resolve(path, qualname, None, allow_imagined=True)
    goal = goal_from_args(args, target)
    with cli_session(args) as session:
        cancel = CancelToken()
        bar = _bar(args, session.settings.backend)
        done: Future[FoundInputs] = Future()

        def work() -> None:
            try:
                done.set_result(find_inputs(session, target, goal, budget=args.budget, cancel=cancel,
                                            progress=bar))
            except BaseException as exc:  # handed to the main thread
                done.set_exception(exc)

        thread = threading.Thread(target=work, name="neuraldbg-inputs", daemon=True)
        thread.start()
        try:
            found = _wait(done)
        except KeyboardInterrupt:
            cancel.cancel()
            thread.join(timeout=10)
            _close(bar)
            print("neuraldbg: cancelled", file=sys.stderr)
            return 130
        except Cancelled:
            return 130
        except Refused as exc:
            raise CliError(f"{path}: {exc}") from None
        except GoalError as exc:
            raise CliError(f"{path}: {exc}") from None
        except BackendError as exc:
            raise CliError(str(exc)) from None
        finally:
            _close(bar)
    result = found.result
    if args.format == "json":
        print(json.dumps(found_json(found, target.function.qualname), ensure_ascii=False))
    else:
        print(render_table(result))
    if not result.found:
        print(f"neuraldbg: {result.summary()}", file=sys.stderr)
        return 1
    return 0


def render_table(result: SearchResult) -> str:
    if not result.found:
        return result.summary()
    width = max(len(f.call) for f in result.found)
    lines = [f"{'input':<{width}}  verdict    outcome", f"{'-' * width}  ---------  -------"]
    for f in result.found:
        verdict = "checked" if f.checked else "predicted"
        lines.append(f"{f.call:<{width}}  {verdict:<9}  {f.outcome}")
    lines.append(result.summary())
    return "\n".join(lines)


def _wait(done: "Future[FoundInputs]") -> FoundInputs:
    while True:  # a short timeout keeps the main thread responsive to Ctrl-C
        try:
            return done.result(timeout=0.2)
        except TimeoutError:
            continue


class _Bar:
    def __init__(self, total: int, label: str) -> None:
        from neuraldbg.eval.progress import Progress

        self.progress = Progress(total, label)

    def __call__(self, tried: int, budget: int, note: str) -> None:
        self.progress.total = budget
        self.progress.update(max(0, tried - self.progress.done), note)


def _bar(args: argparse.Namespace, backend: str) -> _Bar | None:
    """A progress bar on a terminal's stderr (nothing in a pipe: its lines would read as errors)."""
    if not sys.stderr.isatty():
        return None
    return _Bar(args.budget or (DEFAULT_BUDGET if runs_code(backend) else 8), "inputs")


def _close(bar: _Bar | None) -> None:
    if bar is not None:
        bar.progress.close()
