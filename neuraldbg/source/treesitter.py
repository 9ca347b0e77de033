"""The tree-sitter Python grammar and small helpers around it.

Nothing outside ``neuraldbg.source`` imports tree-sitter: the rest of the
code base sees only the dataclasses of :mod:`neuraldbg.source.model`.
"""

from __future__ import annotations

import tree_sitter_python
from tree_sitter import Language, Parser

# Immutable once built; Parser objects are per document (they are not
# thread-safe), the language is shared.
PY_LANGUAGE = Language(tree_sitter_python.language())


def new_parser() -> Parser:
    return Parser(PY_LANGUAGE)


def point_at(data: bytes, offset: int) -> tuple[int, int]:
    """tree-sitter's (row, byte column) of ``offset`` in ``data``: rows end
    at ``\\n`` only (the parse buffer has no lone ``\\r`` left)."""
    row = data.count(b"\n", 0, offset)
    return row, offset - (data.rfind(b"\n", 0, offset) + 1)
