"""``neuraldbg trace --score``: rate the real run under a model, in one prefill."""

from __future__ import annotations

import argparse

from neuraldbg.simulation.scoring import TraceScore, score_trace
from neuraldbg.simulation.target import Target
from neuraldbg.trace.frames import Trace


def score_for_cli(args: argparse.Namespace, target: Target, trace: Trace) -> TraceScore:
    """Score ``trace`` (the real run) under the model ``args`` name."""
    from neuraldbg.backends.base import BackendError, ScoringBackend
    from neuraldbg.cli.errors import CliError
    from neuraldbg.cli.predict import cli_session

    with cli_session(args) as session:
        try:
            backend, tok = session.engines.backend(session.settings)
            if not isinstance(backend, ScoringBackend):
                raise CliError(f"the {session.settings.backend} backend cannot score a trace")
            return score_trace(backend, tok, source=target.source, function=target.function, trace=trace)
        except BackendError as exc:
            raise CliError(str(exc)) from None


def render_score(score: TraceScore, trace: Trace) -> str:
    """A few lines: how far the model agrees with the real run, and where it first leaves it."""
    n = len(score.frames)
    agree = sum(f.agrees for f in score.frames)
    lines = [f"model agreement: {agree}/{n} frames (teacher-forced per-frame accuracy {score.frame_accuracy:.1%})"]
    first = score.first_divergence
    if first is None:
        lines.append("greedy decoding would reproduce the whole real run" + ("" if score.ends is not False else
                     ", but the model does not expect the trace to end there"))
        return "\n".join(lines)
    frame = trace.frames[first]
    where = next(f for f in score.frames if f.index == first).disagreement
    if where is None:
        return "\n".join(lines)
    what = {"locals": f"`{where.name}`" if where.name else "the locals", "line": "the next line",
            "value": "the returned value" if frame.event == "return" else "the exception", "event": "the event"}.get(
        where.part, where.part)
    lines.append(f"first divergence: step {first}, line {frame.line} ({frame.event}): the model expected {what} to "
                 f"start with {where.expected!r} (it gives the real one p={where.probability:.3g})")
    return "\n".join(lines)


def score_json(score: TraceScore) -> dict[str, object]:
    return {
        "frames": [{"step": f.index, "agrees": f.agrees, "probability": f.probability,
                    "disagreement": None if f.disagreement is None else vars(f.disagreement)} for f in score.frames],
        "first_divergence": score.first_divergence,
        "frame_accuracy": score.frame_accuracy,
        "ends": score.ends,
        "tokens": score.tokens,
    }
