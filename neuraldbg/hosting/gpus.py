"""The GPUs a plan is for: a ``--gpus`` spec, or this host's (torch, else nvidia-smi).

torch is imported inside functions: listing GPUs from nvidia-smi needs none of it.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

GIB = 1024**3


class DoctorError(ValueError):
    """Bad doctor input (one clear line for the user)."""


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    total_gib: float
    free_gib: float | None = None


_GPU_ENTRY = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+(?:\.\d+)?)\s*(?:gib|gb|g)?\s*$", re.IGNORECASE)


def parse_gpus(spec: str) -> list[GpuInfo]:
    """Parse ``COUNTxGIB[,COUNTxGIB...]`` (e.g. ``2x80``, ``4x40,1x80``).

    ``none`` / ``cpu`` / ``0`` mean a host without GPUs. The size is the
    total memory per GPU in GiB, as nvidia-smi reports it (an "80 GB" card
    is about 80).
    """
    text = (spec or "").strip()
    if text.lower() in ("none", "cpu", "0"):
        return []
    if not text:
        raise DoctorError("empty --gpus: expected COUNTxGIB, e.g. 2x80 or 4x40,1x80 (or 'none')")
    gpus: list[GpuInfo] = []
    for entry in text.split(","):
        m = _GPU_ENTRY.match(entry)
        if not m:
            raise DoctorError(f"bad --gpus entry {entry.strip()!r}: expected COUNTxGIB, e.g. 2x80 or 4x40,1x80")
        count, size = int(m.group(1)), float(m.group(2))
        if count < 1 or count > 64:
            raise DoctorError(f"bad --gpus entry {entry.strip()!r}: the count must be 1..64")
        if size <= 0 or size > 4096:
            raise DoctorError(f"bad --gpus entry {entry.strip()!r}: the memory must be 0..4096 GiB")
        for _ in range(count):
            gpus.append(GpuInfo(index=len(gpus), name=f"{size:g} GiB GPU", total_gib=size))
    return gpus


def detect_gpus() -> list[GpuInfo]:
    """This host's GPUs: torch.cuda when it sees any, else nvidia-smi, else []."""
    gpus = _gpus_from_torch()
    if gpus:
        return gpus
    return _gpus_from_nvidia_smi()


def _gpus_from_torch() -> list[GpuInfo]:
    try:
        import torch
    except ImportError:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            try:
                free, _total = torch.cuda.mem_get_info(i)
                free_gib: float | None = free / GIB
            except RuntimeError:
                free_gib = None
            out.append(GpuInfo(index=i, name=props.name, total_gib=props.total_memory / GIB, free_gib=free_gib))
        return out
    except RuntimeError as exc:  # a broken driver must not break the doctor
        log.warning("torch.cuda failed: %s", exc)
        return []


def _gpus_from_nvidia_smi() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed: %s", exc)
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total,memory.free --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            gpus.append(GpuInfo(int(parts[0]), parts[1], float(parts[2]) / 1024, float(parts[3]) / 1024))
        except ValueError:
            continue
    return gpus
