"""Resource limits for one sandboxed trace run."""

from __future__ import annotations

from dataclasses import dataclass, fields

from neuraldbg.config import frames_for


@dataclass(frozen=True)
class Limits:
    """What one traced run may use before it is stopped.

    ``memory_mb`` is address-space headroom on top of what the child already
    uses when it starts (RLIMIT_AS); ``max_file_mb`` bounds each file the
    program writes in its sandbox directory (RLIMIT_FSIZE). ``cpu_seconds``
    and ``max_frames`` left unset follow ``wall_seconds`` (the same seconds,
    :func:`~neuraldbg.config.frames_for` frames): a program that halts within
    the time limit is then not stopped first by a smaller CPU limit or a
    fixed frame cap, either of which would read as "may not halt".
    """

    wall_seconds: float = 10.0
    cpu_seconds: float | None = None  # None: wall_seconds (set in __post_init__)
    memory_mb: int = 512
    max_frames: int | None = None  # None: frames_for(wall_seconds) (set in __post_init__)
    max_repr: int = 300  # characters per repr; longer ones are cut with a visible marker
    max_file_mb: int = 16

    def __post_init__(self) -> None:
        wall = self.wall_seconds
        if isinstance(wall, (int, float)) and not isinstance(wall, bool) and wall > 0:
            if self.cpu_seconds is None:
                object.__setattr__(self, "cpu_seconds", wall)
            if self.max_frames is None:
                object.__setattr__(self, "max_frames", frames_for(wall))
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{spec.name} must be a positive number, got {value!r}")
