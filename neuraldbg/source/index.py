"""Build a SourceIndex from Python text (or from a tree-sitter tree of it).

The text is cut into *groups* of top-level statements (see
:mod:`neuraldbg.source.extract`); each group is indexed on its own in
coordinates relative to its first row, and the groups are then shifted and
joined. Entries that need the whole file (calls under ``__main__`` and in
tests, which must call a function of this file) are resolved at the join.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node, Tree

from neuraldbg.source.extract import CallSite, GroupResult, extract_group
from neuraldbg.source.model import BreakpointCall, EntryPoint, FunctionInfo, Hole, Span, SourceIndex, SyntaxProblem
from neuraldbg.source.sanitize import Sanitized, sanitize
from neuraldbg.source.treesitter import new_parser

BINARY_MESSAGE = "binary file (contains NUL bytes): not indexed"

GroupKey = tuple[bytes, tuple[int, ...]]


@dataclass(frozen=True)
class Group:
    """One group of a document: its length in bytes, cache key and result."""

    nbytes: int
    key: GroupKey
    result: GroupResult


def binary_index(extra: Sequence[SyntaxProblem] = ()) -> SourceIndex:
    return SourceIndex(syntax_errors=[SyntaxProblem(Span(0, 0, 0, 0), BINARY_MESSAGE), *extra])


def split_groups(root: Node, length: int) -> list[tuple[int, int, list[Node]]]:
    """(start byte, end byte, top-level nodes) of the groups that tile
    ``[0, length)``: a new group starts at the line of each top-level
    statement that begins on a later row than the previous one ended.
    Comments never start a group (their placement is the parser's whim)."""
    kids = root.children if root.type == "module" else [root]
    out: list[tuple[int, int, list[Node]]] = []
    start = 0
    nodes: list[Node] = []
    last_row = -1
    seen_code = False
    for kid in kids:
        if kid.is_named and kid.type != "comment":
            row, col = kid.start_point
            if seen_code and row > last_row:
                line_start = kid.start_byte - col
                out.append((start, line_start, nodes))
                start, nodes = line_start, []
            seen_code = True
            last_row = max(last_row, kid.end_point[0])
        nodes.append(kid)
    out.append((start, length, nodes))
    return out


def build_groups(
    root: Node,
    original: bytes,
    parse: bytes,
    holes: Sequence[int],
    cache: Mapping[GroupKey, GroupResult] | None = None,
) -> list[Group]:
    """The groups of the tree ``root`` parsed from ``parse`` (``original`` is
    the user's bytes, same length; ``holes`` sorted byte offsets of ``??``).
    Results of error-free groups found in ``cache`` are reused."""
    out: list[Group] = []
    row = 0
    for start, end, nodes in split_groups(root, len(parse)):
        lo = bisect_left(holes, start)
        hi = bisect_left(holes, end)
        rel_holes = tuple(h - start for h in holes[lo:hi])
        key = (original[start:end], rel_holes)
        result = cache.get(key) if cache is not None else None
        if result is None:
            result = extract_group(nodes, root, original[start:end], parse[start:end], start, row, rel_holes)
        out.append(Group(end - start, key, result))
        row += result.n_rows
    return out


def cacheable(groups: Iterable[Group]) -> dict[GroupKey, GroupResult]:
    """The results worth keeping for the next index: only error-free groups,
    whose parse cannot depend on the text around them."""
    return {g.key: g.result for g in groups if g.result.safe}


def _shift_span(s: Span, d: int) -> Span:
    return Span(s.start_line + d, s.start_col, s.end_line + d, s.end_col)


def _shift_function(f: FunctionInfo, d: int) -> FunctionInfo:
    return FunctionInfo(
        f.qualname,
        f.name,
        f.first_line + d,
        f.def_line + d,
        f.end_line + d,
        f.params,
        f.source_hash,
        f.is_method,
        f.is_async,
        f.body_start_line + d,
    )


@dataclass(frozen=True)
class Placed:
    """A group's result shifted to start at 0-based ``row`` of the file."""

    result: GroupResult
    row: int
    functions: list[FunctionInfo]
    holes: list[Hole]
    breakpoints: list[BreakpointCall]
    markers: list[EntryPoint]
    doctests: list[EntryPoint]
    errors: list[SyntaxProblem]
    identifiers: dict[int, list[tuple[str, int, int]]]
    main_sites: list[tuple[CallSite, int]]
    test_sites: list[tuple[CallSite, int]]


def place(r: GroupResult, d: int) -> Placed:
    if d == 0:
        functions, holes, breakpoints = r.functions, r.holes, r.breakpoints
        markers, doctests, errors = r.markers, r.doctests, r.syntax_errors
    else:
        functions = [_shift_function(f, d) for f in r.functions]
        holes = [Hole(_shift_span(h.span, d), h.kind, h.function) for h in r.holes]
        breakpoints = [BreakpointCall(b.line + d, b.function) for b in r.breakpoints]
        markers = [EntryPoint(e.function, e.call, e.kind, e.line + d) for e in r.markers]
        doctests = [EntryPoint(e.function, e.call, e.kind, e.line + d) for e in r.doctests]
        errors = [SyntaxProblem(_shift_span(p.span, d), p.message) for p in r.syntax_errors]
    base = d + 1
    return Placed(
        r,
        d,
        functions,
        holes,
        breakpoints,
        markers,
        doctests,
        errors,
        {rel + base: items for rel, items in r.identifiers.items()},
        [(s, s.row + base) for s in r.main_calls],
        [(s, s.row + base) for s in r.test_calls],
    )


def _resolve(
    site: CallSite,
    plain: set[str] | frozenset[str],
    qualnames: set[str] | frozenset[str],
    classes: set[str],
    attr: bool,
) -> str | None:
    """The qualname ``site`` calls among the given functions, if any."""
    if site.kind == "name":
        return site.name if site.name in plain else None
    if site.kind == "ctor":
        qual = f"{site.receiver}.{site.name}"
        if qual in qualnames and site.receiver in classes:
            return qual
    return site.name if attr and site.name in plain else None


def assemble(
    groups: Sequence[Group],
    extra_errors: Sequence[SyntaxProblem] = (),
    placed: dict[int, Placed] | None = None,
) -> SourceIndex:
    """Join group results into one SourceIndex (lists are shared with the
    group results: treat the index as read-only).

    ``placed`` memoises shifted groups between calls (keyed by the result's
    id); it is updated in place to hold just this call's groups.
    """
    functions: list[FunctionInfo] = []
    holes: list[Hole] = []
    breakpoints: list[BreakpointCall] = []
    markers: list[EntryPoint] = []
    doctests: list[EntryPoint] = []
    main_sites: list[tuple[CallSite, int]] = []
    test_sites: list[tuple[CallSite, int]] = []
    errors: list[SyntaxProblem] = []
    identifiers: dict[int, list[tuple[str, int, int]]] = {}
    classes: set[str] = set()
    tests: set[str] = set()
    old = placed if placed is not None else {}
    now: dict[int, Placed] = {}
    row = 0
    for group in groups:
        r = group.result
        p = old.get(id(r))
        if p is None or p.result is not r or p.row != row:
            p = place(r, row)
        now[id(r)] = p
        if p.functions:
            functions += p.functions
        if p.holes:
            holes += p.holes
        if p.breakpoints:
            breakpoints += p.breakpoints
        if p.markers:
            markers += p.markers
        if p.doctests:
            doctests += p.doctests
        if p.errors:
            errors += p.errors
        if p.main_sites:
            main_sites += p.main_sites
        if p.test_sites:
            test_sites += p.test_sites
        if r.classes:
            classes.update(r.classes)
        if r.tests:
            tests.update(r.tests)
        identifiers.update(p.identifiers)
        row += r.n_rows
    if placed is not None:
        placed.clear()
        placed.update(now)

    qualnames = {f.qualname for f in functions}
    module_functions = {q for q in qualnames if "." not in q}
    top_classes = {c for c in classes if "." not in c}
    entries = markers + doctests
    for site, line in main_sites:
        target = _resolve(site, module_functions, qualnames, top_classes, attr=False)
        if target is not None:
            entries.append(EntryPoint(target, site.text, "main", line))
    if test_sites:
        targets = qualnames - tests
        plain = module_functions - tests
        for site, line in test_sites:
            target = _resolve(site, plain, targets, top_classes, attr=False)
            if target is not None:
                entries.append(EntryPoint(target, site.text, "pytest", line))
    errors.sort(key=lambda p: (p.span.start_line, p.span.start_col))
    return SourceIndex(
        functions=functions,
        holes=holes,
        breakpoints=breakpoints,
        entries=entries,
        syntax_errors=[*extra_errors, *errors],
        identifiers=identifiers,
    )


def encode_text(text: str) -> bytes:
    # surrogatepass: a str may hold lone surrogates (e.g. from JSON); they
    # must survive the round trip rather than raise.
    return text.encode("utf-8", "surrogatepass")


def index_tree(
    tree: Tree,
    source: Sanitized,
    cache: Mapping[GroupKey, GroupResult] | None = None,
) -> tuple[SourceIndex, list[Group]]:
    """Index a tree parsed from ``source.parse``; also returns the groups so a
    caller can pass ``cacheable(groups)`` as the next call's cache."""
    groups = build_groups(tree.root_node, source.original, source.parse, source.holes, cache)
    return assemble(groups), groups


def index_text(text: str) -> SourceIndex:
    """The SourceIndex of ``text``. Never raises; text with NUL bytes is
    reported as a binary file."""
    if "\x00" in text:
        return binary_index()
    source = sanitize(encode_text(text))
    tree = new_parser().parse(source.parse)
    return index_tree(tree, source)[0]


def find_test_calls(test_text: str, function_names: set[str] | frozenset[str]) -> list[EntryPoint]:
    """Calls to ``function_names`` inside pytest-style tests (``def test*``
    at module level or in ``class Test*``) of another file's ``test_text``.

    A name matches ``f(...)`` and ``module.f(...)``; a qualname
    ``Cls.method`` matches ``Cls(...).method(...)``. Entries have kind
    "pytest" and lines of the test file.
    """
    if "\x00" in test_text:
        return []
    source = sanitize(encode_text(test_text))
    tree = new_parser().parse(source.parse)
    groups = build_groups(tree.root_node, source.original, source.parse, source.holes)
    names = set(function_names)
    plain = {n for n in names if "." not in n}
    classes = {n.split(".", 1)[0] for n in names if "." in n}
    out: list[EntryPoint] = []
    row = 0
    for group in groups:
        for site in group.result.test_calls:
            target = _resolve(site, plain, names, classes, attr=True)
            if target is not None:
                out.append(EntryPoint(target, site.text, "pytest", site.row + row + 1))
        row += group.result.n_rows
    return out


# -- what kind of name an identifier is (for hovers) ---------------------------

IdentifierKind = Literal["local", "name", "attribute", "keyword", "annotation"]
"""``local``: a name the function binds (a parameter, an assignment or loop
target, an import, a nested def); ``name``: any other plain name (a global,
a class, a builtin); ``attribute``: ``attr`` in ``obj.attr``; ``keyword``:
``k`` in ``f(k=1)``; ``annotation``: a name inside a type annotation."""

# targets whose identifiers are all bound: ``a, (b, *c) = ...``
_TARGET_GROUPS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list",
                            "parenthesized_expression", "list_splat_pattern", "list_splat", "as_pattern_target"})
# their own scope: what they bind is not the function's
_OWN_SCOPE = frozenset({"function_definition", "class_definition", "lambda"})


def _targets(node: Node, out: set[str]) -> None:
    if node.type == "identifier":
        out.add(_text(node))
    elif node.type in _TARGET_GROUPS:
        for kid in node.named_children:
            _targets(kid, out)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogatepass")


def _imported(node: Node, out: set[str]) -> None:
    """The names ``import a.b, c as d`` / ``from m import x as y`` bind."""
    for kid in node.children_by_field_name("name"):
        if kid.type == "aliased_import":
            alias = kid.child_by_field_name("alias")
            if alias is not None:
                out.add(_text(alias))
        elif kid.type == "dotted_name" and kid.named_children:
            out.add(_text(kid.named_children[0]))


def _captures(node: Node, out: set[str]) -> None:
    """Capture names of ``match`` patterns: ``case x``, ``[*rest]``,
    ``Point(x=px)``, ``... as whole``."""
    kids = node.named_children
    if node.type == "splat_pattern" or (node.type == "as_pattern" and node.parent is not None
                                         and node.parent.type == "case_pattern"):
        out.update(_text(k) for k in kids if k.type == "identifier")
        return
    if node.type == "keyword_pattern":
        kids = kids[1:]  # the first is the attribute's name
    elif len(kids) != 1:
        return
    for kid in kids:
        if kid.type == "dotted_name" and len(kid.named_children) == 1:
            out.add(_text(kid))


def _bound_names(fn_node: Node, params: Sequence[str]) -> set[str]:
    """The names a function binds in its own scope (Python's rule: bound
    anywhere in the body, less those declared global or nonlocal)."""
    bound = set(params)
    declared: set[str] = set()
    body = fn_node.child_by_field_name("body")
    stack = [body] if body is not None else []
    while stack:
        node = stack.pop()
        kind = node.type
        if kind in _OWN_SCOPE:
            name = node.child_by_field_name("name")
            if name is not None:
                bound.add(_text(name))
            continue
        if kind in ("assignment", "augmented_assignment", "for_statement", "for_in_clause"):
            left = node.child_by_field_name("left")
            if left is not None:
                _targets(left, bound)
        elif kind in ("as_pattern_target", "delete_statement"):
            for kid in node.named_children:
                _targets(kid, bound)
        elif kind == "named_expression":
            name = node.child_by_field_name("name")
            if name is not None:
                bound.add(_text(name))
        elif kind in ("import_statement", "import_from_statement"):
            _imported(node, bound)
            continue
        elif kind in ("global_statement", "nonlocal_statement"):
            declared.update(_text(k) for k in node.named_children if k.type == "identifier")
            continue
        elif kind in ("case_pattern", "keyword_pattern", "splat_pattern", "as_pattern"):
            _captures(node, bound)
        stack.extend(node.named_children)
    return bound - declared


def _role(node: Node, fn_node: Node) -> IdentifierKind | None:
    """The kind an identifier's place gives it, or None for a plain name."""
    parent = node.parent
    if parent is None:
        return None
    if parent.type == "attribute" and parent.child_by_field_name("attribute") == node:
        return "attribute"
    if parent.type == "keyword_argument" and parent.child_by_field_name("name") == node:
        return "keyword"
    if parent.type == "keyword_pattern" and parent.named_children[0] == node:
        return "keyword"
    if parent.type == "dotted_name" and parent.named_children[0] != node:
        return "attribute"  # ``path`` in ``import os.path``
    up: Node | None = parent
    while up is not None and up != fn_node:
        if up.type == "type":
            return "annotation"
        up = up.parent
    return None


def _function_node(root: Node) -> Node | None:
    for node in root.named_children:
        if node.type == "if_statement":  # the wrapper of an indented function
            block = node.child_by_field_name("consequence")
            return _function_node(block) if block is not None else None
        if node.type == "decorated_definition":
            node = node.child_by_field_name("definition") or node
        if node.type == "function_definition":
            return node
    return None


def identifier_kind(lines: Sequence[str], fn: FunctionInfo, line: int, start: int, end: int) -> IdentifierKind:
    """The kind of the identifier at columns ``start..end`` (str columns) of
    1-based ``line`` inside ``fn``, from a parse of the function's own lines
    (``lines``: the document's). Anything the parse cannot place is a plain
    ``name``."""
    first = fn.first_line - 1
    own = list(lines[first : fn.end_line])
    if not first <= line - 1 < first + len(own):
        return "name"
    # an indented def (a method) parses as the body of ``if 1:``
    wrapped = own[0][:1] in (" ", "\t")
    text = ("if 1:\n" if wrapped else "") + "\n".join(own) + "\n"
    tree = new_parser().parse(sanitize(encode_text(text)).parse)
    fn_node = _function_node(tree.root_node)
    if fn_node is None:
        return "name"
    row = line - 1 - first + (1 if wrapped else 0)
    here = lines[line - 1]
    lo = len(encode_text(here[:start]))
    hi = lo + len(encode_text(here[start:end]))
    node = tree.root_node.named_descendant_for_point_range((row, lo), (row, hi))
    if node is None or node.type != "identifier" or node.start_point != (row, lo):
        return "name"
    role = _role(node, fn_node)
    if role is not None:
        return role
    return "local" if _text(node) in _bound_names(fn_node, fn.params) else "name"
