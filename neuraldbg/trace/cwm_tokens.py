"""CWM's special tokens: ids, names, and the event <-> token maps.

Ids and names are those of the released tokenizer (facebookresearch/cwm,
``cwm/text/tokenizers.py``): 128,000 BPE ranks followed by 256 reserved
special tokens; the unnamed ones are ``<|reserved_special_token_N|>`` where N
is the offset from 128000.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from neuraldbg.trace.frames import Event

if TYPE_CHECKING:
    from neuraldbg.trace.tokenizer import TokenizerLike

SPECIAL_BASE = 128000  # first special id; everything below is an ordinary BPE rank
NUM_SPECIAL = 256
VOCAB_SIZE = SPECIAL_BASE + NUM_SPECIAL

BOS = 128000
EOT = 128001  # <|end_of_text|>: the trace ended (entry scope exited)
PAD = 128004
START_HEADER = 128006
END_HEADER = 128007
EOM_ID = 128008
EOT_ID = 128009
FRAME_SEP = 128100
ACTION_SEP = 128101
RETURN_SEP = 128102
CALL_SEP = 128103
LINE_SEP = 128104
EXCEPTION_SEP = 128105
ARG_SEP = 128106
TRACE_CONTEXT_START = 128107
THINKING_START = 128120
THINKING_END = 128121

_NAMED: dict[int, str] = {
    BOS: "<|begin_of_text|>",
    EOT: "<|end_of_text|>",
    PAD: "<|pad|>",
    START_HEADER: "<|start_header_id|>",
    END_HEADER: "<|end_header_id|>",
    EOM_ID: "<|eom_id|>",
    EOT_ID: "<|eot_id|>",
    FRAME_SEP: "<|frame_sep|>",
    ACTION_SEP: "<|action_sep|>",
    RETURN_SEP: "<|return_sep|>",
    CALL_SEP: "<|call_sep|>",
    LINE_SEP: "<|line_sep|>",
    EXCEPTION_SEP: "<|exception_sep|>",
    ARG_SEP: "<|arg_sep|>",
    TRACE_CONTEXT_START: "<|trace_context_start|>",
    THINKING_START: "<|reasoning_thinking_start|>",
    THINKING_END: "<|reasoning_thinking_end|>",
}

# All 256 special names, id -> name and name -> id (immutable mappings by convention).
SPECIAL_NAMES: dict[int, str] = {
    i: _NAMED.get(i, f"<|reserved_special_token_{i - SPECIAL_BASE}|>")
    for i in range(SPECIAL_BASE, VOCAB_SIZE)
}
SPECIAL_IDS: dict[str, int] = {name: i for i, name in SPECIAL_NAMES.items()}

EVENT_TOKEN: dict[Event, int] = {
    "call": CALL_SEP,
    "line": LINE_SEP,
    "return": RETURN_SEP,
    "exception": EXCEPTION_SEP,
}
TOKEN_EVENT: dict[int, Event] = {tok: ev for ev, tok in EVENT_TOKEN.items()}

END_IDS: frozenset[int] = frozenset({EOT, EOM_ID, EOT_ID})
# What a trace-mode request stops on: the end of one frame, or the end of the trace.
TRACE_STOP_IDS: tuple[int, ...] = (FRAME_SEP, EOT, EOM_ID, EOT_ID)

START_MARKER = "  # << START_OF_TRACE"
START_MARKER_TEXT = START_MARKER.strip()  # "# << START_OF_TRACE", what suffix checks look for

_SPECIAL_NAME_RE = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def is_special(token_id: int) -> bool:
    return SPECIAL_BASE <= token_id < VOCAB_SIZE


def special_name(token_id: int) -> str:
    """``<|frame_sep|>`` for 128100; raises KeyError for an ordinary id."""
    return SPECIAL_NAMES[token_id]


def split_special_text(text: str) -> list[str | int]:
    """Split text in which special tokens are written as their names into
    ordinary text pieces (str) and special ids (int).

    Only for model OUTPUT returned as text by a remote engine; never apply it
    to user source (that is how a special token would be smuggled in).
    """
    out: list[str | int] = []
    pos = 0
    for m in _SPECIAL_NAME_RE.finditer(text):
        token_id = SPECIAL_IDS.get(m.group(0))
        if token_id is None:
            continue  # looks like a special name but is not one: ordinary text
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(token_id)
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def render(tok: "TokenizerLike", ids: Iterable[int]) -> str:
    """Readable text of an id sequence: ordinary runs decoded with ``tok``,
    special ids written as their names (the exact CWM text)."""
    parts: list[str] = []
    run: list[int] = []
    for token_id in ids:
        if is_special(token_id):
            if run:
                parts.append(tok.decode(run))
                run = []
            parts.append(SPECIAL_NAMES[token_id])
        else:
            run.append(token_id)
    if run:
        parts.append(tok.decode(run))
    return "".join(parts)


def ids_from_text(tok: "TokenizerLike", text: str) -> list[int]:
    """The inverse of :func:`render` for trusted text (tests, fixtures):
    special names become special ids, the rest is encoded with ``tok``."""
    ids: list[int] = []
    for piece in split_special_text(text):
        if isinstance(piece, int):
            ids.append(piece)
        else:
            ids.extend(tok.encode(piece))
    return ids


def ordinary_only(ids: Sequence[int]) -> bool:
    return not any(is_special(i) for i in ids)
