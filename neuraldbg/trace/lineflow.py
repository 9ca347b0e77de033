"""Which line can run next: line-to-line transitions read from the compiled code.

The line mapper uses this to tell identical lines apart: after ``if c:`` on
line 3, ``a.append(w)`` is line 7 (the ``else`` branch), not line 5 (inside the
``if`` body, only reachable through line 4). Transitions follow CPython's
line-event rule: an event fires when execution reaches a different line, or
jumps backward (a loop on one line). Exception handlers are reachable from
every instruction of their ``try``. Nothing is executed; source that does not
compile (a half-typed edit, a ``??`` hole) gives no information.
"""

from __future__ import annotations

import dis
import logging
from dataclasses import dataclass
from types import CodeType

log = logging.getLogger(__name__)

# Instructions after which execution does not fall through to the next one.
_NO_FALL_THROUGH = frozenset(
    {
        "RETURN_VALUE",
        "RETURN_CONST",
        "RAISE_VARARGS",
        "RERAISE",
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP_ABSOLUTE",
        "JUMP",
        "JUMP_NO_INTERRUPT",
    }
)
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


@dataclass(frozen=True)
class _Code:
    offsets: tuple[int, ...]
    lines: tuple[int | None, ...]
    edges: tuple[tuple[int, ...], ...]  # successor instruction indices


def _analyse(code: CodeType) -> _Code:
    instructions = list(dis.get_instructions(code))
    index = {ins.offset: i for i, ins in enumerate(instructions)}
    edges: list[list[int]] = [[] for _ in instructions]
    for i, ins in enumerate(instructions):
        if ins.opname not in _NO_FALL_THROUGH and i + 1 < len(instructions):
            edges[i].append(i + 1)
        if ins.opcode in _JUMPS and isinstance(ins.argval, int) and ins.argval in index:
            edges[i].append(index[ins.argval])
    for entry in dis.Bytecode(code).exception_entries:
        target = index.get(entry.target)
        if target is None:
            continue
        for i, ins in enumerate(instructions):
            if entry.start <= ins.offset < entry.end:
                edges[i].append(target)
    lines = tuple(ins.positions.lineno if ins.positions is not None else None for ins in instructions)
    return _Code(tuple(ins.offset for ins in instructions), lines, tuple(tuple(e) for e in edges))


class LineFlow:
    """``successors(line)``: the lines whose line event can follow one of ``line``."""

    def __init__(self, source: str) -> None:
        self._codes: list[_Code] | None = None
        self._source = source
        self._cache: dict[int, frozenset[int]] = {}

    @property
    def available(self) -> bool:
        return bool(self._load())

    def _load(self) -> list[_Code]:
        if self._codes is None:
            self._codes = []
            try:
                top = compile(self._source, "<neuraldbg>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
                log.debug("no line flow: %s", exc)
                return self._codes
            pending = [top]
            while pending:
                code = pending.pop()
                try:
                    self._codes.append(_analyse(code))
                except Exception as exc:  # an interpreter whose bytecode we do not read: no information
                    log.debug("no line flow for %s: %s", code.co_name, exc)
                pending.extend(c for c in code.co_consts if isinstance(c, CodeType))
        return self._codes

    def successors(self, line: int) -> frozenset[int]:
        cached = self._cache.get(line)
        if cached is not None:
            return cached
        found: set[int] = set()
        for code in self._load():
            starts = [i for i, ln in enumerate(code.lines) if ln == line]
            seen: set[int] = set()
            stack = list(starts)
            while stack:
                i = stack.pop()
                for j in code.edges[i]:
                    target_line = code.lines[j]
                    backward = code.offsets[j] <= code.offsets[i]
                    if target_line is not None and (target_line != line or backward):
                        found.add(target_line)
                    elif j not in seen:
                        seen.add(j)
                        stack.append(j)
        result = frozenset(found)
        self._cache[line] = result
        return result
