"""Resource limits for one sandboxed trace run."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """What one traced run may use before it is stopped.

    ``memory_mb`` is address-space headroom on top of what the child already
    uses when it starts (RLIMIT_AS); ``max_file_mb`` bounds each file the
    program writes in its sandbox directory (RLIMIT_FSIZE).
    """

    wall_seconds: float = 10.0
    cpu_seconds: float = 5.0
    memory_mb: int = 512
    max_frames: int = 10_000
    max_repr: int = 300  # characters per repr; longer ones are cut with a visible marker
    max_file_mb: int = 16

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{spec.name} must be a positive number, got {value!r}")
