"""neuraldbg.source.document: LSP edits, incremental re-index, changed
functions, odd input."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from neuraldbg.source.document import Document
from neuraldbg.source.index import BINARY_MESSAGE, index_text
from neuraldbg.source.positions import (
    column_to_index,
    index_to_column,
    line_starts,
    offset_at,
    split_lines,
    update_line_starts,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

THREE = textwrap.dedent(
    '''
    def a(x):
        """
        >>> a(1)
        """
        return x + 1


    def b(y):
        total = 0
        for i in range(y):
            total += i
        return total


    class C:
        def m(self):
            return b(3)


    if __name__ == "__main__":
        print(a(2))
    '''
).lstrip("\n")


def assert_consistent(doc: Document) -> None:
    """The incremental index equals a full index of the final text."""
    assert doc.index == index_text(doc.text)
    assert doc.lines == split_lines(doc.text)


# -- edits -----------------------------------------------------------------


def test_insert_delete_and_multiline_edits() -> None:
    doc = Document(THREE, uri="file:///three.py")
    doc.index
    doc.apply_edit((10, 13), (10, 13), "x")  # "total += i" -> "totalx += i"
    assert doc.lines[10] == "        totalx += i"
    assert_consistent(doc)
    doc.apply_edit((10, 8), (10, 14), "total")
    assert doc.text == THREE
    assert_consistent(doc)
    # multi-line: replace the body of b by two lines
    doc.apply_edit((8, 4), (11, 16), "return sum(\n        range(y))")
    assert doc.lines[8:10] == ["    return sum(", "        range(y))"]
    assert_consistent(doc)
    # insert a whole new function between a and b
    doc.apply_edit((6, 0), (6, 0), "def new(q):\n    return q\n\n")
    assert_consistent(doc)
    assert doc.index.function("new").def_line == 7  # type: ignore[union-attr]
    # delete everything
    doc.apply_edit((0, 0), (len(doc.lines), 0), "")
    assert doc.text == ""
    assert_consistent(doc)
    assert doc.version == 5


def test_utf16_utf8_utf32_columns_with_emoji_and_cjk() -> None:
    text = "s = '😀中'; t = 1\n"
    # the same position after the emoji+CJK string, in each encoding
    after_quote = text.index("'", 5) + 1  # str index just after the closing quote
    for encoding, column in (("utf-16", 9), ("utf-8", 13), ("utf-32", 8)):
        assert column_to_index(text.split("\n")[0], column, encoding) == after_quote  # type: ignore[arg-type]
        assert index_to_column(text.split("\n")[0], after_quote, encoding) == column  # type: ignore[arg-type]
        doc = Document(text)
        doc.apply_edit((0, column), (0, column), " + 'x'", encoding=encoding)  # type: ignore[arg-type]
        assert doc.text == "s = '😀中' + 'x'; t = 1\n"
        assert_consistent(doc)
        assert doc.index.identifiers[1] == [("s", 0, 1), ("t", 16, 17)]
    # a column inside the surrogate pair falls back to the emoji's start
    assert column_to_index("'😀'", 2, "utf-16") == 1
    doc = Document("😀x = 1\n")
    doc.apply_edit((0, 2), (0, 3), "y", encoding="utf-16")  # replace 'x' after the emoji
    assert doc.text == "😀y = 1\n"


def test_crlf_and_lone_cr_edits() -> None:
    text = "def f(a):\r\n    return a\r\n\r\ndef g():\r\n    return 2\r\n"
    doc = Document(text)
    doc.index
    doc.apply_edit((1, 12), (1, 12), " + 1")
    assert doc.lines[1] == "    return a + 1"
    assert_consistent(doc)
    assert doc.changed_functions() == {"f"}
    # split a CRLF pair: "\r" + "\n" edits must keep lines consistent
    doc.apply_edit((0, 9), (1, 0), "\r")  # old CRLF replaced by a lone CR
    assert doc.lines[0] == "def f(a):"
    assert_consistent(doc)
    doc.apply_edit((0, 9), (0, 9), "\n")  # "\n" + "\r": two line ends now
    assert len(doc.lines) == len(split_lines(doc.text))
    assert_consistent(doc)
    # a lone CR ends a line for LSP, Python and the index alike
    doc = Document("x = 1\ry = 2\r")
    assert doc.lines == ["x = 1", "y = 2", ""]
    assert doc.index.identifiers == {1: [("x", 0, 1)], 2: [("y", 0, 1)]}
    doc.apply_edit((1, 0), (1, 1), "z")
    assert doc.index.identifiers == {1: [("x", 0, 1)], 2: [("z", 0, 1)]}
    assert_consistent(doc)


def test_positions_out_of_range_are_clamped_and_reversed_ranges_swapped() -> None:
    doc = Document("ab\ncd\n")
    doc.apply_edit((0, 99), (0, 99), "!")  # past the line end: at the line end
    assert doc.text == "ab!\ncd\n"
    doc.apply_edit((99, 0), (120, 5), "z")  # past the last line: at the end
    assert doc.text == "ab!\ncd\nz"
    doc.apply_edit((-5, -5), (0, 0), "<")
    assert doc.text == "<ab!\ncd\nz"
    doc.apply_edit((1, 2), (1, 0), "CD")  # reversed
    assert doc.text == "<ab!\nCD\nz"
    assert_consistent(doc)
    with pytest.raises(ValueError, match="position encoding"):
        doc.apply_edit((0, 0), (0, 0), "x", encoding="latin-1")  # type: ignore[arg-type]


def test_replace_all_reuses_what_did_not_change() -> None:
    doc = Document(THREE)
    before = {f.qualname: f for f in doc.index.functions}
    doc.replace_all(THREE.replace("total += i", "total += 2 * i"))
    assert doc.changed_functions() == {"b"}
    after = {f.qualname: f for f in doc.index.functions}
    assert after["a"] is before["a"] and after["C.m"] is before["C.m"]
    assert_consistent(doc)
    for text in ["", THREE, THREE + THREE, "x\r\n" * 3, "x\r" + "\n" * 2, THREE[::-1]]:
        doc.replace_all(text)
        assert doc.text == text
        assert_consistent(doc)


def test_replace_all_and_versions() -> None:
    doc = Document("def f():\n    return 1\n", version=3)
    doc.index
    doc.replace_all("def f():\n    return 2\n\ndef g():\n    pass\n", version=7)
    assert doc.version == 7
    assert doc.changed_functions() == {"f", "g"}
    assert_consistent(doc)
    doc.apply_edit((0, 0), (0, 0), "# hi\n")
    assert doc.version == 8


# -- changed functions -----------------------------------------------------


def test_changed_functions_reports_only_the_touched_function() -> None:
    doc = Document(THREE)
    assert doc.changed_functions() == set()  # no edit yet
    doc.apply_edit((10, 20), (10, 20), " * 2")  # inside b
    assert doc.changed_functions() == {"b"}
    doc.apply_edit((16, 18), (16, 19), "4")  # C.m: b(3) -> b(4)
    assert doc.changed_functions() == {"C.m"}
    doc.apply_edit((6, 0), (6, 0), "\n\n\n")  # blank lines move b and C.m, no change
    assert doc.changed_functions() == set()
    doc.apply_edit((0, 0), (0, 0), "def z():\n    pass\n")  # added
    assert doc.changed_functions() == {"z"}
    doc.apply_edit((0, 0), (2, 0), "")  # removed
    assert doc.changed_functions() == {"z"}
    doc.apply_edit((1, 0), (1, 0), "    # a comment that is part of a's text\n")
    assert doc.changed_functions() == {"a"}
    assert_consistent(doc)


def test_edits_between_index_reads_count_together() -> None:
    doc = Document(THREE)
    doc.index
    doc.apply_edit((4, 15), (4, 16), "2")  # a: x + 1 -> x + 2
    doc.apply_edit((11, 11), (11, 16), "total + 0")  # b
    assert doc.changed_functions() == {"a", "b"}
    assert doc.changed_functions() == {"a", "b"}  # asking again does not reset


def test_unchanged_functions_are_reused_not_recomputed() -> None:
    doc = Document(THREE)
    before = {f.qualname: f for f in doc.index.functions}
    doc.apply_edit((10, 20), (10, 20), "+0")
    after = {f.qualname: f for f in doc.index.functions}
    assert after["a"] is before["a"]
    assert after["C.m"] is before["C.m"]
    assert after["b"] is not before["b"] and after["b"].source_hash != before["b"].source_hash


def test_example_files_survive_typing_them_character_by_character() -> None:
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        doc = Document("")
        doc.index
        for i, ch in enumerate(text):
            line, col = doc.position_at(len(doc.text))
            doc.apply_edit((line, col), (line, col), ch)
            if i % 97 == 0 or ch == "\n" and i % 5 == 0:
                assert_consistent(doc)
        assert doc.text == text
        assert_consistent(doc)


# -- property test: random edits ------------------------------------------

FRAGMENTS = [
    "",
    "x",
    "\n",
    "    ",
    "(",
    ")",
    "??",
    "'",
    '"""',
    "#",
    "def h(q):\n    return q\n",
    "😀",
    "中",
    "\r\n",
    "\r",
    ":",
    "if x:\n",
    "else:\n    pass\n",
    "\\\n",
    "@d\n",
    "\t",
    "breakpoint()",
    "  # << START_OF_TRACE f(1)",
    "\n    y = 1",
    "class K:\n    def m(self):\n        return ??\n",
]

SEEDS = [
    THREE,
    (EXAMPLES / "recursion.py").read_text(),
    (EXAMPLES / "hole.py").read_text(),
    "x = 'é😀中'; y = 1\r\ndef f(a):\r\n\treturn a  # 😀\r\n",
]


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_match_a_full_reindex(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        doc = Document(rng.choice(SEEDS))
        doc.index
        expected_text = doc.text
        for _ in range(rng.randint(1, 8)):
            lines = split_lines(doc.text)

            def pos() -> tuple[int, int]:
                line = rng.randint(0, len(lines))
                col = rng.randint(0, len(lines[line]) + 2) if line < len(lines) else rng.randint(0, 3)
                return line, col

            start = pos()
            end = start if rng.random() < 0.4 else pos()
            encoding = rng.choice(["utf-16", "utf-8", "utf-32"])
            fragment = rng.choice(FRAGMENTS)
            starts = line_starts(expected_text)
            s = offset_at(expected_text, starts, *start, encoding)  # type: ignore[arg-type]
            e = offset_at(expected_text, starts, *end, encoding)  # type: ignore[arg-type]
            s, e = min(s, e), max(s, e)
            expected_text = expected_text[:s] + fragment + expected_text[e:]
            if rng.random() < 0.2:
                doc.replace_all(expected_text)  # full-document sync: diffed into one edit
            else:
                doc.apply_edit(start, end, fragment, encoding=encoding)  # type: ignore[arg-type]
            assert doc.text == expected_text
            if rng.random() < 0.6:
                assert_consistent(doc)
        assert_consistent(doc)


def test_update_line_starts_matches_a_rescan() -> None:
    rng = random.Random(7)
    pieces = ["a", "\r", "\n", "\r\n", "bc", ""]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        s = rng.randint(0, len(text))
        e = rng.randint(s, len(text))
        new = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        result = text[:s] + new + text[e:]
        assert update_line_starts(line_starts(text), result, s, e, s + len(new)) == line_starts(result)


# -- odd input ---------------------------------------------------------------


def test_from_bytes_invalid_utf8_binary_and_bom() -> None:
    doc = Document.from_bytes(b"def f():\n    return '\xff'\n", uri="file:///bad.py")
    assert "\ufffd" in doc.text
    problems = doc.index.syntax_errors
    assert len(problems) == 1 and "not valid UTF-8" in problems[0].message
    assert problems[0].span.start_line == 1
    assert [f.qualname for f in doc.index.functions] == ["f"]
    doc.apply_edit((1, 11), (1, 14), "'ok'")
    assert doc.lines[1] == "    return 'ok'"
    assert doc.index.syntax_errors == []

    binary = Document.from_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00garbage(((")
    assert [p.message for p in binary.index.syntax_errors] == [BINARY_MESSAGE]
    assert binary.index.functions == []
    binary.apply_edit((0, 0), (0, 99), "def g():\n    pass\n")  # NULs gone: indexed again
    assert [f.qualname for f in binary.index.functions] == ["g"]
    assert_consistent(binary)
    binary.apply_edit((0, 0), (0, 0), "\x00")
    assert [p.message for p in binary.index.syntax_errors] == [BINARY_MESSAGE]

    bom = Document.from_bytes("\ufeffdef h():\n    pass\n".encode())
    assert bom.text.startswith("def h")
    assert [f.def_line for f in bom.index.functions] == [1]


def test_empty_document_and_tabs() -> None:
    doc = Document("")
    assert doc.index == index_text("")
    assert doc.lines == [""]
    doc.apply_edit((0, 0), (0, 0), "def f(a):\n\tif a:\n\t\treturn 1\n\treturn 2\n")
    assert_consistent(doc)
    assert doc.index.syntax_errors == []
    assert doc.index.identifiers[2] == [("a", 4, 5)]  # "\tif a:": columns count the tab as one character


def test_syntax_errors_appear_and_disappear_while_typing() -> None:
    doc = Document(THREE)
    doc.index
    doc.apply_edit((10, 21), (10, 21), " * (")
    assert [p.message for p in doc.index.syntax_errors] == ["'(' was never closed"]
    assert doc.changed_functions() >= {"b"}
    assert_consistent(doc)
    doc.apply_edit((10, 25), (10, 25), "2)")
    assert doc.index.syntax_errors == []
    assert_consistent(doc)
    assert [f.qualname for f in doc.index.functions] == ["a", "b", "C.m"]


def test_large_document_incremental_edit() -> None:
    body = "".join(f"def f{i}(x):\n    y = x + {i}\n    return y\n\n\n" for i in range(2000))
    doc = Document(body)
    doc.index
    doc.apply_edit((5001, 8), (5001, 8), "1")  # f1000: "y = x + 1000" -> "y = 1x + 1000"
    assert doc.changed_functions() == {"f1000"}
    assert_consistent(doc)
    rng = random.Random(3)
    for _ in range(20):  # full-document sync of one-character changes anywhere
        i = rng.randrange(len(doc.text))
        text = doc.text[:i] + rng.choice(["z", "", "\n", "é"]) + doc.text[i + rng.randint(0, 1) :]
        doc.replace_all(text)
        assert doc.text == text
    assert_consistent(doc)
