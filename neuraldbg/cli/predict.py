"""Run a whole trace on any backend for the command line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from neuraldbg.config import Settings
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.simulation.target import Target, resolve, split_spec
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
        allow_execution=True,  # the user asked for it on the command line
    )


@contextmanager
def cli_simulation(args: argparse.Namespace) -> Iterator[tuple[Target, Simulation]]:
    """The target and a Simulation on the chosen backend for ``trace`` and
    ``debug``; backend and simulation errors become one-line CLI errors."""
    from neuraldbg.backends.base import BackendError
    from neuraldbg.cli.errors import CliError
    from neuraldbg.simulation.factory import EngineFactory
    from neuraldbg.simulation.simulation import SimulationError

    settings = settings_from_args(args)
    target = resolve(*split_spec(args.target), args.call, allow_imagined=settings.backend in ("local", "remote"))
    factory = EngineFactory(require_permission=False)
    try:
        engine = factory.make(settings, source=target.source, index=target.index, function=target.function,
                              call=target.call, path=target.path)
        yield target, Simulation(engine, function=target.function.qualname, call=target.call or "<imagined>",
                                 max_frames=settings.max_frames)
    except (BackendError, SimulationError) as exc:
        raise CliError(str(exc)) from None
    finally:
        factory.close()


def predict_for_cli(args: argparse.Namespace) -> tuple[Target, Trace]:
    with cli_simulation(args) as (target, sim):
        trace = sim.run_to_end()
    if not target.call and trace.frames:
        first = trace.frames[0]
        trace.call = f"{target.function.name}(" + ", ".join(f"{k}={v}" for k, v in first.locals.items()) + ")"
    return target, trace
