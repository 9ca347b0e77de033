"""Walk one group of top-level statements and collect what the index needs.

A *group* is a run of consecutive top-level statements (plus the blank and
comment lines after them) that starts at a line start. Its result depends
only on its own bytes and hole positions, and all its lines and rows are
relative to its first row, so the index can reuse a group's result after an
edit elsewhere and only shift it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node, Parser

from neuraldbg.source.calls import CallError, parse_call
from neuraldbg.source.doctests import doctest_calls
from neuraldbg.source.model import BreakpointCall, EntryPoint, FunctionInfo, Hole, Span, SyntaxProblem
from neuraldbg.source.syntax import error_problem, judge, missing_problem
from neuraldbg.source.treesitter import new_parser

log = logging.getLogger(__name__)

_MARKER = re.compile(r"#\s*<<\s*START_OF_TRACE\b:?(.*)$", re.DOTALL)
_MAIN_CONDITIONS = ('__name__=="__main__"', '"__main__"==__name__')
# Identifiers in these places are names being declared, not expressions: a
# "??" there is not a hole.
_DECLARING_PARENTS = frozenset(
    {
        "parameters",
        "lambda_parameters",
        "typed_parameter",
        "list_splat_pattern",
        "dictionary_splat_pattern",
        "dotted_name",
        "aliased_import",
        "import_statement",
        "import_from_statement",
        "global_statement",
        "nonlocal_statement",
    }
)
_NAMED_BY_FIELD = frozenset(
    {"function_definition", "class_definition", "default_parameter", "typed_default_parameter", "keyword_argument"}
)
_TRAILING_TRIVIA = frozenset({"comment", "line_continuation"})


@dataclass(frozen=True)
class CallSite:
    """A call found in a test function or under ``if __name__ == "__main__":``."""

    kind: Literal["name", "attr", "ctor"]  # f(...), x.f(...), Cls(...).f(...)
    name: str  # the callee's last name
    receiver: str  # the class name for "ctor", else ""
    text: str  # the call expression as written
    row: int  # 0-based, relative to the group


@dataclass
class GroupResult:
    """Everything one group contributes; rows/lines relative to the group."""

    n_rows: int
    safe: bool  # error-free and starting at column 0: may be spliced around
    functions: list[FunctionInfo] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)  # qualnames of pytest-style tests
    holes: list[Hole] = field(default_factory=list)
    breakpoints: list[BreakpointCall] = field(default_factory=list)
    markers: list[EntryPoint] = field(default_factory=list)
    doctests: list[EntryPoint] = field(default_factory=list)
    main_calls: list[CallSite] = field(default_factory=list)
    test_calls: list[CallSite] = field(default_factory=list)
    syntax_errors: list[SyntaxProblem] = field(default_factory=list)
    identifiers: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


class _GroupText:
    """The group's original bytes, addressed with tree coordinates."""

    def __init__(self, original: bytes, parse: bytes, base_byte: int, base_row: int) -> None:
        self.original = original
        self.parse = parse
        self.base_byte = base_byte
        self.base_row = base_row
        self.ascii = original.isascii()
        self._row_starts: list[int] | None = None

    def text(self, node: Node) -> str:
        return _decode(self.original[node.start_byte - self.base_byte : node.end_byte - self.base_byte])

    def raw(self, node: Node) -> bytes:
        return self.original[node.start_byte - self.base_byte : node.end_byte - self.base_byte]

    def col(self, rel_row: int, byte_col: int) -> int:
        """tree-sitter's byte column -> str column."""
        if self.ascii or byte_col == 0:
            return byte_col
        if self._row_starts is None:
            starts = [0]
            find = self.parse.find
            i = find(b"\n")
            while i >= 0:
                starts.append(i + 1)
                i = find(b"\n", i + 1)
            self._row_starts = starts
        if rel_row >= len(self._row_starts):
            return byte_col
        start = self._row_starts[rel_row]
        seg = self.original[start : start + byte_col]
        return byte_col if seg.isascii() else len(_decode(seg))

    def span(self, start: tuple[int, int], end: tuple[int, int]) -> Span:
        r0 = start[0] - self.base_row
        r1 = end[0] - self.base_row
        return Span(r0, self.col(r0, start[1]), r1, self.col(r1, end[1]))


# (scope, enclosing function qualname, directly in a class body, call sink,
#  inside an ERROR node)
_Ctx = tuple[tuple[str, ...], "str | None", bool, "list[CallSite] | None", bool]


def _code_end(node: Node) -> Node:
    """The last leaf of ``node`` that is code (not a trailing comment)."""
    cur = node
    while True:
        kids = cur.children
        k = len(kids) - 1
        while k >= 0 and kids[k].type in _TRAILING_TRIVIA:
            k -= 1
        if k < 0:
            return cur
        cur = kids[k]


def _is_main_guard(text: str) -> bool:
    flat = "".join(text.split()).replace("'", '"')
    while flat.startswith("(") and flat.endswith(")"):
        flat = flat[1:-1]
    return flat in _MAIN_CONDITIONS


def _marker_call(rest: str, name: str) -> str:
    """The call written after ``# << START_OF_TRACE`` ("" for none).

    Text that is not a valid call of the function is kept only if it looks
    like an attempt at one (has a parenthesis), so that using it reports a
    clear CallError; plain commentary after the marker means "no call".
    """
    text = rest.strip()
    if not text:
        return ""
    try:
        parse_call(text, name)
    except CallError:
        return text if "(" in text else ""
    return text


class _Walker:
    def __init__(self, text: _GroupText, root: Node, holes: frozenset[int], n_rows: int, safe: bool) -> None:
        self.t = text
        self.root = root
        self.holes = holes  # relative byte offsets
        self.out = GroupResult(n_rows=n_rows, safe=safe)
        self.decorated: dict[int, Node] = {}
        self.headers: list[tuple[int, int, str, str]] = []  # (first row, colon row, qualname, name)
        self.marker_rows: list[tuple[int, str]] = []
        self.ts_problems: list[SyntaxProblem] = []
        self.hole_problems: list[SyntaxProblem] = []
        self.anomaly = False  # indentation tree-sitter accepts but Python may not
        self._doc_parser: Parser | None = None  # for doctest examples

    # -- the walk ---------------------------------------------------------
    def walk(self, nodes: list[Node]) -> GroupResult:
        top: _Ctx = ((), None, False, None, False)
        # (node, context, whether the parent has an error below it, parent)
        stack: list[tuple[Node, _Ctx, bool, Node | None]] = [(n, top, True, None) for n in reversed(nodes)]
        t = self.t
        base_byte, base_row = t.base_byte, t.base_row
        holes = self.holes
        idents = self.out.identifiers
        pop, push = stack.pop, stack.append
        while stack:
            node, ctx, maybe_error, parent = pop()
            kind = node.type
            if kind == "identifier":
                if node.start_byte - base_byte in holes:
                    continue
                row, col = node.start_point
                row -= base_row
                name = _decode(node.text or b"")
                c0 = t.col(row, col)
                line = idents.get(row)
                if line is None:
                    idents[row] = [(name, c0, c0 + len(name))]
                else:
                    line.append((name, c0, c0 + len(name)))
                continue
            if kind == "comment":
                raw = t.raw(node)
                if b"START_OF_TRACE" in raw:
                    m = _MARKER.search(_decode(raw))
                    if m is not None:
                        self.marker_rows.append((node.start_point[0] - base_row, m.group(1)))
                continue
            has_error = False
            if maybe_error:
                if kind == "ERROR":
                    if not ctx[4]:
                        self.ts_problems.append(error_problem(node, t.span, t.text))
                        ctx = (ctx[0], ctx[1], ctx[2], ctx[3], True)
                elif node.is_missing:
                    if not ctx[4]:
                        self.ts_problems.append(missing_problem(node, t.span))
                    continue
                has_error = node.has_error
            kids = node.children if has_error else node.named_children
            if not kids:
                if kind == "block":
                    self.anomaly = True  # "def f():" with no indented body
                continue
            child_ctx = ctx
            special: dict[int, _Ctx] | None = None
            if kind == "string":
                # only interpolations ({x} in f-strings) hold identifiers
                kids = [k for k in kids if k.type == "interpolation" or k.type == "ERROR" or k.is_missing]
            elif kind == "call":
                self._call(node, ctx)
            elif kind == "block":
                if not self.anomaly and parent is not None:
                    self._check_block(node, parent.start_point)
            elif kind == "function_definition":
                child_ctx = self._function(node, ctx)
            elif kind == "class_definition":
                name_node = node.child_by_field_name("name")
                name = t.text(name_node) if name_node is not None else "?"
                qual = ".".join(ctx[0] + (name,))
                self.out.classes.append(qual)
                child_ctx = (ctx[0] + (name,), ctx[1], True, None, ctx[4])
            elif kind == "decorated_definition":
                defn = node.child_by_field_name("definition")
                if defn is not None:
                    self.decorated[defn.id] = node
            elif kind == "if_statement" and not ctx[0] and ctx[3] is None:
                cond = node.child_by_field_name("condition")
                body = node.child_by_field_name("consequence")
                if cond is not None and body is not None and _is_main_guard(t.text(cond)):
                    special = {body.id: (ctx[0], ctx[1], ctx[2], self.out.main_calls, ctx[4])}
            if special is None:
                for kid in reversed(kids):
                    push((kid, child_ctx, has_error, node))
            else:
                for kid in reversed(kids):
                    push((kid, special.get(kid.id, child_ctx), has_error, node))
        self._finish()
        return self.out

    # -- pieces -----------------------------------------------------------
    def _function(self, node: Node, ctx: _Ctx) -> _Ctx:
        t = self.t
        base_row = t.base_row
        name_node = node.child_by_field_name("name")
        name = t.text(name_node) if name_node is not None else "?"
        scope = ctx[0] + (name,)
        qual = ".".join(scope)
        outer = self.decorated.pop(node.id, node)
        def_row = node.start_point[0]
        colon_row = def_row
        for kid in node.children:
            if kid.type == ":":
                colon_row = kid.start_point[0]
                break
        params_node = node.child_by_field_name("parameters")
        params = tuple(p for p in (self._param(c) for c in params_node.named_children) if p) if params_node else ()
        body = node.child_by_field_name("body")
        stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
        last = _code_end(stmts[-1]) if stmts else _code_end(node)
        end_row = last.end_point[0]
        body_row = stmts[0].start_point[0] if stmts else def_row
        source = t.original[outer.start_byte - t.base_byte : last.end_byte - t.base_byte]
        first_child = node.child(0)
        info = FunctionInfo(
            qualname=qual,
            name=name,
            first_line=outer.start_point[0] - base_row + 1,
            def_line=def_row - base_row + 1,
            end_line=max(end_row, def_row) - base_row + 1,
            params=params,
            source_hash=hashlib.sha256(source).hexdigest(),
            is_method=ctx[2],
            is_async=first_child is not None and first_child.type == "async",
            body_start_line=body_row - base_row + 1,
        )
        self.out.functions.append(info)
        self.headers.append((outer.start_point[0] - base_row, colon_row - base_row, qual, name))
        if stmts and stmts[0].type == "expression_statement" and stmts[0].named_child_count == 1:
            doc = stmts[0].named_children[0]
            if doc.type == "string":
                doc_row = doc.start_point[0] - base_row
                if self._doc_parser is None:
                    self._doc_parser = new_parser()
                for ex in doctest_calls(t.text(doc), name, self._doc_parser):
                    self.out.doctests.append(EntryPoint(qual, ex.call, "doctest", doc_row + ex.line_index + 1))
        sink: list[CallSite] | None = None
        if name.startswith("test") and (not ctx[0] or (ctx[2] and len(ctx[0]) == 1 and ctx[0][0].startswith("Test"))):
            self.out.tests.append(qual)
            sink = self.out.test_calls
        return (scope, qual, False, sink, ctx[4])

    def _param(self, p: Node) -> str | None:
        kind = p.type
        if kind == "identifier":
            return self.t.text(p)
        if kind in ("default_parameter", "typed_default_parameter"):
            name = p.child_by_field_name("name")
            return self._param(name) if name is not None else None
        if kind == "typed_parameter":
            for c in p.named_children:
                if c.type in ("identifier", "list_splat_pattern", "dictionary_splat_pattern"):
                    return self._param(c)
            return None
        if kind in ("list_splat_pattern", "dictionary_splat_pattern"):
            for c in p.named_children:
                if c.type == "identifier":
                    return self.t.text(c)
        return None

    def _call(self, node: Node, ctx: _Ctx) -> None:
        func = node.child_by_field_name("function")
        if func is None:
            return
        t = self.t
        row = node.start_point[0] - t.base_row
        kind = func.type
        site: CallSite | None = None
        if kind == "identifier":
            name = t.text(func)
            if name == "breakpoint":
                self.out.breakpoints.append(BreakpointCall(row + 1, ctx[1]))
            if ctx[3] is not None:
                site = CallSite("name", name, "", t.text(node), row)
        elif kind == "attribute" and ctx[3] is not None:
            attr = func.child_by_field_name("attribute")
            obj = func.child_by_field_name("object")
            if attr is not None:
                receiver = ""
                if obj is not None and obj.type == "call":
                    ctor = obj.child_by_field_name("function")
                    if ctor is not None and ctor.type == "identifier":
                        receiver = t.text(ctor)
                site = CallSite("ctor" if receiver else "attr", t.text(attr), receiver, t.text(node), row)
        if site is not None and ctx[3] is not None:
            ctx[3].append(site)

    def _check_block(self, block: Node, header: tuple[int, int]) -> None:
        """Flag indentation Python would reject but tree-sitter accepts: an
        empty body, statements not indented past their header, or siblings
        that start lines at different columns."""
        prev_end, header_col = header
        col = -1
        empty = True
        for kid in block.named_children:
            if kid.type == "comment":
                continue
            empty = False
            row, c = kid.start_point
            if row > prev_end:
                if col < 0:
                    col = c
                    if c <= header_col:
                        self.anomaly = True
                elif c != col:
                    self.anomaly = True
            prev_end = kid.end_point[0]
        if empty:
            self.anomaly = True

    def _hole(self, rel: int) -> None:
        t = self.t
        node = self.root.descendant_for_byte_range(rel + t.base_byte, rel + t.base_byte + 2)
        if node is None or node.type != "identifier" or node.start_byte != rel + t.base_byte or node.end_byte != rel + t.base_byte + 2:
            return  # tree-sitter disagrees with our lexer (e.g. inside a string): not a hole
        row, col = node.start_point
        row -= t.base_row
        c0 = t.col(row, col)
        span = Span(row, c0, row, c0 + 2)
        parent = node.parent
        if parent is None:
            return
        pt = parent.type
        declaring = pt in _DECLARING_PARENTS
        if not declaring and pt in _NAMED_BY_FIELD:
            declaring = parent.child_by_field_name("name") == node
        if not declaring and pt == "attribute":
            declaring = parent.child_by_field_name("attribute") == node
        if declaring:
            self.hole_problems.append(
                SyntaxProblem(span, "'??' cannot stand here: a hole is an expression or a whole statement")
            )
            return
        kind: Literal["expression", "statement"] = (
            "statement" if pt == "expression_statement" and parent.named_child_count == 1 else "expression"
        )
        names: list[str] = []
        found = False
        cur: Node | None = parent
        while cur is not None:
            ct = cur.type
            if ct == "function_definition" or (found and ct == "class_definition"):
                found = True
                name_node = cur.child_by_field_name("name")
                names.append(t.text(name_node) if name_node is not None else "?")
            cur = cur.parent
        self.out.holes.append(Hole(span, kind, ".".join(reversed(names)) if found else None))

    def _finish(self) -> None:
        for rel in sorted(self.holes):
            self._hole(rel)
        for row, rest in self.marker_rows:
            best: tuple[int, int, str, str] | None = None
            for header in self.headers:
                if header[0] <= row <= header[1] and (best is None or header[0] >= best[0]):
                    best = header
            if best is None:
                log.debug("START_OF_TRACE marker on row %d is not on a def line; ignored", row)
                continue
            self.out.markers.append(EntryPoint(best[2], _marker_call(rest, best[3]), "marker", row + 1))
        for line in self.out.identifiers.values():
            line.sort(key=lambda item: item[1])


def extract_group(
    nodes: list[Node],
    root: Node,
    original: bytes,
    parse: bytes,
    base_byte: int,
    base_row: int,
    holes: tuple[int, ...],
) -> GroupResult:
    """The result for the group made of top-level ``nodes`` of the tree whose
    root is ``root``. ``original``/``parse`` are the group's bytes (from
    ``base_byte``, a line start on row ``base_row``); ``holes`` are offsets of
    ``??`` relative to ``base_byte``."""
    first = next((n for n in nodes if n.type != "comment"), None)
    indented = first is not None and first.start_point[1] != 0
    safe = not indented and not any(n.has_error or n.type == "line_continuation" for n in nodes)
    text = _GroupText(original, parse, base_byte, base_row)
    walker = _Walker(text, root, frozenset(holes), parse.count(b"\n"), safe)
    out = walker.walk(nodes)
    if walker.ts_problems or walker.anomaly or indented:
        out.syntax_errors = judge(_decode(parse), walker.ts_problems)
    out.syntax_errors.extend(walker.hole_problems)
    out.syntax_errors.sort(key=lambda p: (p.span.start_line, p.span.start_col))
    return out
