"""Data produced by the source index (pure data, no tree-sitter here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Span:
    """A range: 0-based lines, columns in Python str characters (code
    points); the LSP layer converts columns to UTF-16 where it must."""

    start_line: int  # 0-based
    start_col: int
    end_line: int  # 0-based, inclusive line of the end position
    end_col: int


@dataclass(frozen=True)
class FunctionInfo:
    qualname: str  # "f", "Class.method", "outer.inner" (no "<locals>")
    name: str
    first_line: int  # 1-based; the first decorator line if decorated (call events report def_line)
    def_line: int  # 1-based line of the ``def`` keyword
    end_line: int  # 1-based last line of the body
    params: tuple[str, ...]  # parameter names in order (``self`` included, ``*args`` as ``args``)
    source_hash: str  # sha256 of the function's source text (decorators included)
    is_method: bool = False
    is_async: bool = False
    body_start_line: int = 0  # 1-based line of the first body statement


@dataclass(frozen=True)
class Hole:
    """A ``??`` placeholder, as an expression or as a whole statement."""

    span: Span
    kind: Literal["expression", "statement"]
    function: str | None  # qualname of the enclosing function


@dataclass(frozen=True)
class BreakpointCall:
    line: int  # 1-based
    function: str | None


EntryKind = Literal["marker", "doctest", "main", "pytest", "explicit"]


@dataclass(frozen=True)
class EntryPoint:
    function: str  # qualname of the traced function
    call: str  # a call expression, e.g. "f([3, 4])" or "Foo().bar(2)"
    kind: EntryKind
    line: int  # 1-based line where the entry was found


@dataclass(frozen=True)
class SyntaxProblem:
    span: Span
    message: str


@dataclass
class SourceIndex:
    """Everything the rest of neuraldbg asks about one document's text."""

    functions: list[FunctionInfo] = field(default_factory=list)
    holes: list[Hole] = field(default_factory=list)
    breakpoints: list[BreakpointCall] = field(default_factory=list)
    entries: list[EntryPoint] = field(default_factory=list)
    syntax_errors: list[SyntaxProblem] = field(default_factory=list)
    # 1-based line -> identifiers on that line (name, 0-based start col, end col)
    identifiers: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)

    def function(self, qualname: str) -> FunctionInfo | None:
        for fn in self.functions:
            if fn.qualname == qualname:
                return fn
        return None

    def function_at(self, line: int) -> FunctionInfo | None:
        """The innermost function whose range contains the 1-based ``line``."""
        best: FunctionInfo | None = None
        for fn in self.functions:
            if fn.first_line <= line <= fn.end_line:
                if best is None or fn.first_line >= best.first_line:
                    best = fn
        return best
