"""Code lenses above traceable functions (pure: no LSP types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuraldbg.session.policy import MODEL_PATH, imagines_inputs
from neuraldbg.source.model import FunctionInfo

CMD_SIMULATE = "neuraldbg.simulate"
CMD_RESAMPLE = "neuraldbg.resample"
CMD_VERIFY = "neuraldbg.verify"
CMD_SET_ENTRY = "neuraldbg.setEntry"
COMMANDS = (CMD_SIMULATE, CMD_RESAMPLE, CMD_VERIFY, CMD_SET_ENTRY)



@dataclass(frozen=True)
class Lens:
    line: int  # 1-based line the lens sits above (the def line)
    title: str
    command: str
    arguments: list[Any]


def lenses_for(fn: FunctionInfo, uri: str, call: str | None, input_origin: str, *, backend: str,
               allow_execution: bool) -> list[Lens]:
    """``call`` None: no input known (the lens asks for one)."""
    out: list[Lens] = []
    line = fn.def_line
    if call is None:
        out.append(Lens(line, f"▶ Simulate {fn.name}(…): set an input", CMD_SET_ENTRY, [uri, fn.qualname]))
        return out
    shown = call if call else f"{fn.name}(…) with imagined input"
    out.append(Lens(line, f"▶ Simulate {shown}", CMD_SIMULATE, [uri, fn.qualname, call]))
    if imagines_inputs(backend):
        out.append(Lens(line, "↻ Resample input", CMD_RESAMPLE, [uri, fn.qualname]))
    if allow_execution and backend in MODEL_PATH and call:
        out.append(Lens(line, "✓ Verify with a real run", CMD_VERIFY, [uri, fn.qualname, call]))
    return out
