"""Score a predicted trace against the ground truth, frame by frame.

Frames are aligned by step index. A frame matches when everything CWM can
express of it is equal (:func:`~neuraldbg.trace.cwm_decode.cwm_view`): its
event, line, function and depth, the locals of a call/line frame (as
name -> repr, order-insensitive) and the value of a return/exception frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from neuraldbg.trace.cwm_decode import CwmView, cwm_view
from neuraldbg.trace.frames import Frame, Trace

_FIELDS = ("event", "line", "function", "depth", "value", "locals")


@dataclass(frozen=True)
class Divergence:
    """The first step at which the prediction differs from the real run.

    ``what`` is one of event, line, function, depth, value, locals, or
    ``length`` when one trace ended before the other. For ``locals``,
    ``names`` maps each differing name to its predicted and executed repr
    (None where the name is absent on that side).
    """

    step: int
    what: str
    predicted: Any
    executed: Any
    names: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """One line for a person: ``step 7: locals x: predicted '3' vs executed '4'``."""
        if self.what == "locals" and self.names:
            parts = [f"{n}: predicted {d['predicted'] if d['predicted'] is not None else '(absent)'} vs "
                     f"executed {d['executed'] if d['executed'] is not None else '(absent)'}"
                     for n, d in self.names.items()]
            return f"step {self.step}: locals " + "; ".join(parts)
        if self.what == "length":
            return f"step {self.step}: predicted {self.predicted} vs executed {self.executed}"
        return f"step {self.step}: {self.what}: predicted {self.predicted!r} vs executed {self.executed!r}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["text"] = self.text
        return out


@dataclass(frozen=True)
class TraceComparison:
    exact: bool  # same number of frames and every frame matches
    frame_accuracy: float  # matching frames / ground-truth frames (1.0 when both are empty)
    first_divergence: Divergence | None
    frames_predicted: int
    frames_truth: int


def compare_traces(predicted: Trace | list[Frame], truth: Trace | list[Frame]) -> TraceComparison:
    pred_frames = predicted.frames if isinstance(predicted, Trace) else predicted
    true_frames = truth.frames if isinstance(truth, Trace) else truth
    pv, tv = cwm_view(pred_frames), cwm_view(true_frames)
    matches = sum(1 for a, b in zip(pv, tv) if a == b)
    divergence = _first_divergence(pv, tv)
    accuracy = matches / len(tv) if tv else (1.0 if not pv else 0.0)
    return TraceComparison(
        exact=divergence is None,
        frame_accuracy=accuracy,
        first_divergence=divergence,
        frames_predicted=len(pv),
        frames_truth=len(tv),
    )


def _first_divergence(pv: list[CwmView], tv: list[CwmView]) -> Divergence | None:
    for step, (a, b) in enumerate(zip(pv, tv)):
        if a != b:
            return _what_differs(step, a, b)
    if len(pv) == len(tv):
        return None
    step = min(len(pv), len(tv))
    if len(pv) < len(tv):
        return Divergence(step, "length", "end of trace", _describe(tv[step]))
    return Divergence(step, "length", _describe(pv[step]), "end of trace")


def _what_differs(step: int, a: CwmView, b: CwmView) -> Divergence:
    for name, x, y in zip(_FIELDS, a, b):
        if x == y:
            continue
        if name != "locals":
            return Divergence(step, name, x, y)
        got, want = dict(x or ()), dict(y or ())
        names = {
            n: {"predicted": got.get(n), "executed": want.get(n)}
            for n in sorted(set(got) | set(want))
            if got.get(n) != want.get(n)
        }
        return Divergence(step, "locals", got, want, names)
    raise AssertionError("views differ but no field does")  # unreachable: tuples differ in some field


def _describe(view: CwmView) -> str:
    event, line, function, _depth, _value, _locals = view
    return f"{event} at line {line} in {function}"
