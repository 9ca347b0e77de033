"""An open document: text, a tree-sitter tree kept up to date by edits, and
its SourceIndex, recomputed lazily and incrementally.

Incremental path. tree-sitter-python reuses little of the old tree on a
re-parse (its indentation scanner state keeps subtrees after the edit from
being reused, so a re-parse costs a good part of a full parse). The index
therefore avoids re-parsing the file at all when it can: when the last
indexed text was free of syntax errors, only the top-level statements the
edit touched (the *region*) are parsed on their own and spliced in, which is
exact when the region parses cleanly, starts and ends at column-0
statements and does not end in a line continuation (see ``_splice``).
Otherwise the whole tree is re-parsed with ``parser.parse(new, old_tree)``
after ``tree.edit(...)``, and per-group results are reused from a cache
keyed by the group's bytes. Either way a one-character edit re-indexes only
the statements it touched.

Not thread-safe: one Document per editor buffer, used from one thread.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from itertools import accumulate

from tree_sitter import Tree

from neuraldbg.source.extract import GroupResult
from neuraldbg.source.index import (
    Group,
    GroupKey,
    Placed,
    assemble,
    binary_index,
    build_groups,
    cacheable,
    encode_text,
)
from neuraldbg.source.model import SourceIndex, Span, SyntaxProblem
from neuraldbg.source.positions import (
    PositionEncoding,
    line_starts,
    offset_at,
    position_at,
    split_lines,
    update_line_starts,
)
from neuraldbg.source.sanitize import Sanitized, sanitize
from neuraldbg.source.treesitter import new_parser, point_at

log = logging.getLogger(__name__)

_ENCODINGS = ("utf-16", "utf-8", "utf-32")


def _function_hashes(index: SourceIndex) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for fn in index.functions:
        out[fn.qualname] = out.get(fn.qualname, ()) + (fn.source_hash,)
    return out


def _changed_range(old: Sanitized, new: Sanitized, start: int, old_end: int, new_end: int) -> tuple[int, int, int]:
    """Widen the byte edit ``[start, old_end) -> [start, new_end)`` so it also
    covers every place where the parse buffer changed outside it: a ``??``
    that became (or stopped being) a hole, a ``\\r`` that became lone."""
    if not old.subs and not new.subs:
        return start, old_end, new_end
    delta = new_end - old_end
    lo, hi_new = start, new_end
    old_mapped: set[tuple[int, bytes]] = set()
    for pos, rep in old.subs:
        end = pos + len(rep)
        if end <= start:
            old_mapped.add((pos, rep))
        elif pos >= old_end:
            old_mapped.add((pos + delta, rep))
        else:  # overlaps the edit
            lo = min(lo, pos)
            hi_new = max(hi_new, end + delta if end > old_end else new_end)
    new_set: set[tuple[int, bytes]] = set()
    for pos, rep in new.subs:
        end = pos + len(rep)
        if end <= start or pos >= new_end:
            new_set.add((pos, rep))
        else:
            lo = min(lo, pos)
            hi_new = max(hi_new, end)
    for pos, rep in old_mapped ^ new_set:
        end = pos + len(rep)
        if pos < start:
            lo = min(lo, pos)
        if end > new_end:
            hi_new = max(hi_new, end)
    return lo, hi_new - delta, hi_new


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix (chunked, so most of it is compared in C)."""
    n = min(len(a), len(b))
    i, step = 0, 4096
    while i < n and a[i : i + step] == b[i : i + step]:
        i += step
    end = min(i + step, n)
    while i < end and a[i] == b[i]:
        i += 1
    return min(i, n)


def _common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common suffix, at most ``limit``."""
    la, lb = len(a), len(b)
    k, step = 0, 4096
    while k < limit and a[max(la - k - step, la - limit) : la - k] == b[max(lb - k - step, lb - limit) : lb - k]:
        k = min(k + step, limit)
    end = min(k + step, limit)
    while k < end and a[la - k - 1] == b[lb - k - 1]:
        k += 1
    return k


class Document:
    """One Python document. ``apply_edit`` takes LSP ranges; ``index`` is the
    SourceIndex of the current text."""

    def __init__(self, text: str, uri: str = "", version: int = 0) -> None:
        self.uri = uri
        self.version = version
        self._parser = new_parser()
        self._cache: dict[GroupKey, GroupResult] = {}
        self._placed: dict[int, Placed] = {}
        self._decode_problems: list[SyntaxProblem] = []
        self._last_hashes: dict[str, tuple[str, ...]] | None = None
        self._baseline: dict[str, tuple[str, ...]] | None = None
        self._text = text
        self._lines: list[str] | None = None
        self._starts = line_starts(text)
        self._index: SourceIndex | None = None
        self._source = sanitize(encode_text(text))
        self._tree: Tree | None = None
        self._tree_current = False
        self._groups: list[Group] | None = None
        # the byte range the edits since the last index touched: (start, end
        # in the last indexed text, end in the current text)
        self._dirty: tuple[int, int, int] | None = None

    @classmethod
    def from_bytes(cls, data: bytes, uri: str = "", version: int = 0) -> Document:
        """A document from file bytes: UTF-8 (a BOM is dropped); invalid
        bytes become U+FFFD and are reported in ``index.syntax_errors`` until
        the next edit; NUL bytes make it a "binary file" (not indexed)."""
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        problems: list[SyntaxProblem] = []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = data.decode("utf-8", "replace")
            prefix = data[: exc.start].decode("utf-8", "replace")
            line = prefix.count("\n")
            col = len(prefix) - (prefix.rfind("\n") + 1)
            problems.append(
                SyntaxProblem(
                    Span(line, col, line, col + 1),
                    f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                    "invalid bytes shown as U+FFFD",
                )
            )
            log.info("%s: %s", uri or "<document>", problems[-1].message)
        doc = cls(text, uri, version)
        doc._decode_problems = problems
        return doc

    # -- text -------------------------------------------------------------
    @property
    def text(self) -> str:
        return self._text

    @property
    def lines(self) -> list[str]:
        """The lines without terminators (LSP line numbering)."""
        if self._lines is None:
            self._lines = split_lines(self._text)
        return self._lines

    @property
    def is_binary(self) -> bool:
        return "\x00" in self._text

    def offset_at(self, line: int, character: int, encoding: PositionEncoding = "utf-16") -> int:
        """The str offset of an LSP position (clamped)."""
        return offset_at(self._text, self._starts, line, character, self._check(encoding))

    def position_at(self, offset: int, encoding: PositionEncoding = "utf-16") -> tuple[int, int]:
        """The LSP (line, character) of a str offset (clamped)."""
        return position_at(self._text, self._starts, offset, self._check(encoding))

    @staticmethod
    def _check(encoding: str) -> PositionEncoding:
        if encoding == "utf-16":
            return "utf-16"
        if encoding == "utf-8":
            return "utf-8"
        if encoding == "utf-32":
            return "utf-32"
        raise ValueError(f"unknown position encoding {encoding!r}; expected one of {', '.join(_ENCODINGS)}")

    # -- edits ------------------------------------------------------------
    def apply_edit(
        self,
        start: tuple[int, int],
        end: tuple[int, int],
        new_text: str,
        encoding: PositionEncoding = "utf-16",
        version: int | None = None,
    ) -> None:
        """Replace the LSP range ``start``..``end`` (0-based line, character
        in ``encoding``) by ``new_text``. Out-of-range positions are clamped;
        a reversed range is swapped."""
        enc = self._check(encoding)
        s = offset_at(self._text, self._starts, start[0], start[1], enc)
        e = offset_at(self._text, self._starts, end[0], end[1], enc)
        if e < s:
            s, e = e, s
        self._before_edit(version)
        self._replace(s, e, new_text)

    def replace_all(self, text: str, version: int | None = None) -> None:
        """Replace the whole text (an LSP full-document change). Only the
        span that differs is treated as edited, so clients that always send
        the whole text still get the incremental path."""
        self._before_edit(version)
        old = self._text
        p = _common_prefix(old, text)
        q = _common_suffix(old, text, min(len(old), len(text)) - p)
        self._replace(p, len(old) - q, text[p : len(text) - q])

    def _replace(self, s: int, e: int, new_text: str) -> None:
        """Replace str offsets ``[s, e)`` of the text by ``new_text``."""
        old_text = self._text
        text = old_text[:s] + new_text + old_text[e:]
        sb = len(encode_text(old_text[:s]))
        eb = sb + len(encode_text(old_text[s:e]))
        inserted = encode_text(new_text)
        nb = sb + len(inserted)
        old = self._source
        data = old.original[:sb] + inserted + old.original[eb:]
        self._starts = update_line_starts(self._starts, text, s, e, s + len(new_text))
        self._text = text
        self._lines = None
        self._index = None
        self._decode_problems = []
        if "\x00" in text:
            self._drop_structure(sanitize(data))
            return
        new = sanitize(data)
        lo, old_hi, new_hi = _changed_range(old, new, sb, eb, nb)
        self._source = new
        if self._tree is not None:
            self._tree.edit(
                lo,
                old_hi,
                new_hi,
                point_at(old.parse, lo),
                point_at(old.parse, old_hi),
                point_at(new.parse, new_hi),
            )
            self._tree_current = False
        if self._dirty is None:
            self._dirty = (lo, old_hi, new_hi)
        else:
            # compose with the edits not yet indexed (coordinates of the last
            # indexed text -> current text)
            ds, d_old, d_new = self._dirty
            hi_cur = max(d_new, old_hi)
            hi_indexed = d_old if hi_cur == d_new else old_hi - (d_new - d_old)
            self._dirty = (min(ds, lo), hi_indexed, hi_cur + (new_hi - old_hi))

    def _before_edit(self, version: int | None) -> None:
        # changed_functions() compares with the index computed before the
        # latest edits: make sure one exists (computed once per document if
        # nobody asked for the index before the first edit).
        if self._index is not None or self._last_hashes is None:
            self.index  # noqa: B018 - computes _last_hashes for the current text
            self._baseline = self._last_hashes
        self.version = self.version + 1 if version is None else version

    def _drop_structure(self, source: Sanitized) -> None:
        """Forget the tree and groups: the next index starts from scratch
        (the group cache survives)."""
        self._source = source
        self._tree = None
        self._tree_current = False
        self._groups = None
        self._dirty = None

    # -- index ------------------------------------------------------------
    @property
    def index(self) -> SourceIndex:
        """The SourceIndex of the current text (computed on first use after
        an edit, reusing what the edit did not touch)."""
        index = self._index
        if index is None:
            index = self._index = self._compute_index()
            self._last_hashes = _function_hashes(index)
        return index

    def changed_functions(self) -> set[str]:
        """Qualnames whose source hash changed, or that were added or
        removed, between the index before the latest edit(s) and now. Edits
        applied without reading the index in between count together (one
        LSP didChange with several changes reports them all)."""
        self.index  # noqa: B018 - brings _last_hashes up to date
        current = self._last_hashes or {}
        if self._baseline is None:
            return set()
        base = self._baseline
        return {q for q in base.keys() | current.keys() if base.get(q) != current.get(q)}

    def _compute_index(self) -> SourceIndex:
        if self.is_binary:
            self._drop_structure(self._source)
            return binary_index(self._decode_problems)
        if self._groups is not None and self._dirty is not None and self._splice():
            self._dirty = None
            return assemble(self._groups, self._decode_problems, self._placed)
        tree = self._current_tree()
        groups = build_groups(tree.root_node, self._source.original, self._source.parse, self._source.holes, self._cache)
        self._groups = groups
        self._dirty = None
        self._cache = cacheable(groups)
        return assemble(groups, self._decode_problems, self._placed)

    def _current_tree(self) -> Tree:
        data = self._source.parse
        if self._tree is None or (not self._tree_current and self._tree.root_node.has_error):
            # (a broken old tree would be re-parsed afresh anyway, see below)
            self._tree = self._parser.parse(data)
        elif not self._tree_current:
            self._tree = self._parser.parse(data, self._tree)
            if self._tree.root_node.has_error:
                # tree-sitter's error recovery can differ between an
                # incremental and a fresh parse; diagnostics must not depend
                # on the edit history, so broken text is parsed afresh.
                self._tree = self._parser.parse(data)
        self._tree_current = True
        return self._tree

    def _splice(self) -> bool:
        """Re-index only the groups the pending edits touched, parsing them on
        their own. Returns False (nothing changed) when that is not exact."""
        groups = self._groups
        assert groups is not None and self._dirty is not None
        ds, d_old, d_new = self._dirty
        starts = list(accumulate([g.nbytes for g in groups], initial=0))
        i0 = max(0, bisect_right(starts, ds) - 1)
        if i0 > 0 and starts[i0] == ds:
            i0 -= 1  # an edit at a group's first byte may extend the group before
        j0 = min(len(groups) - 1, bisect_right(starts, d_old) - 1)
        i0 = min(i0, j0)
        for k, g in enumerate(groups):
            if not g.result.safe and not i0 <= k <= j0:
                return False  # an error elsewhere may be recovered differently in a full parse
        r0 = starts[i0]
        r1_old = starts[j0 + 1]
        r1_new = r1_old + (d_new - d_old)
        source = self._source
        if r1_new < len(source.parse) and source.parse[r1_new - 1 : r1_new] != b"\n":
            return False
        region = source.parse[r0:r1_new]
        tree = self._parser.parse(region)
        root = tree.root_node
        if root.type != "module" or root.has_error:
            return False
        for kid in root.children:
            if kid.type == "line_continuation":
                return False  # "x = 1 \" would swallow the next line in the file
            if kid.is_named and kid.type != "comment" and kid.start_point[1] != 0:
                return False  # an indented line would join the block before it
        holes = tuple(h - r0 for h in source.holes if r0 <= h < r1_new)
        new_groups = build_groups(root, source.original[r0:r1_new], region, holes, self._cache)
        groups[i0 : j0 + 1] = new_groups
        self._cache.update(cacheable(new_groups))
        if len(self._cache) > 2 * len(groups) + 64:
            self._cache = cacheable(groups)
        return True
