"""CWM model output -> raw frames, incrementally and tolerantly.

:class:`StreamParser` consumes generated ids (or text in which special tokens
appear as their names, from engines that return text) and yields a
:class:`RawFrame` as soon as a frame's closing ``<|frame_sep|>`` arrives.
Ordinary ids are decoded per segment once the segment is complete, so a
character split across tokens decodes correctly. Malformed output never
raises: the frame comes out with ``problem`` set and parsing resumes at the
next ``<|frame_sep|>``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, auto

from neuraldbg.trace.cwm_tokens import (
    ACTION_SEP,
    ARG_SEP,
    END_IDS,
    FRAME_SEP,
    SPECIAL_NAMES,
    TOKEN_EVENT,
    is_special,
    split_special_text,
)
from neuraldbg.trace.frames import Event
from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFrame:
    """One frame as the model wrote it (locals still diff-encoded).

    ``end`` marks the end of the trace (``<|end_of_text|>`` or a chat end
    token); such a marker carries no frame (``event`` is None).
    """

    event: Event | None
    locals_raw: dict[str, str] = field(default_factory=dict)
    source_line: str = ""  # as emitted, trailing newline included
    value: str | None = None
    problem: str | None = None
    end: bool = False

    @property
    def flagged(self) -> bool:
        return self.problem is not None


class _State(Enum):
    EVENT = auto()  # at a frame boundary, expecting an event token
    LOCALS = auto()  # after the event token, before <|action_sep|>
    SOURCE = auto()  # after <|action_sep|>
    VALUE = auto()  # after <|arg_sep|>
    SKIP = auto()  # malformed: dropping everything up to the next <|frame_sep|>


# A piece of a segment: an ordinary id (int) or ordinary text (str, from feed_text).
_Piece = int | str

# A possibly incomplete special name at the end of a text chunk: held back until more text arrives.
_PARTIAL_NAME_RE = re.compile(r"<(?:\|[A-Za-z0-9_]*\|?)?$")
_MAX_NAME = max(len(n) for n in SPECIAL_NAMES.values())


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class StreamParser:
    """Incremental parser of one request's (or one trace's) generated output.

    Feed it what the model produced after the prompt; the prompt itself
    (which ends with ``<|frame_sep|>``) is not fed. When the caller forces an
    event token by appending it to the prompt, it calls :meth:`parse_forced`
    so the parser knows the next frame's event was already consumed.
    """

    def __init__(self, tok: TokenizerLike | None = None) -> None:
        self._tok = tok
        self._state = _State.EVENT
        self._event: Event | None = None
        self._problems: list[str] = []
        self._locals_part: list[_Piece] = []
        self._source_part: list[_Piece] = []
        self._value_part: list[_Piece] = []
        self._saw_action = False
        self._saw_arg = False
        self._ended = False
        self._text_tail = ""  # held-back text that may be the start of a special name

    # -- public API --------------------------------------------------------
    @property
    def ended(self) -> bool:
        """True once an end token was seen."""
        return self._ended

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but its ``<|frame_sep|>`` has not arrived."""
        return self._state is not _State.EVENT or bool(self._text_tail)

    def feed_ids(self, ids: Iterable[int]) -> list[RawFrame]:
        out: list[RawFrame] = []
        for token_id in ids:
            token_id = int(token_id)  # numpy / torch scalars too
            if is_special(token_id):
                self._special(token_id, out)
            else:
                self._ordinary(token_id, out)
        return out

    def feed_text(self, text: str) -> list[RawFrame]:
        """Model output as text, special tokens written as their names."""
        text = self._text_tail + text
        self._text_tail = ""
        m = _PARTIAL_NAME_RE.search(text[-_MAX_NAME:]) if text else None
        if m is not None:
            cut = len(text) - (len(text[-_MAX_NAME:]) - m.start())
            text, self._text_tail = text[:cut], text[cut:]
        out: list[RawFrame] = []
        for piece in split_special_text(text):
            if isinstance(piece, int):
                self._special(piece, out)
            else:
                self._ordinary(piece, out)
        return out

    def parse_forced(self, event: Event) -> list[RawFrame]:
        """The caller appended ``event``'s token to the prompt: the next frame
        has that event and the model's output starts after it. Returns a
        frame cut off by this, if one was pending (flagged)."""
        out: list[RawFrame] = []
        if self._text_tail:
            tail, self._text_tail = self._text_tail, ""
            self._ordinary(tail, out)
        if self._state is not _State.EVENT:
            self._problems.append("frame cut off by a forced event")
            out.append(self._finish())
        self._start_frame(event)
        return out

    def close(self) -> list[RawFrame]:
        """End of input: a pending incomplete frame comes out flagged."""
        out: list[RawFrame] = []
        if self._text_tail:
            tail, self._text_tail = self._text_tail, ""
            self._ordinary(tail, out)
        if self._state is not _State.EVENT:
            self._problems.append("frame cut off (no closing <|frame_sep|>)")
            out.append(self._finish())
        return out

    # -- state machine -----------------------------------------------------
    def _ordinary(self, piece: _Piece, out: list[RawFrame]) -> None:
        state = self._state
        if state is _State.EVENT:
            if isinstance(piece, str) and not piece.strip() and not self._ended:
                # whitespace between frames from a text engine: not a frame
                return
            self._start_frame(None)
            self._problems.append("missing event token")
            state = self._state
        if state is _State.LOCALS:
            self._locals_part.append(piece)
        elif state is _State.SOURCE:
            self._source_part.append(piece)
        elif state is _State.VALUE:
            self._value_part.append(piece)
        # SKIP: dropped

    def _special(self, token_id: int, out: list[RawFrame]) -> None:
        state = self._state
        if token_id == FRAME_SEP:
            if state is _State.EVENT:
                self._start_frame(None)
                self._problems.append("empty frame")
            out.append(self._finish())
            return
        if token_id in END_IDS:
            if state is not _State.EVENT:
                self._problems.append(f"frame cut off by {SPECIAL_NAMES[token_id]}")
                out.append(self._finish())
            self._ended = True
            out.append(RawFrame(event=None, end=True))
            return
        if state is _State.SKIP:
            return
        event = TOKEN_EVENT.get(token_id)
        if state is _State.EVENT:
            if event is not None:
                self._start_frame(event)
                return
            self._start_frame(None)
            self._problems.append("missing event token")
            state = self._state
        if token_id == ACTION_SEP and state is _State.LOCALS:
            self._saw_action = True
            self._state = _State.SOURCE
            return
        if token_id == ARG_SEP and state in (_State.LOCALS, _State.SOURCE):
            if state is _State.LOCALS:
                self._problems.append("missing <|action_sep|>")
                self._move_locals_to_source_if_not_json()
            self._saw_arg = True
            self._state = _State.VALUE
            return
        self._problems.append(f"unexpected {SPECIAL_NAMES[token_id]} in frame")
        self._state = _State.SKIP

    def _start_frame(self, event: Event | None) -> None:
        self._state = _State.LOCALS
        self._event = event
        self._problems = ["output after end of trace"] if self._ended else []
        self._locals_part = []
        self._source_part = []
        self._value_part = []
        self._saw_action = False
        self._saw_arg = False

    def _move_locals_to_source_if_not_json(self) -> None:
        """Without <|action_sep|> the text seen so far is the locals if it looks
        like a JSON object, else most likely the source line."""
        text = self._decode(self._locals_part).lstrip()
        if not text.startswith("{"):
            self._source_part = self._locals_part
            self._locals_part = []

    def _finish(self) -> RawFrame:
        """Build the frame collected so far and reset to a frame boundary."""
        problems = self._problems
        if self._state in (_State.LOCALS,) and not self._saw_action:
            problems.append("missing <|action_sep|>")
            self._move_locals_to_source_if_not_json()
        locals_raw = self._parse_locals(self._decode(self._locals_part), problems)
        source_line = self._decode(self._source_part)
        value: str | None = None
        if self._saw_arg:
            value = self._parse_value(self._decode(self._value_part), problems)
        event = self._event
        if event is None:
            event = "return" if self._saw_arg else "line"
        elif event in ("return", "exception") and not self._saw_arg and self._state is not _State.SKIP:
            problems.append(f"{event} frame without a value")
        elif event in ("call", "line") and self._saw_arg:
            problems.append(f"value on a {event} frame")
        frame = RawFrame(
            event=event,
            locals_raw=locals_raw,
            source_line=source_line,
            value=value,
            problem="; ".join(dict.fromkeys(problems)) if problems else None,
        )
        if frame.problem is not None:
            log.debug("malformed frame: %s", frame.problem)
        self._state = _State.EVENT
        self._event = None
        self._problems = []
        self._locals_part = []
        self._source_part = []
        self._value_part = []
        self._saw_action = False
        self._saw_arg = False
        return frame

    # -- segment decoding ----------------------------------------------------
    def _decode(self, pieces: list[_Piece]) -> str:
        parts: list[str] = []
        run: list[int] = []
        for piece in pieces:
            if isinstance(piece, int):
                run.append(piece)
                continue
            if run:
                parts.append(self._decode_ids(run))
                run = []
            parts.append(piece)
        if run:
            parts.append(self._decode_ids(run))
        return "".join(parts)

    def _decode_ids(self, ids: list[int]) -> str:
        if self._tok is None:
            self._problems.append("token ids given but the parser has no tokenizer")
            return ""
        try:
            return self._tok.decode(ids)
        except Exception as exc:  # a tokenizer may reject out-of-range ids; the parser never raises
            self._problems.append(f"undecodable tokens ({type(exc).__name__})")
            return ""

    @staticmethod
    def _parse_locals(text: str, problems: list[str]) -> dict[str, str]:
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            problems.append(f"invalid JSON locals: {_short(text)}")
            return {}
        if not isinstance(data, dict):
            problems.append(f"locals are not a JSON object: {_short(text)}")
            return {}
        out: dict[str, str] = {}
        for key, val in data.items():
            if isinstance(val, str):
                out[key] = val
            else:
                problems.append(f"non-string value for {key!r}")
                out[key] = json.dumps(val)
        return out

    @staticmethod
    def _parse_value(text: str, problems: list[str]) -> str:
        stripped = text.strip()
        try:
            data = json.loads(stripped)
        except ValueError:
            problems.append(f"value is not JSON: {_short(stripped)}")
            return stripped
        if not isinstance(data, str):
            problems.append(f"value is not a JSON string: {_short(stripped)}")
            return json.dumps(data)
        return data


def parse_ids(tok: TokenizerLike, ids: Iterable[int]) -> list[RawFrame]:
    """All frames (and end markers) of a complete output."""
    parser = StreamParser(tok)
    return parser.feed_ids(ids) + parser.close()


def parse_text(text: str) -> list[RawFrame]:
    """All frames (and end markers) of a complete output given as text."""
    parser = StreamParser(None)
    return parser.feed_text(text) + parser.close()
