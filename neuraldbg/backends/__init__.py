"""Backends: turn token ids into more token ids (local GPUs, remote engines)."""
