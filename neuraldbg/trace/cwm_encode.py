"""Frames -> CWM token ids.

    <event> [LOCALS] <|action_sep|> SOURCE_LINE\\n [<|arg_sep|> VALUE] <|frame_sep|>

LOCALS (call/line only) is ``json.dumps(dict)`` with Python's default
settings, values being repr strings or ``".."`` (diff encoding); VALUE
(return/exception only) is ``json.dumps(repr)``. This is byte for byte what
the release's demo (demos/cwmdbg.py) sends. Each frame is encoded once, so a
caller that keeps the ids of earlier frames never re-encodes a prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from neuraldbg.trace.cwm_prompt import strip_marker
from neuraldbg.trace.cwm_tokens import ACTION_SEP, ARG_SEP, EOT, EVENT_TOKEN, FRAME_SEP
from neuraldbg.trace.frames import Frame, Trace
from neuraldbg.trace.tokenizer import TokenizerLike

DIFF = ".."  # the value CWM writes for "unchanged since the reference frame"


def diff_locals(full: dict[str, str], reference: dict[str, str] | None) -> dict[str, str]:
    """``full`` with every value equal to the reference's value replaced by ``..``."""
    if reference is None:
        return dict(full)
    return {k: (DIFF if k in reference and reference[k] == v else v) for k, v in full.items()}


def source_line_text(frame: Frame) -> str:
    """The action as CWM writes it: the raw line (indentation kept), no START
    marker, ending with exactly one newline."""
    line = strip_marker(frame.source).rstrip("\r\n")
    return line + "\n"


def encode_frame(tok: TokenizerLike, frame: Frame, prev_locals: dict[str, str] | None) -> list[int]:
    """Ids of one frame, ending with ``<|frame_sep|>``.

    ``prev_locals``: the full locals of the reference frame for the diff
    encoding (see :func:`reference_locals`); ignored for call frames, which
    are always written in full.
    """
    ids = [EVENT_TOKEN[frame.event]]
    if frame.event in ("call", "line"):
        shown = frame.locals if frame.event == "call" else diff_locals(frame.locals, prev_locals)
        ids += tok.encode(json.dumps(shown))
    ids.append(ACTION_SEP)
    ids += tok.encode(source_line_text(frame))
    if frame.event in ("return", "exception"):
        ids.append(ARG_SEP)
        ids += tok.encode(json.dumps(frame.value if frame.value is not None else "None"))
    ids.append(FRAME_SEP)
    return ids


def reference_index(frames: Sequence[Frame], index: int) -> int | None:
    """Index of the frame whose locals the frame at ``index`` is diffed against.

    Walk back from the previous frame, skipping exception frames of the same
    depth; a call/line frame of the same depth is the reference; a return
    frame or a frame of another depth first means none. This is exactly what
    the demo's decoder can resolve (it walks back to a non-``..`` value and
    stops at a call/return boundary).
    """
    depth = frames[index].depth
    for i in range(index - 1, -1, -1):
        prev = frames[i]
        if prev.depth != depth:
            return None
        if prev.event in ("call", "line"):
            return i
        if prev.event == "return":
            return None
        # an exception frame of the same scope carries no locals: keep walking
    return None


def reference_locals(frames: Sequence[Frame], index: int) -> dict[str, str] | None:
    ref = reference_index(frames, index)
    return None if ref is None else frames[ref].locals


def frame_id_lists(tok: TokenizerLike, frames: Sequence[Frame]) -> list[list[int]]:
    """Each frame's ids, diff-encoded against its reference as the model writes them."""
    return [encode_frame(tok, f, reference_locals(frames, i) if f.event == "line" else None) for i, f in enumerate(frames)]


def encode_frames(tok: TokenizerLike, frames: Sequence[Frame]) -> list[int]:
    return [t for chunk in frame_id_lists(tok, frames) for t in chunk]


def encode_trace(tok: TokenizerLike, trace: Trace) -> list[int]:
    """All frames, then ``<|end_of_text|>`` if the trace is complete."""
    ids = encode_frames(tok, trace.frames)
    if trace.status == "complete":
        ids.append(EOT)
    return ids
