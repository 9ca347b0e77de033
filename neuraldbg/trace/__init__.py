"""Trace data model and the CWM codec."""

from neuraldbg.trace.frames import EVENTS, Event, Frame, LineVisit, Trace, TraceStatus

__all__ = ["EVENTS", "Event", "Frame", "LineVisit", "Trace", "TraceStatus"]
