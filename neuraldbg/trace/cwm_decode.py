"""CWM output -> resolved frames in one call (parser + line mapper), and the
view of a frame that CWM can express, for round-trip comparisons."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_parse import StreamParser
from neuraldbg.trace.frames import Frame
from neuraldbg.trace.linemap import LineMapper
from neuraldbg.trace.tokenizer import TokenizerLike

CwmView = tuple[str, int, str, int, str | None, tuple[tuple[str, str], ...] | None]


def decode_trace(
    tok: TokenizerLike, ids: Iterable[int], source: str, functions: Sequence[FunctionInfo]
) -> list[Frame]:
    """Frames of generated ids (everything after the prompt's last
    ``<|frame_sep|>``); stops at the first end token."""
    parser = StreamParser(tok)
    mapper = LineMapper(source, functions)
    frames: list[Frame] = []
    for raw in parser.feed_ids(ids) + parser.close():
        if raw.end:
            break
        frames.append(mapper.push(raw))
    return frames


def frames_from_trace_text(text: str, source: str, functions: Sequence[FunctionInfo]) -> list[Frame]:
    """Frames of generated text in which special tokens appear as their names
    (what a text-returning engine gives back); stops at the first end token."""
    parser = StreamParser(None)
    mapper = LineMapper(source, functions)
    frames: list[Frame] = []
    for raw in parser.feed_text(text) + parser.close():
        if raw.end:
            break
        frames.append(mapper.push(raw))
    return frames


def cwm_view(frames: Iterable[Frame]) -> list[CwmView]:
    """What CWM can express of each frame: event, line, function, depth,
    value, and locals on call/line frames (order-insensitive); return and
    exception frames carry no locals in CWM, so theirs are left out."""
    out: list[CwmView] = []
    for f in frames:
        locals_ = tuple(sorted(f.locals.items())) if f.event in ("call", "line") else None
        value = f.value if f.event in ("return", "exception") else None
        out.append((f.event, f.line, f.function, f.depth, value, locals_))
    return out
