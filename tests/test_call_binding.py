from __future__ import annotations

import pytest

from neuraldbg.source.call_binding import BindingError, bind_call, function_params


def test_binds_positional_defaults_varargs_and_keywords() -> None:
    params = function_params("def f(a, b=2, *rest, c, d=None, **kw):\n    return ??\n")
    assert bind_call('f([1, 2], 3, 4, 5, c="x", z=1)', params) == {
        "a": "[1, 2]", "b": "3", "rest": "(4, 5)", "c": "'x'", "d": "None", "kw": "{'z': 1}"}


def test_non_literals_keep_their_text_and_self_is_the_receiver() -> None:
    params = function_params("    def push(self, item):\n        self.items.append(item)\n")
    assert bind_call("Stack().push(Item(3))", params, bound_self="Stack()") == {"self": "Stack()", "item": "Item(3)"}


@pytest.mark.parametrize(("call", "msg"), [("f(1, 2, 3)", "too many"), ("f()", "missing a value"),
                                           ("f(1, x=2)", "unexpected keyword"), ("f(1, a=2)", "multiple values"),
                                           ("f(*xs)", "starred"), ("f(", "does not parse"), ("f", "not a call")])
def test_errors(call: str, msg: str) -> None:
    params = function_params("def f(a, b=0):\n    pass\n")
    with pytest.raises(BindingError, match=msg):
        bind_call(call, params)
