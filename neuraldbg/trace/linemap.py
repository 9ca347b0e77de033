"""Raw CWM frames -> resolved :class:`Frame` objects.

:class:`LineMapper` follows the call stack a trace implies and, frame by
frame: resolves ``..`` values, computes depths, and maps each emitted source
line back to a 1-based line number using the scope (only lines the current
function executes), the control flow (only lines the compiled code can run
next, see :mod:`neuraldbg.trace.lineflow`) and the order (the nearest
candidate after the scope's previous line, else the nearest before it, as
loops go back). The release's demo instead searched the whole file for the
text, so duplicate lines were ambiguous.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import DIFF
from neuraldbg.trace.cwm_parse import RawFrame
from neuraldbg.trace.cwm_prompt import split_lines_keepends, strip_marker
from neuraldbg.trace.frames import Event, Frame
from neuraldbg.trace.lineflow import LineFlow

log = logging.getLogger(__name__)

UNKNOWN_FUNCTION = "?"
_RESUME_RE = re.compile(r"\b(yield|await)\b")
_CLASS_RE = re.compile(r"\s*class\s+(\w+)")
_DEF_RE = re.compile(r"\s*(?:async\s+)?def\s+(\w+)")
_DEMO_WALK_LIMIT = 10_000  # frames; the scope fallback covers anything further back
# a function or bound method named in a repr (``<function outer.<locals>.inner at 0x1>``)
_FUNCTION_REPR_RE = re.compile(r"<(?:function|bound method) ([\w.<>]+)(?: at | of )")


def line_key(text: str) -> str:
    """What two lines are compared by: trailing whitespace and line end, and a
    trailing START marker (as a suffix), removed; indentation kept."""
    return strip_marker(text.rstrip("\r\n")).rstrip()


def _contains(outer: FunctionInfo, inner: FunctionInfo) -> bool:
    return outer.first_line <= inner.first_line and inner.end_line <= outer.end_line


def _functions_named(reprs: Iterable[str]) -> set[str]:
    """Qualnames (without ``<locals>``) of the functions and bound methods the reprs show."""
    return {m.replace(".<locals>", "") for r in reprs for m in _FUNCTION_REPR_RE.findall(r)}


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass(frozen=True)
class KnownCall:
    """Where a call frame is known to be (a real run's entry, forced as the
    tracer wrote it): mapped as is, not found again from its text."""

    line: int
    function: str


@dataclass(frozen=True)
class _CallTarget:
    function: FunctionInfo | None  # whose lines the new scope runs (the enclosing one for a lambda)
    qualname: str
    line: int
    alternatives: tuple[FunctionInfo, ...] = ()


@dataclass
class _Scope:
    function: FunctionInfo | None
    qualname: str
    depth: int
    last_line: int  # the last line mapped in this scope instance (0: none yet)
    locals: dict[str, str] = field(default_factory=dict)  # the last resolved call/line locals
    # other functions whose header had the same text as the call frame's line:
    # if the body's lines show one of them ran, the scope switches to it
    alternatives: tuple[FunctionInfo, ...] = ()


class LineMapper:
    """Turns :class:`RawFrame` objects into :class:`Frame` objects, one at a time.

    ``source`` is the document text (with or without the START marker);
    ``functions`` its function index. The mapper keeps the call stack, so
    frames must be pushed in trace order.
    """

    def __init__(self, source: str, functions: Sequence[FunctionInfo]) -> None:
        self._functions = sorted(functions, key=lambda f: (f.first_line, -f.end_line))
        keys = [line_key(line) for line in split_lines_keepends(source)]
        self._keys = keys
        self._flow = LineFlow(source)
        self._by_key: dict[str, list[int]] = {}
        self._by_stripped: dict[str, list[int]] = {}
        for number, key in enumerate(keys, start=1):
            self._by_key.setdefault(key, []).append(number)
            self._by_stripped.setdefault(key.strip(), []).append(number)
        # header lines (decorators and the def line) of each function, by text
        self._headers: dict[str, list[tuple[int, FunctionInfo]]] = {}
        for fn in self._functions:
            for number in range(fn.first_line, fn.def_line + 1):
                if 1 <= number <= len(keys):
                    self._headers.setdefault(keys[number - 1], []).append((number, fn))
        self._owned_cache: dict[int, frozenset[int]] = {}
        self._stack: list[_Scope] = []
        self._history: list[Frame] = []
        self._last_line_of: dict[str, int] = {}  # qualname -> last line when its scope last exited
        self._ran: set[int] = set()  # lines a line frame was mapped to: a nested def or lambda there exists

    # -- public API ------------------------------------------------------------
    @property
    def frames(self) -> list[Frame]:
        """The frames pushed so far."""
        return list(self._history)

    @property
    def depth(self) -> int:
        """Depth of the innermost open scope (-1 before the first call)."""
        return len(self._stack) - 1

    def push(self, raw: RawFrame, known: KnownCall | None = None) -> Frame:
        """The frame ``raw`` resolved; ``known``: a call frame's known position."""
        if raw.end or raw.event is None:
            raise ValueError("an end marker is not a frame")
        problems: list[str] = [raw.problem] if raw.problem else []
        event: Event = raw.event
        if event == "call":
            frame = self._push_call(raw, problems, known)
        else:
            frame = self._push_in_scope(raw, event, problems)
        self._history.append(frame)
        return frame

    def push_all(self, raws: Iterable[RawFrame]) -> list[Frame]:
        """Push every frame, skipping end markers."""
        return [self.push(raw) for raw in raws if not raw.end and raw.event is not None]

    # -- events ------------------------------------------------------------------
    def _push_call(self, raw: RawFrame, problems: list[str], known: KnownCall | None) -> Frame:
        caller = self._stack[-1] if self._stack else None
        depth = len(self._stack)
        key = line_key(raw.source_line)
        target = self._known_call(known) if known is not None else self._map_call(key, raw, caller)
        fn, line, qualname = target.function, target.line, target.qualname
        if line == 0:
            problems.append(f"line not in source: {_short(raw.source_line.rstrip())}")
        locals_: dict[str, str] = {}
        for name, value in raw.locals_raw.items():
            locals_[name] = value
            if value == DIFF:
                problems.append(f"'..' for {name!r} in a call frame")
        # the body starts after the def line; a resumed generator or a lambda goes on from its line
        start = line
        self._stack.append(
            _Scope(
                function=fn,
                qualname=qualname,
                depth=depth,
                last_line=start,
                locals=locals_,
                alternatives=target.alternatives,
            )
        )
        return self._frame(raw, "call", line, qualname, depth, locals_, problems)

    def _push_in_scope(self, raw: RawFrame, event: Event, problems: list[str]) -> Frame:
        if not self._stack:
            problems.append(f"{event} frame outside any call")
            self._stack.append(_Scope(function=None, qualname=UNKNOWN_FUNCTION, depth=0, last_line=0))
        scope = self._stack[-1]
        line = self._map_line(line_key(raw.source_line), event, scope, problems)
        if line == 0:
            problems.append(f"line not in source: {_short(raw.source_line.rstrip())}")
        else:
            scope.last_line = line
            if event == "line":
                self._ran.add(line)
        locals_: dict[str, str] = {}
        if event == "line":
            locals_ = self._resolve(raw.locals_raw, scope, problems)
            scope.locals = locals_
        frame = self._frame(raw, event, line, scope.qualname, scope.depth, locals_, problems)
        if event == "return":
            self._stack.pop()
            if scope.last_line:
                self._last_line_of[scope.qualname] = scope.last_line
        return frame

    @staticmethod
    def _frame(
        raw: RawFrame, event: Event, line: int, function: str, depth: int, locals_: dict[str, str], problems: list[str]
    ) -> Frame:
        return Frame(
            event=event,
            line=line,
            function=function,
            depth=depth,
            locals=locals_,
            value=raw.value if event in ("return", "exception") else None,
            source=raw.source_line.rstrip("\r\n"),
            problem="; ".join(dict.fromkeys(problems)) if problems else None,
        )

    # -- ".." resolution ---------------------------------------------------------
    def _resolve(self, raw: dict[str, str], scope: _Scope, problems: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in raw.items():
            if value != DIFF:
                out[name] = value
                continue
            found = self._demo_lookup(name)
            if found is None:
                found = scope.locals.get(name)
            if found is None or found == DIFF:
                problems.append(f"unresolved '..' for {name!r}")
                found = DIFF
            out[name] = found
        return out

    def _demo_lookup(self, name: str) -> str | None:
        """The release demo's rule: walk back to the first frame with a value
        for ``name``, stopping at a call/return boundary."""
        history = self._history
        for i in range(len(history) - 1, max(-1, len(history) - 1 - _DEMO_WALK_LIMIT), -1):
            frame = history[i]
            value = frame.locals.get(name)
            if value is not None and value != DIFF:
                return value
            if frame.event in ("call", "return"):
                return None
        return None

    # -- line mapping ------------------------------------------------------------
    def _known_call(self, known: KnownCall) -> _CallTarget:
        """The scope of a call at a known position: the function defined
        there under that name, else (a lambda, a class body) the function
        whose own lines hold it, as :meth:`_map_call` scopes them."""
        fn = next((f for f in self._functions if f.def_line == known.line and f.qualname == known.function), None)
        key = self._keys[known.line - 1] if 1 <= known.line <= len(self._keys) else ""
        if fn is None and key and not _CLASS_RE.match(key):
            fn = self._owner(known.line)
        # a function with the same header stays possible, as after a call mapped by its text
        others = tuple(dict.fromkeys(f for _, f in self._headers.get(key, ()) if f is not fn))
        return _CallTarget(fn, known.function, known.line, others)

    def _map_call(self, key: str, raw: RawFrame, caller: _Scope | None) -> _CallTarget:
        headers = self._headers.get(key)
        if not headers:
            stripped = key.strip()
            headers = [(n, fn) for k, hs in self._headers.items() if k.strip() == stripped for n, fn in hs]
        fns = list(dict.fromkeys(fn for _, fn in headers or ()))
        if "lambda" in key:
            # a lambda in a default or a decorator runs with its own arguments, not the function's
            fns = [fn for fn in fns if set(fn.params) <= set(raw.locals_raw)]
        if fns:
            fn = self._pick_callee(fns, raw.locals_raw, caller)
            # the def line, whichever header line was written (the tracer reports it so too)
            return _CallTarget(fn, fn.qualname, fn.def_line, tuple(f for f in fns if f is not fn))
        candidates = self._candidates(key)
        if not candidates:
            return _CallTarget(None, UNKNOWN_FUNCTION, 0)
        # a generator (or coroutine) resuming where it was suspended
        resumes = [c for c in candidates if _RESUME_RE.search(self._keys[c - 1])]
        owners = [o for o in (self._owner(c) for c in resumes) if o is not None]
        for owner in dict.fromkeys(owners):
            mine = [c for c in resumes if self._owner(c) is owner]
            last = self._last_line_of.get(owner.qualname, 0)
            return _CallTarget(owner, owner.qualname, self._choose(mine, last, "return"))
        # an anonymous scope: a lambda, or a class body run inside the traced code;
        # a lambda exists once its line ran (the same text elsewhere may never have)
        candidates = [c for c in candidates if c in self._ran] or candidates
        if caller is not None and caller.last_line in candidates:
            line = caller.last_line
        else:
            line = self._choose(candidates, caller.last_line if caller is not None else 0, "line")
        owner = self._owner(line)
        prefix = owner.qualname + "." if owner is not None else ""
        cls = _CLASS_RE.match(self._keys[line - 1])
        if cls is not None:
            return _CallTarget(None, prefix + cls.group(1), line)
        if "lambda" in self._keys[line - 1]:
            return _CallTarget(owner, prefix + "<lambda>", line)
        named = _DEF_RE.match(self._keys[line - 1])
        if named is not None:  # a def the function index does not know (stale or failed index)
            return _CallTarget(None, named.group(1), line)
        return _CallTarget(owner, owner.qualname if owner is not None else UNKNOWN_FUNCTION, line)

    def _pick_callee(self, fns: list[FunctionInfo], args: dict[str, str], caller: _Scope | None) -> FunctionInfo:
        """Among functions whose header has the call frame's text: the one
        whose parameters are the call's locals, then one a repr in the
        caller's locals names (``<function outer.<locals>.inner at ...>``,
        what it calls), then a method whose class the first argument's repr
        names, then one nested in or beside the caller, then one whose def
        ran in this trace (a nested def elsewhere may never have), then the
        first in the file."""
        if len(fns) == 1:
            return fns[0]
        names = tuple(args)
        exact = [fn for fn in fns if fn.params == names]
        same_set = [fn for fn in fns if set(fn.params) == set(names)]
        pool = exact or same_set or fns
        caller_name = caller.qualname if caller is not None else ""
        caller_parent = caller_name.rpartition(".")[0]
        first_repr = next(iter(args.values()), "")
        named = _functions_named(caller.locals.values()) if caller is not None else set()

        def rank(fn: FunctionInfo) -> tuple[int, int, int, int, int, int]:
            owner_class = fn.qualname.rpartition(".")[0].rpartition(".")[2]
            names_class = 0 if owner_class and re.search(rf"\b{re.escape(owner_class)}\b", first_repr) else 1
            nested = 0 if caller_name and fn.qualname.startswith(caller_name + ".") else 1
            sibling = 0 if fn.qualname.rpartition(".")[0] == caller_parent else 1
            return (0 if fn.qualname in named else 1), names_class, nested, sibling, self._exists(fn), fn.first_line

        return min(pool, key=rank)

    def _map_line(self, key: str, event: Event, scope: _Scope, problems: list[str]) -> int:
        candidates = self._candidates(key)
        if not candidates:
            return 0
        fn = scope.function
        if fn is None:
            line = self._choose(candidates, scope.last_line, event)
            owner = self._owner(line)
            if owner is not None and scope.qualname == UNKNOWN_FUNCTION:
                scope.function, scope.qualname = owner, owner.qualname  # adopt the function the lines show
            return line
        owned = self._owned(fn)
        inside = [c for c in candidates if c in owned]
        if inside:
            return self._choose(inside, scope.last_line, event)
        for alt in scope.alternatives:
            alt_inside = [c for c in candidates if c in self._owned(alt)]
            if alt_inside:
                # the call's header text was ambiguous and the body shows which function runs
                scope.function, scope.qualname, scope.alternatives = alt, alt.qualname, ()
                return self._choose(alt_inside, alt.def_line if scope.last_line == fn.def_line else scope.last_line, event)
        line = self._choose(candidates, scope.last_line, event)
        problems.append(f"line {line} is outside {fn.qualname}")
        return line

    def _candidates(self, key: str) -> list[int]:
        found = self._by_key.get(key)
        if found:
            return found
        return self._by_stripped.get(key.strip(), []) if key.strip() else []

    def _choose(self, candidates: list[int], previous: int, event: Event) -> int:
        """Line frames: among the candidates the compiled code allows after
        ``previous`` (all of them when it tells nothing), the nearest after
        ``previous``, else the nearest at or before it (a loop going back).
        Return/exception frames happen on the line just run: ``previous``
        itself first."""
        if len(candidates) == 1 or previous <= 0:
            return candidates[0]
        if event in ("return", "exception") and previous in candidates:
            return previous
        if event == "line":
            possible = self._flow.successors(previous)
            narrowed = [c for c in candidates if c in possible]
            if narrowed:
                candidates = narrowed
        after = bisect.bisect_right(candidates, previous)
        if after < len(candidates):
            return candidates[after]
        return candidates[after - 1]

    def _exists(self, fn: FunctionInfo) -> int:
        """0 when ``fn`` is known to exist: top level (or a method), or
        nested in a function that ran its def in this trace; else 1."""
        enclosing = [o for o in self._functions if o is not fn and _contains(o, fn)]
        if not enclosing:
            return 0
        return 0 if any(n in self._ran for n in range(fn.first_line, fn.def_line + 1)) else 1

    # -- function structure ------------------------------------------------------
    @staticmethod
    def _body_lines(fn: FunctionInfo) -> range:
        start = fn.body_start_line if fn.body_start_line > 0 else fn.def_line + 1
        if start > fn.end_line:  # a one-line def: the body is on the def line
            start = fn.end_line
        return range(start, fn.end_line + 1)

    def _nested_in(self, outer: FunctionInfo) -> list[FunctionInfo]:
        return [fn for fn in self._functions if fn is not outer and _contains(outer, fn)]

    def _owned(self, fn: FunctionInfo) -> frozenset[int]:
        """Lines that run in ``fn``'s own scope: its body minus nested function
        bodies, plus nested functions' header lines (decorators, def, defaults)."""
        cached = self._owned_cache.get(id(fn))
        if cached is not None:
            return cached
        lines = set(self._body_lines(fn))
        nested = self._nested_in(fn)
        for inner in nested:
            lines.difference_update(self._body_lines(inner))
        for inner in nested:
            if any(other is not inner and _contains(other, inner) for other in nested):
                continue  # a grandchild: its header runs in the child, not here
            header_end = (inner.body_start_line - 1) if inner.body_start_line > inner.def_line else inner.def_line
            lines.update(range(inner.first_line, header_end + 1))
        owned = frozenset(lines)
        self._owned_cache[id(fn)] = owned
        return owned

    def _owner(self, line: int) -> FunctionInfo | None:
        """The innermost function whose own scope runs ``line``."""
        best: FunctionInfo | None = None
        for fn in self._functions:
            if fn.first_line <= line <= fn.end_line and line in self._owned(fn):
                if best is None or fn.first_line >= best.first_line:
                    best = fn
        return best
