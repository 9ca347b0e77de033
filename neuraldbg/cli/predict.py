"""The command line's runs: the settings its flags ask for and a run of
``FILE::FUNC`` opened in a session of its own (``trace``, ``debug``)."""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from neuraldbg.cli.errors import CliError
from neuraldbg.config import Settings
from neuraldbg.session.policy import ExecutionPolicy, Refused, imagines_inputs
from neuraldbg.session.runs import Run
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import resolve, split_spec
from neuraldbg.trace.frames import Trace


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        backend=args.backend,
        profile=args.model or "",
        url=args.url or "",
        api_key=args.api_key or os.environ.get("NEURALDBG_API_KEY", ""),
        temperature=args.temperature,  # None: the profile's (neuraldbg.simulation.sampling)
        seed=args.seed if args.seed is not None else 0,
        max_frames=args.max_frames,
        timeout_seconds=args.timeout,
        interpreter=_interpreter(args.interpreter),
        allow_execution=True,  # the user asked for it on the command line
    )


def _interpreter(name: str) -> str:
    """An absolute path for ``--interpreter`` (a name is looked up on PATH)."""
    if not name:
        return ""
    found = shutil.which(name)
    if found is None:
        raise CliError(f"--interpreter: no executable {name!r}")
    return os.path.abspath(found)


@contextmanager
def cli_session(args: argparse.Namespace, *, backend: str | None = None) -> Iterator[Session]:
    """A session with the flags' settings (``backend`` overrides theirs); its model is released at the end."""
    settings = settings_from_args(args)
    if backend is not None:
        settings = replace(settings, backend=backend)
    session = Session(settings, policy=ExecutionPolicy.command_line(), workers=1)
    try:
        yield session
    finally:
        session.engines.close()


@contextmanager
def cli_run(args: argparse.Namespace, *, backend: str | None = None) -> Iterator[Run]:
    """The run of ``args.target`` on the chosen backend for ``trace`` and
    ``debug``; backend, policy and simulation errors become one-line CLI errors."""
    from neuraldbg.backends.base import BackendError
    from neuraldbg.simulation.simulation import SimulationError

    with cli_session(args, backend=backend) as session:
        target = resolve(*split_spec(args.target), args.call, allow_imagined=imagines_inputs(session.settings.backend))
        try:
            yield session.open_run(target)
        except Refused as exc:
            raise CliError(f"{target.path}: {exc}") from None
        except (BackendError, SimulationError) as exc:
            raise CliError(str(exc)) from None


def trace_for_cli(args: argparse.Namespace, *, backend: str | None = None) -> tuple[Run, Trace]:
    """The whole trace; imagined inputs are written back as the call."""
    with cli_run(args, backend=backend) as run:
        trace = run.run_to_end()
    if not run.target.call and trace.frames:
        first = trace.frames[0]
        trace.call = f"{run.target.function.name}(" + ", ".join(f"{k}={v}" for k, v in first.locals.items()) + ")"
    return run, trace
