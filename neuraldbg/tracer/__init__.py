"""The sandboxed ground-truth tracer: run a call in a child process under
``sys.settrace`` and return its executed :class:`~neuraldbg.trace.Trace`."""

from neuraldbg.tracer.limits import Limits
from neuraldbg.tracer.runner import run_trace, run_traces

__all__ = ["Limits", "run_trace", "run_traces"]
