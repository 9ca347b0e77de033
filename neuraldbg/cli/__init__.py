"""The ``neuraldbg`` command."""

from neuraldbg.cli.main import main

__all__ = ["main"]
