"""Typed settings, parsed from LSP initialization options / workspace
configuration or from CLI flags. Unknown keys are ignored, bad values fall
back to defaults with a message (never an exception at the protocol edge)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

BACKENDS: tuple[str, ...] = ("exec", "local", "remote", "replay")
# The default frame budget of a real run grows with its time limit: the
# tracer records well over this many frames a second of plain Python, so a
# run that halts in time is not cut short by a fixed cap. Predicted traces
# keep a fixed cap: a model's frames cost tokens, not tracer time.
FRAMES_PER_SECOND = 10_000
PREDICTED_MAX_FRAMES = 2000


def frames_for(seconds: float) -> int:
    """The frame budget of a real run of ``seconds``."""
    return max(1, int(FRAMES_PER_SECOND * seconds))


def default_max_frames(backend: str, timeout_seconds: float) -> int:
    """The frame budget when maxFrames is not set: real runs (exec, replay)
    scale with the time limit, predicted ones do not."""
    return frames_for(timeout_seconds) if backend in ("exec", "replay") else PREDICTED_MAX_FRAMES

_KEYS = {
    "backend": "backend",
    "profile": "profile",
    "url": "url",
    "apiKey": "api_key",
    "temperature": "temperature",
    "seed": "seed",
    "maxFrames": "max_frames",
    "timeoutSeconds": "timeout_seconds",
    "allowExecution": "allow_execution",
    "debounceMs": "debounce_ms",
    "scoreRealRuns": "score_real_runs",
    "interpreter": "interpreter",
}


@dataclass(frozen=True)
class Settings:
    backend: str = "exec"
    profile: str = ""
    url: str = ""
    api_key: str = ""
    temperature: float | None = None  # None: the model profile's [sampling] (neuraldbg.simulation.sampling)
    seed: int = 0
    max_frames: int = 0  # 0: default_max_frames(backend, timeout_seconds), kept in step with them
    timeout_seconds: float = 10.0
    interpreter: str = ""  # the Python that runs the user's program ("": the server's own)
    allow_execution: bool = False
    debounce_ms: int = 150
    # Rate the real run under the model (model backends with allow_execution): one prefill per trace.
    score_real_runs: bool = True
    # The default max_frames was derived as (-1: max_frames was set): a
    # replace() that changes the backend or the time limit derives it anew.
    _default_frames: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        derived = default_max_frames(self.backend, self.timeout_seconds)
        if self.max_frames == 0 or self.max_frames == self._default_frames:
            object.__setattr__(self, "max_frames", derived)
            object.__setattr__(self, "_default_frames", derived)
        else:
            object.__setattr__(self, "_default_frames", -1)

    @property
    def sampling_key(self) -> tuple[float | None, int]:
        return (self.temperature, self.seed)

    def merged(self, data: Any) -> tuple["Settings", list[str]]:
        """Settings updated from a client's JSON object (camelCase keys).

        Returns the new settings and a list of problems (bad values kept at
        their previous value)."""
        if not isinstance(data, dict):
            return self, ([] if data is None else [f"settings must be an object, got {type(data).__name__}"])
        if isinstance(data.get("neuraldbg"), dict):
            data = data["neuraldbg"]
        problems: list[str] = []
        changes: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(self)}
        for key, value in data.items():
            attr = _KEYS.get(key)
            if attr is None or value is None:
                continue
            want = str(types[attr]).removesuffix(" | None")  # a None value was skipped above
            try:
                if want == "bool":
                    if not isinstance(value, bool):
                        raise TypeError
                    changes[attr] = value
                elif want == "int":
                    if isinstance(value, bool):
                        raise TypeError
                    changes[attr] = int(value)
                elif want == "float":
                    if isinstance(value, bool):
                        raise TypeError
                    changes[attr] = float(value)
                else:
                    if not isinstance(value, str):
                        raise TypeError
                    changes[attr] = value
            except (TypeError, ValueError, OverflowError):
                problems.append(f"setting {key}: bad value {value!r}")
        if "backend" in changes and changes["backend"] not in BACKENDS:
            problems.append(f"setting backend: unknown backend {changes.pop('backend')!r} (use one of {', '.join(BACKENDS)})")
        if changes.get("max_frames", 1) < 1:
            problems.append("setting maxFrames must be at least 1")
            changes.pop("max_frames")
        if "interpreter" in changes:
            path = changes["interpreter"] = os.path.expanduser(changes["interpreter"].strip())
            why = _not_an_interpreter(path)
            if why:
                kept = self.interpreter or "the server's own Python"
                problems.append(f"setting interpreter: {path!r} {why}; using {kept}")
                changes.pop("interpreter")
        return replace(self, **changes), problems


def _not_an_interpreter(path: str) -> str | None:
    """Why ``path`` cannot be the interpreter ("" can: the server's own), or
    None. Whether it is a Python the tracer can use is found out when the
    tracer asks it (a trace error says why not)."""
    if not path:
        return None
    if not os.path.isabs(path):
        return "is not an absolute path"
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return "is not an executable file"
    return None
