"""Full index vs incremental re-index after a one-character edit.

Builds a ~5,000-line Python file (functions with docstrings and doctests,
classes with methods, a __main__ block) and prints median / p99 times of:

  (a) a full index of the text (``index_text``: parse + index);
  (b) ``Document.apply_edit`` of one character inside a function in the
      middle of the file + ``Document.index`` (the splice path);
  (c) the same edit when the file also holds a syntax error elsewhere, so
      the whole tree is re-parsed incrementally (``tree.edit`` +
      ``parse(new, old_tree)``) and per-group results are reused from cache.

Usage: python benchmarks/bench_index.py [--runs 50] [--lines 5000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from neuraldbg.source.document import Document
from neuraldbg.source.index import index_text


def build_source(target_lines: int) -> str:
    parts: list[str] = []
    i = 0
    while sum(p.count("\n") for p in parts) < target_lines - 10:
        if i % 5 == 4:
            parts.append(
                f"class Box{i}:\n"
                f'    """A box."""\n\n'
                f"    def __init__(self, value: int) -> None:\n"
                f"        self.value = value\n\n"
                f"    def grow(self, by: int = 1) -> int:\n"
                f"        self.value += by * {i}\n"
                f"        return self.value\n\n\n"
            )
        else:
            parts.append(
                f"def func_{i}(items: list[int], scale: int = 2, *rest, **opts) -> int:\n"
                f'    """Sum scaled items.\n\n'
                f"    >>> func_{i}([1, 2, 3])\n"
                f"    12\n"
                f'    """\n'
                f"    total = 0\n"
                f"    for x in items:\n"
                f"        if x % 2 == 0:\n"
                f"            total += x * scale\n"
                f"        else:\n"
                f"            total += x + {i}\n"
                f"    return total\n\n\n"
            )
        i += 1
    parts.append('if __name__ == "__main__":\n    print(func_0([1, 2, 3]))\n')
    return "".join(parts)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure(fn: Callable[[], object], runs: int) -> list[float]:
    out: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def one_char_edits(doc: Document, line: int, col: int) -> Callable[[], object]:
    """Alternately insert and delete one character, re-indexing each time."""
    state = {"inserted": False}

    def run() -> object:
        if state["inserted"]:
            doc.apply_edit((line, col), (line, col + 1), "")
        else:
            doc.apply_edit((line, col), (line, col), "y")
        state["inserted"] = not state["inserted"]
        index = doc.index
        assert doc.changed_functions(), "the edit must touch a function"
        return index

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--lines", type=int, default=5000)
    args = ap.parse_args()

    text = build_source(args.lines)
    lines = text.split("\n")
    target = next(i for i in range(len(lines) // 2, len(lines)) if lines[i].strip().startswith("total = 0"))
    n_functions = len(index_text(text).functions)

    full = measure(lambda: index_text(text), args.runs)

    doc = Document(text)
    doc.index
    splice = measure(one_char_edits(doc, target, 4), args.runs)
    assert doc.index == index_text(doc.text), "incremental index differs from a full index"

    broken = text + "\ndef broken(:\n    pass\n"
    doc2 = Document(broken)
    doc2.index
    reparse = measure(one_char_edits(doc2, target, 4), args.runs)
    assert doc2.index == index_text(doc2.text), "incremental index differs from a full index"

    print(f"file: {len(lines)} lines, {len(text.encode())} bytes, {n_functions} functions; {args.runs} runs each")
    print(f"{'case':<52} {'median ms':>10} {'p99 ms':>10} {'full/this':>10}")
    full_med = statistics.median(full)
    rows = [
        ("(a) full index (index_text)", full),
        ("(b) 1-char edit + index (splice path)", splice),
        ("(c) 1-char edit + index, error elsewhere (re-parse)", reparse),
    ]
    for name, values in rows:
        med = statistics.median(values)
        print(f"{name:<52} {med:>10.2f} {percentile(values, 99):>10.2f} {full_med / med:>9.1f}x")
    # The run_all.py convention: FIGURE <name> | <value> | <unit>
    for key, values in (("full", full), ("edit_splice", splice), ("edit_reparse", reparse)):
        print(f"FIGURE index.{key}_p50 | {statistics.median(values):.2f} | ms ({len(lines)} lines, {n_functions} functions)")
        print(f"FIGURE index.{key}_p99 | {percentile(values, 99):.2f} | ms")
    for key, values in (("edit_splice", splice), ("edit_reparse", reparse)):
        print(f"FIGURE index.{key}_speedup | {full_med / statistics.median(values):.1f} | x faster than a full index")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
