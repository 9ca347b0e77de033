"""identifier_kind: what kind of name an identifier of a function is
(neuraldbg/source/index.py), which decides whether a hover shows it as a
variable of the frame."""

from __future__ import annotations

from neuraldbg.source.index import identifier_kind, index_text

SRC = '''import math


class Shop:
    @staticmethod
    def total(self, prices: list[float], *extra: int, rate: "float" = 1.0, **kw) -> dict[str, int]:
        count: int = 0
        tag: Label
        (first, [second, *rest]) = prices
        self.count += first
        emit(key=count)
        for i, j in pairs: pass
        with open(first) as fh, g() as (u, v): pass
        try: pass
        except ValueError as err: pass
        import os.path, json as js
        from m import n as nn, o
        global G
        if (w := 3): pass
        class K: pass
        [c for c in prices]
        lambda lam: lam
        match prices:
            case [m1, *m2] | {"k": m3}: pass
            case Point(x=m4) as m5: pass
        return math.floor(count)
'''


def _kinds(line: int) -> list[tuple[str, str]]:
    index = index_text(SRC)
    fn = index.function_at(line)
    assert fn is not None and fn.qualname == "Shop.total"
    lines = SRC.splitlines()
    return [(name, identifier_kind(lines, fn, line, s, e)) for name, s, e in index.identifiers[line]]


def test_signature_parameters_and_types():
    assert _kinds(5) == [("staticmethod", "name")]
    assert _kinds(6) == [("total", "name"), ("self", "local"), ("prices", "local"), ("list", "annotation"),
                         ("float", "annotation"), ("extra", "local"), ("int", "annotation"), ("rate", "local"),
                         ("kw", "local"), ("dict", "annotation"), ("str", "annotation"), ("int", "annotation")]


def test_targets_are_locals_attributes_and_keywords_are_not():
    assert _kinds(7) == [("count", "local"), ("int", "annotation")]
    assert _kinds(8) == [("tag", "local"), ("Label", "annotation")]
    assert _kinds(9) == [("first", "local"), ("second", "local"), ("rest", "local"), ("prices", "local")]
    assert _kinds(10) == [("self", "local"), ("count", "attribute"), ("first", "local")]
    assert _kinds(11) == [("emit", "name"), ("key", "keyword"), ("count", "local")]
    assert _kinds(12) == [("i", "local"), ("j", "local"), ("pairs", "name")]
    assert _kinds(13) == [("open", "name"), ("first", "local"), ("fh", "local"), ("g", "name"), ("u", "local"),
                          ("v", "local")]
    assert _kinds(15) == [("ValueError", "name"), ("err", "local")]


def test_imports_globals_scopes_and_patterns():
    assert _kinds(16) == [("os", "local"), ("path", "attribute"), ("json", "name"), ("js", "local")]
    assert _kinds(17) == [("m", "name"), ("n", "name"), ("nn", "local"), ("o", "local")]
    assert _kinds(18) == [("G", "name")]  # declared global: not a local
    assert _kinds(19) == [("w", "local")]
    assert _kinds(20) == [("K", "local")]
    assert _kinds(22) == [("lam", "name"), ("lam", "name")]  # the lambda's own scope
    assert _kinds(24) == [("m1", "local"), ("m2", "local"), ("m3", "local")]
    assert _kinds(25) == [("Point", "name"), ("x", "keyword"), ("m4", "local"), ("m5", "local")]
    assert _kinds(26) == [("math", "name"), ("floor", "attribute"), ("count", "local")]


def test_a_position_the_parse_cannot_place_is_a_plain_name():
    index = index_text(SRC)
    fn = index.function("Shop.total")
    assert fn is not None
    lines = SRC.splitlines()
    assert identifier_kind(lines, fn, 1, 7, 11) == "name"  # outside the function
    assert identifier_kind(lines, fn, 7, 0, 3) == "name"  # not an identifier's columns
