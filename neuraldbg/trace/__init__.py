"""Trace data model and the CWM codec."""

from neuraldbg.trace.cwm_decode import cwm_view, decode_trace, frames_from_trace_text
from neuraldbg.trace.cwm_encode import encode_frame, encode_trace, reference_locals
from neuraldbg.trace.cwm_parse import RawFrame, StreamParser
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import START_MARKER, TRACE_STOP_IDS
from neuraldbg.trace.frames import EVENTS, Event, Frame, LineVisit, Trace, TraceStatus
from neuraldbg.trace.linemap import LineMapper
from neuraldbg.trace.tokenizer import TextTokenizer, TokenizerLike

__all__ = [
    "EVENTS",
    "Event",
    "Frame",
    "LineMapper",
    "LineVisit",
    "RawFrame",
    "START_MARKER",
    "StreamParser",
    "TRACE_STOP_IDS",
    "TextTokenizer",
    "TokenizerLike",
    "Trace",
    "TraceStatus",
    "cwm_view",
    "decode_trace",
    "encode_frame",
    "encode_trace",
    "frames_from_trace_text",
    "mark_entry",
    "reference_locals",
    "trace_prompt_ids",
]
