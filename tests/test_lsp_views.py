"""What hovers, inlay hints, diagnostics and verification make of a trace
(the pure view functions of neuraldbg/server), on hand-written traces that
exercise streaming, caps, exceptions, recursion and divergences."""

from __future__ import annotations

from neuraldbg.server.diagnostics import index_problems, trace_problems
from neuraldbg.server.hover import STILL_PREDICTING, HoverQuery, hover_markdown, pending_markdown
from neuraldbg.server.inlay import inlay_items
from neuraldbg.server.lenses import lenses_for
from neuraldbg.trace.values import call_outcome, capped, exception_text, produced, value_chain
from neuraldbg.server.verify import first_divergence
from neuraldbg.source.index import index_text
from neuraldbg.trace.frames import Frame, Trace

SRC = '''def f(xs):
    total = 0
    for x in xs:
        total += x
    breakpoint()
    return total
'''


def _trace(xs: list[int], *, predicted: bool = False, cut: int | None = None, status: str = "complete") -> Trace:
    frames = [Frame("call", 1, "f", 0, {"xs": repr(xs)})]
    total = 0
    frames.append(Frame("line", 2, "f", 0, {"xs": repr(xs)}))
    state = {"xs": repr(xs), "total": "0"}
    for x in xs:
        frames.append(Frame("line", 3, "f", 0, dict(state)))
        state["x"] = repr(x)
        frames.append(Frame("line", 4, "f", 0, dict(state)))
        total += x
        state["total"] = repr(total)
    frames.append(Frame("line", 3, "f", 0, dict(state)))
    frames.append(Frame("line", 5, "f", 0, dict(state)))
    frames.append(Frame("line", 6, "f", 0, dict(state)))
    frames.append(Frame("return", 6, "f", 0, {}, repr(total)))
    if cut is not None:
        frames = frames[:cut]
    return Trace("f", f"f({xs!r})", "local" if predicted else "exec", frames=frames, status=status,  # type: ignore[arg-type]
                 model="cwm" if predicted else None, predicted=predicted)


def _q(line: int, word: str | None) -> HoverQuery:
    fn = index_text(SRC).function("f")
    assert fn is not None
    return HoverQuery(fn=fn, line=line, word=word, line_text=SRC.splitlines()[line - 1])


def test_value_chain_and_caps():
    t = _trace([3, 4])
    assert value_chain(t.visits(4, "f"), "total") == ["0", "3", "7"]
    assert value_chain(t.visits(4, "f"), "x") == ["3", "4"]
    assert produced(t.visits(3, "f")) == {"x": ["3", "4"]}
    assert capped([str(i) for i in range(14)], 10).endswith("9 … 4 more")
    assert capped(["x" * 100], 5) == "x" * 79 + "…"


def test_hover_for_assignments_def_and_return_lines():
    t = _trace([3, 4])
    md = hover_markdown(t, _q(4, "total"))
    assert md is not None and "total: 0 → 3 → 7" in md and "line 4 · 2 visits" in md
    assert "executed (real run) · input `f([3, 4])`" in md
    md = hover_markdown(t, _q(1, None))
    assert md is not None and "f(xs=[3, 4]) → 7" in md and "1 call" in md
    md = hover_markdown(t, _q(6, "total"))
    assert md is not None and "total: 7" in md and "returns: 7" in md
    assert hover_markdown(t, _q(2, None)) is None


def test_hover_while_streaming_and_for_unreached_lines():
    t = _trace([3, 4, 5], predicted=True, cut=6, status="streaming")
    md = hover_markdown(t, _q(4, "total"))
    assert md is not None and "total: 0 → 3" in md and STILL_PREDICTING in md and "predicted by cwm" in md
    md = hover_markdown(t, _q(6, "total"))
    assert md is not None and "line 6 not executed" in md
    md = hover_markdown(t, _q(1, None))
    assert md is not None and "f(xs=[3, 4, 5]) → …" in md


def test_inlay_items_values_breakpoint_and_exception():
    index = index_text(SRC)
    fn = index.function("f")
    t = _trace([3, 4])
    items = {(i.line, i.kind): i.label for i in inlay_items(t, fn, index, 1, 6)}
    assert items[(2, "value")] == "total = 0"
    assert items[(3, "value")] == "x = 3 → 4"
    assert items[(4, "value")] == "total = 3 → 7"
    assert items[(5, "breakpoint")] == "⏸ xs=[3, 4], total=7, x=4"
    assert inlay_items(t, fn, index, 3, 3) == [i for i in inlay_items(t, fn, index, 1, 6) if i.line == 3]
    raising = Trace("f", "f(None)", "exec", frames=[
        Frame("call", 1, "f", 0, {"xs": "None"}),
        Frame("line", 2, "f", 0, {"xs": "None"}),
        Frame("line", 3, "f", 0, {"xs": "None", "total": "0"}),
        Frame("exception", 3, "f", 0, {"xs": "None", "total": "0"}, "TypeError(\"'NoneType' object is not iterable\")"),
        Frame("return", 3, "f", 0, {}, None),
    ])
    labels = [i.label for i in inlay_items(raising, fn, index, 1, 6) if i.kind == "exception"]
    assert labels == ["raises TypeError(\"'NoneType' object is not iterable\")"]
    assert call_outcome(raising, 0) == ("raises", "TypeError(\"'NoneType' object is not iterable\")")
    problems = trace_problems(raising, fn, SRC.splitlines())
    assert [(p.code, p.severity, p.span.start_line, p.message) for p in problems] == [
        ("exception", "error", 2, "TypeError: 'NoneType' object is not iterable (for f(None))")]


def test_diagnostics_for_holes_syntax_and_non_halting():
    index = index_text("def g(a):\n    b = ??\n    return b +\n")
    codes = sorted((p.code, p.severity) for p in index_problems(index))
    assert ("hole", "information") in codes and ("syntax", "error") in codes
    fn = index_text(SRC).function("f")
    looping = _trace([1, 2], predicted=True, status="truncated")
    looping.error = "stopped after 2000 frames (the program may not halt)"
    (p,) = trace_problems(looping, fn, SRC.splitlines())
    assert p.code == "may-not-halt" and p.severity == "warning" and p.span.start_line == 0
    assert p.message == "may not halt: stopped after 2000 frames (the program may not halt) (predicted for f([1, 2]))"
    assert exception_text("ValueError('port out of range: 70000')") == "ValueError: port out of range: 70000"
    assert exception_text("KeyError(3)") == "KeyError: 3"
    assert exception_text("StopIteration()") == "StopIteration"


def test_first_divergence():
    truth = _trace([3, 4])
    assert first_divergence(truth, _trace([3, 4])) is None
    wrong = _trace([3, 4])
    frames = list(wrong.frames)
    frames[3] = Frame("line", 4, "f", 0, {"xs": "[3, 4]", "total": "0", "x": "5"})
    wrong.frames = frames
    d = first_divergence(wrong, truth)
    assert d is not None and (d.step, d.line) == (3, 4)
    assert d.message == "first divergence at step 3, line 4: predicted x=5, executed x=3"
    jumped = _trace([3, 4])
    jumped.frames = [*jumped.frames[:4], Frame("line", 6, "f", 0, dict(jumped.frames[4].locals)), *jumped.frames[5:]]
    d = first_divergence(jumped, truth)
    assert d is not None and d.message == "first divergence at step 4, line 3: predicted line 6, executed line 3"
    short = _trace([3, 4], cut=5)
    d = first_divergence(short, truth)
    assert d is not None and d.step == 5 and "the prediction ended" in d.message
    other_value = _trace([3, 4])
    other_value.frames = [*other_value.frames[:-1], Frame("return", 6, "f", 0, {}, "8")]
    d = first_divergence(other_value, truth)
    assert d is not None and d.message.endswith("predicted return 8, executed 7")


def test_lens_titles_per_backend():
    fn = index_text(SRC).function("f")
    titles = lambda **kw: [l.title for l in lenses_for(fn, "file:///a.py", **kw)]  # noqa: E731
    assert titles(call="f([1])", input_origin="doctest", backend="exec", allow_execution=True) == ["▶ Simulate f([1])"]
    assert titles(call="", input_origin="imagined", backend="local", allow_execution=False) == [
        "▶ Simulate f(…) with imagined input", "↻ Resample input"]
    assert titles(call="f([1])", input_origin="doctest", backend="remote", allow_execution=True) == [
        "▶ Simulate f([1])", "↻ Resample input", "✓ Verify with a real run"]
    assert titles(call=None, input_origin="", backend="exec", allow_execution=True) == ["▶ Simulate f(…): set an input"]


# -- hover rules that read well on real code --------------------------------

def test_loop_variable_chain_has_no_repeated_exit_value():
    t = _trace([3, 4])
    # line 3 ("for x in xs:") runs three times: x=3, x=4, then the exit test
    assert value_chain(t.visits(3, "f"), "x") == ["3", "4"]
    md = hover_markdown(t, _q(3, "x"))
    assert md is not None and "x: 3 → 4\n" in md and "line 3 · 3 visits" in md
    # a name the line reads with different values keeps one value per visit
    assert "total: 0 → 3 → 7\n" in (hover_markdown(t, _q(3, "total")) or "")


def test_unchanged_value_is_shown_once():
    t = _trace([3, 4, 5])
    assert value_chain(t.visits(3, "f"), "xs") == ["[3, 4, 5]"]
    md = hover_markdown(t, _q(3, "xs"))
    assert md is not None and "xs: [3, 4, 5] (unchanged)\n" in md and "4 visits" in md
    # one visit: the value alone
    md = hover_markdown(t, _q(6, "total"))
    assert md is not None and "total: 12\n" in md and "unchanged" not in md


def test_a_line_that_sometimes_keeps_the_value_shows_its_history():
    # best = max(best, x) over 1, 3, 2, 5: 3 is kept on the third visit
    frames = [Frame("call", 1, "f", 0, {})]
    best = 0
    for x in (1, 3, 2, 5):
        frames.append(Frame("line", 2, "f", 0, {"best": repr(best), "x": repr(x)}))
        best = max(best, x)
    frames.append(Frame("line", 3, "f", 0, {"best": repr(best), "x": "5"}))
    frames.append(Frame("return", 3, "f", 0, {}, repr(best)))
    t = Trace("f", "f()", "exec", frames=frames)
    assert value_chain(t.visits(2, "f"), "best") == ["0", "1", "3", "5"]


def _kq(line: int, word: str, kind: str) -> HoverQuery:
    return HoverQuery(**{**_q(line, word).__dict__, "kind": kind})


def test_names_that_are_not_variables_get_no_hover():
    t = _trace([3, 4])
    for line, word, kind in [(4, "total", "attribute"), (4, "x", "keyword"), (2, "total", "annotation"),
                             (1, "xs", "annotation")]:
        assert hover_markdown(t, _kq(line, word, kind)) is None, (line, word, kind)
    # the rest of the signature still shows the calls
    assert "1 call" in (hover_markdown(t, _kq(1, "xs", "local")) or "")
    # on a line the run never reached, only a variable of the function is "not executed"
    cut = _trace([3, 4], cut=6)
    assert hover_markdown(cut, _kq(6, "ValueError", "name")) is None
    assert "line 6 not executed" in (hover_markdown(cut, _kq(6, "total", "local")) or "")
    # a name the index cannot place but the trace shows among the locals is one
    assert "line 6 not executed" in (hover_markdown(cut, _kq(6, "total", "name")) or "")


def test_a_multi_line_input_is_shown_in_a_code_block():
    t = _trace([3, 4])
    t.call = "f(\n    [3, 4],\n)"
    md = hover_markdown(t, _q(4, "total"), input_origin="doctest")
    assert md is not None
    assert md.endswith("executed (real run) · input (doctest)\n\n```python\nf(\n    [3, 4],\n)\n```"), md
    t.call = "f(['`'])"  # a backtick would end inline code
    md = hover_markdown(t, _q(4, "total")) or ""
    assert md.endswith("input\n\n```python\nf(['`'])\n```"), md
    assert pending_markdown(index_text(SRC).function("f"), "f(\n  [1],\n)", "tracing…").endswith(
        "input\n\n```python\nf(\n  [1],\n)\n```")
