"""neuraldbg: a neural debugger for Python editors."""

__version__ = "0.1.0"
