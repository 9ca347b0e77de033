"""neuraldbg.source.index: functions, holes, breakpoints, entries, syntax
problems and identifiers of a Python text."""

from __future__ import annotations

import hashlib
import random
import sys
import textwrap
from pathlib import Path

import pytest

from neuraldbg.source.calls import CallError, default_call_for, parse_call
from neuraldbg.source.index import BINARY_MESSAGE, find_test_calls, index_text
from neuraldbg.source.model import EntryPoint, SourceIndex
from neuraldbg.source.sanitize import find_holes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def by_qualname(index: SourceIndex) -> dict[str, object]:
    return {f.qualname: f for f in index.functions}


# -- functions -------------------------------------------------------------


def test_qualified_names_of_methods_nested_decorated_async() -> None:
    index = index_text(
        src(
            """
            import functools

            def f(x):
                return x

            class Outer:
                class Inner:
                    def m(self):
                        return 1

                @staticmethod
                @functools.cache
                def s(a, b=2):
                    return a

                async def am(self):
                    def helper():
                        class Local:
                            def lm(self):
                                pass
                        return Local
                    return helper

            def outer():
                def inner():
                    return 2
                return inner
            """
        )
    )
    fns = by_qualname(index)
    assert list(fns) == [
        "f",
        "Outer.Inner.m",
        "Outer.s",
        "Outer.am",
        "Outer.am.helper",
        "Outer.am.helper.Local.lm",
        "outer",
        "outer.inner",
    ]
    s = index.function("Outer.s")
    assert s is not None
    assert (s.first_line, s.def_line, s.end_line) == (11, 13, 14)  # first decorator line
    assert s.is_method and not s.is_async and s.name == "s"
    am = index.function("Outer.am")
    assert am is not None and am.is_async and am.is_method
    assert not index.function("outer.inner").is_method  # type: ignore[union-attr]
    assert not index.function("Outer.am.helper").is_method  # type: ignore[union-attr]
    assert index.function("Outer.am.helper.Local.lm").is_method  # type: ignore[union-attr]
    assert index.function_at(20).qualname == "Outer.am.helper.Local.lm"  # type: ignore[union-attr]
    assert index.function_at(26).qualname == "outer.inner"  # type: ignore[union-attr]
    assert not index.syntax_errors


def test_params_in_order_with_star_args_keyword_only_and_positional_only() -> None:
    index = index_text(
        src(
            """
            class C:
                def m(self, a, /, b: int, c=1, *args: str, d, e: float = 2.0, **kw) -> None:
                    pass

            def star(*, key):
                pass

            def nothing():
                pass

            async def lam(x, *_, **__):
                return lambda y: y
            """
        )
    )
    assert index.function("C.m").params == ("self", "a", "b", "c", "args", "d", "e", "kw")  # type: ignore[union-attr]
    assert index.function("star").params == ("key",)  # type: ignore[union-attr]
    assert index.function("nothing").params == ()  # type: ignore[union-attr]
    assert index.function("lam").params == ("x", "_", "__")  # type: ignore[union-attr]


def test_hash_covers_decorators_and_body_but_not_trailing_comments() -> None:
    text = src(
        """
        @dec
        def f(x):
            '''Doc.'''
            return x
            # trailing comment

        def g(): return 1
        """
    )
    index = index_text(text)
    f = index.function("f")
    assert f is not None
    expected = "@dec\ndef f(x):\n    '''Doc.'''\n    return x"
    assert f.source_hash == hashlib.sha256(expected.encode()).hexdigest()
    assert (f.first_line, f.def_line, f.body_start_line, f.end_line) == (1, 2, 3, 4)
    g = index.function("g")
    assert g is not None and (g.def_line, g.body_start_line, g.end_line) == (7, 7, 7)
    # the same function text elsewhere hashes the same
    moved = index_text("\n\n\n" + text)
    assert moved.function("f").source_hash == f.source_hash  # type: ignore[union-attr]
    assert moved.function("f").first_line == 4  # type: ignore[union-attr]


# -- holes -----------------------------------------------------------------


def test_holes_as_expression_and_statement_are_not_syntax_errors() -> None:
    index = index_text(
        src(
            """
            def running_max(xs):
                best = None
                for x in xs:
                    if best is None or x > best:
                        best = ??
                    ??
                return ?? + 1

            def call_it():
                return f(??, key=??)
            """
        )
    )
    assert index.syntax_errors == []
    assert [f.qualname for f in index.functions] == ["running_max", "call_it"]
    got = [(h.span.start_line, h.span.start_col, h.span.end_col, h.kind, h.function) for h in index.holes]
    assert got == [
        (4, 19, 21, "expression", "running_max"),
        (5, 8, 10, "statement", "running_max"),
        (6, 11, 13, "expression", "running_max"),
        (9, 13, 15, "expression", "call_it"),
        (9, 21, 23, "expression", "call_it"),
    ]
    # holes are not identifiers (the placeholder must not leak)
    assert all(name != "__" for line in index.identifiers.values() for name, _, _ in line)


def test_question_marks_in_strings_comments_and_glued_are_not_holes() -> None:
    text = src(
        '''
        def f(x):
            """What?? Really??"""
            s = "??" + '??' + f"{x}??"  # why ??
            t = """
            ??
            """
            return s
        '''
    )
    index = index_text(text)
    assert index.holes == []
    assert index.syntax_errors == []
    assert find_holes(b"x = a?? + ??? + 1?? + ??b") == ()
    assert find_holes(b"x = (??)") == (5,)


def test_hole_module_level_and_bad_place() -> None:
    index = index_text("x = ??\ny = obj.??\n")
    assert [(h.span.start_line, h.kind, h.function) for h in index.holes] == [(0, "expression", None)]
    assert len(index.syntax_errors) == 1
    assert index.syntax_errors[0].span.start_line == 1
    assert "??" in index.syntax_errors[0].message


def test_real_syntax_errors_are_still_reported_next_to_holes() -> None:
    index = index_text("def f(x):\n    y = ??\n    return (y\n")
    assert [h.kind for h in index.holes] == ["expression"]
    assert len(index.syntax_errors) == 1
    assert index.syntax_errors[0].message == "'(' was never closed"
    assert index.syntax_errors[0].span.start_line == 2


# -- breakpoints -----------------------------------------------------------


def test_breakpoint_calls_with_enclosing_function() -> None:
    index = index_text(
        src(
            """
            breakpoint()

            class K:
                def m(self):
                    x = 1
                    breakpoint()
                    def inner():
                        breakpoint()

            def g():
                obj.breakpoint()  # a method, not the builtin
            """
        )
    )
    assert [(b.line, b.function) for b in index.breakpoints] == [(1, None), (6, "K.m"), (8, "K.m.inner")]


# -- entries ---------------------------------------------------------------


def test_marker_entries_with_and_without_call() -> None:
    index = index_text(
        src(
            """
            def f(xs):  # << START_OF_TRACE
                return sum(xs)

            def g(a, b):  # << START_OF_TRACE g([3, 4], b=2)
                return a

            def h(a):  # << START_OF_TRACE: this is the entry
                return a

            # << START_OF_TRACE on no def line
            """
        )
    )
    assert index.entries == [
        EntryPoint("f", "", "marker", 1),
        EntryPoint("g", "g([3, 4], b=2)", "marker", 4),
        EntryPoint("h", "", "marker", 7),
    ]


def test_doctest_entries_pick_the_call_to_the_function() -> None:
    index = index_text(
        src(
            '''
            def f(n):
                """Square.

                >>> print(f(3))
                9
                >>> [f(i) for i in range(2)]
                [0, 1]
                >>> g(2)
                >>> f(
                ...     4)
                16
                """
                return n * n
            '''
        )
    )
    assert index.entries == [
        EntryPoint("f", "f(3)", "doctest", 4),
        EntryPoint("f", "f(i)", "doctest", 6),
        EntryPoint("f", "f(\n    4)", "doctest", 9),
    ]


def test_main_entries_and_constructor_methods() -> None:
    index = index_text(
        src(
            """
            class Stack:
                def __init__(self):
                    self.items = []

                def push(self, x):
                    self.items.append(x)
                    return len(self.items)

            def count_letter(word, letter):
                return word.count(letter)

            if __name__ == "__main__":
                print(count_letter("strawberry", "r"))
                Stack().push(3)
                len("not mine")
            """
        )
    )
    assert index.entries == [
        EntryPoint("count_letter", 'count_letter("strawberry", "r")', "main", 13),
        EntryPoint("Stack.push", "Stack().push(3)", "main", 14),
    ]


def test_pytest_entries_in_the_same_text() -> None:
    index = index_text(
        src(
            """
            def add(a, b):
                return a + b

            def test_add():
                assert add(1, 2) == 3
                assert add(a=0, b=0) == 0

            class TestAdd:
                def test_more(self):
                    assert add(2, 2) == 4

            def helper():
                add(5, 5)  # not a test
            """
        )
    )
    assert index.entries == [
        EntryPoint("add", "add(1, 2)", "pytest", 5),
        EntryPoint("add", "add(a=0, b=0)", "pytest", 6),
        EntryPoint("add", "add(2, 2)", "pytest", 10),
    ]


def test_entry_kinds_come_in_discovery_order_and_default_call() -> None:
    index = index_text(
        src(
            '''
            def test_f():
                assert f(9) == 9

            def f(x):  # << START_OF_TRACE
                """
                >>> f(1)
                1
                """
                return x

            if __name__ == "__main__":
                f(2)
            '''
        )
    )
    assert [e.kind for e in index.entries] == ["marker", "doctest", "main", "pytest"]
    entry = default_call_for(index, "f")
    assert entry is not None and (entry.kind, entry.call) == ("doctest", "f(1)")
    marked = index_text("def f(x):  # << START_OF_TRACE f(7)\n    return x\n\nif __name__ == '__main__':\n    f(2)\n")
    assert default_call_for(marked, "f") == EntryPoint("f", "f(7)", "marker", 1)
    bare = index_text("def f(x):  # << START_OF_TRACE\n    return x\n")
    assert default_call_for(bare, "f") == EntryPoint("f", "", "marker", 1)
    assert default_call_for(bare, "nope") is None


def test_find_test_calls_in_another_file() -> None:
    tests = src(
        """
        import mod
        from mod import count_letter, Stack

        def test_count():
            assert count_letter("strawberry", "r") == 3
            assert mod.count_letter("aa", "a") == 2

        def test_stack():
            assert Stack().push(1) == 1
            other(3)

        def not_a_test():
            count_letter("x", "x")
        """
    )
    found = find_test_calls(tests, {"count_letter", "Stack.push"})
    assert found == [
        EntryPoint("count_letter", 'count_letter("strawberry", "r")', "pytest", 5),
        EntryPoint("count_letter", 'mod.count_letter("aa", "a")', "pytest", 6),
        EntryPoint("Stack.push", "Stack().push(1)", "pytest", 9),
    ]
    assert find_test_calls("def test_x(:\n", {"f"}) == []
    assert find_test_calls("\x00\x01", {"f"}) == []


EXAMPLE_ENTRIES = {
    "binary_search.py": [
        ("binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)", "doctest", 4),
        ("binary_search", "binary_search([1, 3, 5, 7, 9, 11], 7)", "main", 20),
    ],
    "hole.py": [("running_max", "running_max([3, 1, 4, 1, 5])", "doctest", 4)],
    "raises.py": [("average", "average([])", "doctest", 4), ("parse_port", 'parse_port("70000")', "main", 20)],
    "recursion.py": [
        ("factorial", "factorial(4)", "doctest", 4),
        ("factorial", "factorial(4)", "main", 29),
        ("fib_list", "fib_list(5)", "main", 30),
    ],
    "strawberry.py": [
        ("count_letter", 'count_letter("strawberry", "r")', "doctest", 7),
        ("count_letter", 'count_letter("strawberry", "r")', "main", 18),
    ],
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_ENTRIES))
def test_examples_index_cleanly_with_their_entries(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    index = index_text(text)
    assert [(e.function, e.call, e.kind, e.line) for e in index.entries] == EXAMPLE_ENTRIES[name]
    assert index.syntax_errors == []
    for fn in index.functions:
        assert fn.first_line <= fn.body_start_line <= fn.end_line
        # what the tracer reports for the call: the code object's first line
        code = compile(text.replace("??", "__"), name, "exec")
        const = next(c for c in code.co_consts if getattr(c, "co_name", None) == fn.name)
        assert const.co_firstlineno == fn.first_line
    if name == "hole.py":
        assert [(h.span.start_line + 1, h.kind, h.function) for h in index.holes] == [(11, "expression", "running_max")]


# -- calls -----------------------------------------------------------------


def test_parse_call_validates_and_normalises() -> None:
    assert parse_call("  f( [3,4] , k = 'a' ) ", "f") == "f([3, 4], k='a')"
    assert parse_call("Stack().push(3)", "Stack.push") == "Stack().push(3)"
    index = index_text("def f(x):\n    return x\n")
    assert parse_call("f(1)", index.functions[0]) == "f(1)"
    with pytest.raises(CallError, match="calls g, not f"):
        parse_call("g(1)", "f")
    with pytest.raises(CallError, match="does not parse"):
        parse_call("f(1", "f")
    with pytest.raises(CallError, match="not a call"):
        parse_call("f", "f")
    with pytest.raises(CallError, match="empty"):
        parse_call("   ", "f")
    with pytest.raises(CallError, match="does not parse"):
        parse_call("f(1); f(2)", "f")
    with pytest.raises(CallError):
        parse_call("f(\x00)", "f")
    with pytest.raises(CallError) as info:
        parse_call("f(" * 300 + ")" * 300, "f")
    assert "\n" not in str(info.value)


# -- syntax problems -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("def f(:\n    pass\n", 0, "missing ')'"),
        ("x = 1\nf(x\n", 1, "'(' was never closed"),
        ("if x\n    pass\n", 0, "expected ':'"),
        ("def f():\nreturn 1\n", 0, "expected an indented block after function definition"),
        ("x = 1 +\n", 0, "invalid syntax: unexpected end of line"),
        ("x = ???\n", 0, "invalid syntax: unexpected '?'"),
        ("def f():\n    x = 1\n        y = 2\n", 2, "unexpected indent"),
        ('x = "open\n', 0, "unterminated string literal"),
    ],
)
def test_syntax_errors_have_useful_messages(text: str, line: int, message: str) -> None:
    index = index_text(text)
    assert [(p.span.start_line, p.message) for p in index.syntax_errors] == [(line, message)]


def test_errors_in_two_functions_are_both_reported_and_functions_survive() -> None:
    index = index_text("def a():\n    x = = 1\n\n\ndef b():\n    return 2\n\n\ndef c(:\n    pass\n")
    assert [p.span.start_line for p in index.syntax_errors] == [1, 8]
    assert [f.qualname for f in index.functions] == ["a", "b", "c"]


def test_bad_input_never_raises() -> None:
    rng = random.Random(1234)
    alphabet = "abc_ =:()[]{}'\"#\\\n\r\t?@.,;+-*/<>!%&|^~0123456789 defclassiflambdaé😀中\x0c"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        index = index_text(text)
        assert isinstance(index, SourceIndex)
        n_lines = text.count("\n") + text.count("\r") + 1
        for problem in index.syntax_errors:
            assert 0 <= problem.span.start_line <= n_lines
    for _ in range(100):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        index = index_text(raw.decode("utf-8", "surrogateescape"))
        assert isinstance(index, SourceIndex)
    deep = "x = " + "(" * 2000 + "1" + ")" * 2000 + "\n"
    assert isinstance(index_text(deep), SourceIndex)
    chain = "x = " + " + ".join(["1"] * 20000) + "\n"
    assert index_text(chain).identifiers[1] == [("x", 0, 1)]


def test_empty_and_binary_text() -> None:
    assert index_text("") == SourceIndex()
    assert index_text("\n\n   \n") == SourceIndex()
    binary = index_text("\x00\x01\x02def f(): pass")
    assert [p.message for p in binary.syntax_errors] == [BINARY_MESSAGE]
    assert binary.functions == []


# -- identifiers, unicode, tabs, line ends ---------------------------------


def test_identifiers_with_unicode_columns_in_characters() -> None:
    text = "s = '😀é'; größe = s\ndef π(ñ):\n    return ñ\n"
    index = index_text(text)
    assert index.identifiers[1] == [("s", 0, 1), ("größe", 10, 15), ("s", 18, 19)]
    assert index.identifiers[2] == [("π", 4, 5), ("ñ", 6, 7)]
    assert index.function("π").params == ("ñ",)  # type: ignore[union-attr]
    line = text.split("\n")[0]
    for name, start, end in index.identifiers[1]:
        assert line[start:end] == name


def test_tabs_crlf_and_lone_cr_line_numbers() -> None:
    text = "def f(a):\r\n\tb = a\r\n\treturn b\r\n\r\ndef g():\r\treturn 1\r"
    index = index_text(text)
    assert index.syntax_errors == []
    f, g = index.functions
    assert (f.qualname, f.def_line, f.end_line) == ("f", 1, 3)
    assert (g.qualname, g.def_line, g.end_line) == ("g", 5, 6)
    assert index.identifiers[2] == [("b", 1, 2), ("a", 5, 6)]
    assert f.source_hash == hashlib.sha256(b"def f(a):\r\n\tb = a\r\n\treturn b").hexdigest()


def test_fifty_thousand_line_file() -> None:
    body = "".join(f"def f{i}(x):\n    y = x + {i}\n    return y\n\n\n" for i in range(10_000))
    assert body.count("\n") == 50_000
    index = index_text(body)
    assert len(index.functions) == 10_000
    assert index.functions[-1].def_line == 49_996
    assert index.syntax_errors == []
    assert len(index.identifiers) == 30_000


def test_line_numbers_agree_with_python_ast() -> None:
    import ast

    text = (EXAMPLES / "recursion.py").read_text() + src(
        """

        class A:
            @property
            def p(self):
                return 1

            async def q(self, *a, **k):
                '''doc'''
                return [x for x in a]
        """
    )
    tree = ast.parse(text)
    expected = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            expected[node.name] = (first, node.lineno, node.end_lineno, node.body[0].lineno)
    got = {f.name: (f.first_line, f.def_line, f.end_line, f.body_start_line) for f in index_text(text).functions}
    assert got == expected
    assert sys.version_info >= (3, 11)


def test_doctest_in_a_method_and_broken_examples() -> None:
    index = index_text(
        src(
            '''
            class Stack:
                def push(self, x):
                    """
                    >>> Stack().push(3)
                    1
                    >>> Stack().push(
                    >>> push_all([1])
                    """
                    return 1
            '''
        )
    )
    assert index.entries == [EntryPoint("Stack.push", "Stack().push(3)", "doctest", 4)]
