"""``neuraldbg fill FILE::FUNC``: fill the ``??`` holes of a function from the
terminal, as the editor's "Fill all holes" code action does.

On exec/replay the fill is found by search and judged by real runs of the
function's doctest or ``__main__`` call; on a model backend CWM writes it in
chat mode (with reasoning: a terminal can wait) and, where the function has
an input, a real run checks it. The result is shown as a unified diff;
``--write`` applies it, but only a fill that passed (or could not be
checked).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from neuraldbg.holes.search import (
    ChatFiller,
    Filler,
    FillError,
    FillRequest,
    RunChecker,
    SearchFiller,
    apply_fills,
    fill_title,
    first_fill,
    tracer_runner,
)
from neuraldbg.session.policy import runs_code
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import resolve, split_spec


def add_fill_parser(sub: argparse._SubParsersAction, add_backend_args) -> None:  # type: ignore[type-arg]
    f = sub.add_parser("fill", help="fill the ?? holes of a function (search on exec, CWM on model backends)")
    f.add_argument("target", metavar="FILE::FUNC")
    f.add_argument("--write", action="store_true", help="write the filled function back to FILE (only a fill that passed)")
    f.add_argument("--max-tokens", type=int, default=2048, help="generation budget of a model fill (reasoning included)")
    add_backend_args(f)


def _fillers(args: argparse.Namespace, session: Session) -> list[Filler]:
    """The fillers for the chosen backend (a model backend is loaded by the session)."""
    from neuraldbg.simulation.sampling import chat_sampling

    settings = session.settings
    runner = tracer_runner(settings.timeout_seconds, settings.max_frames)
    if runs_code(settings.backend):
        return [SearchFiller(runner)]
    backend, tok = session.engines.backend(settings)
    sampling = chat_sampling(settings, max_tokens=args.max_tokens)
    return [ChatFiller(backend, tok, sampling=sampling, reasoning=True, checker=RunChecker(runner))]


def cmd_fill(args: argparse.Namespace) -> int:
    from neuraldbg.backends.base import BackendError
    from neuraldbg.cli.errors import CliError
    from neuraldbg.cli.predict import cli_session

    path, qualname = split_spec(args.target)
    target = resolve(path, qualname, None, allow_imagined=True)
    fn = target.function
    holes = tuple(h for h in target.index.holes if h.function == fn.qualname)
    if not holes:
        raise CliError(f"{path}: {fn.qualname} has no ?? hole to fill")
    request = FillRequest(source=target.source, index=target.index, function=fn, holes=holes, path=path)
    with cli_session(args) as session:
        try:
            result = first_fill(_fillers(args, session), request)
        except FillError as exc:
            print(f"neuraldbg: no fill for {fn.qualname}: {exc}", file=sys.stderr)
            return 1
        except BackendError as exc:
            raise CliError(str(exc)) from None
    filled = apply_fills(target.source, holes, result.texts)
    print(fill_title(result, len(holes) == 1, fn))
    sys.stdout.writelines(difflib.unified_diff(target.source.splitlines(keepends=True), filled.splitlines(keepends=True),
                                               fromfile=path, tofile=f"{path} (filled)"))
    passed = result.check is None or result.check.passed
    if args.write:
        if not passed:
            print(f"neuraldbg: {path} not written: the fill fails its check", file=sys.stderr)
            return 1
        Path(path).write_text(filled, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0 if passed else 1
