"""A small evaluator for goal expressions over values read from reprs.

``--returns EXPR`` compares the return value with a constant expression and
``--when LINE EXPR`` is a condition on the locals at a line; both are judged
on what a trace records: reprs (a real run's or the model's). The debug
adapter's safe evaluator (neuraldbg/dap/safe_eval.py) sits in a layer above
this one (dap imports session, which imports this package), so the search
carries its own, smaller one: literals, names bound to the locals' values
(``ast.literal_eval`` of their reprs), arithmetic, comparisons, boolean
logic, indexing and a few pure builtins and str/list/dict methods. Anything
else is :class:`Undecidable`, never a guess.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

MAX_SIZE = 100_000  # a string or sequence the evaluator may build (``"a" * 10**9`` is refused)


class Undecidable(ValueError):
    """The expression cannot be judged on these values (one line)."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.LShift: operator.lshift,
    ast.RShift: operator.rshift, ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len, "abs": abs, "min": min, "max": max, "sum": sum, "sorted": sorted, "str": str, "int": int,
    "float": float, "bool": bool, "tuple": tuple, "list": list, "set": set, "any": any, "all": all, "round": round,
    "repr": repr,
}
_METHODS = frozenset({
    "startswith", "endswith", "lower", "upper", "strip", "count", "index", "find", "isdigit", "isalpha", "split",
    "keys", "values", "items", "get", "join", "replace",
})


def parse_expression(text: str) -> ast.expression:
    """``text`` as one expression; raises SyntaxError (the caller says it in one line)."""
    return ast.parse(text.strip(), mode="eval")


def from_repr(text: str) -> Any:
    """The value a repr stands for, when it is a literal; else Undecidable."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise Undecidable(f"{text[:60]} is not a literal") from None


def evaluate(tree: ast.expression, names: Mapping[str, str]) -> Any:
    """The value of ``tree`` with each name bound to the value of its repr in ``names``."""
    cache: dict[str, Any] = {}

    def name(n: str) -> Any:
        if n not in cache:
            if n in names:
                cache[n] = from_repr(names[n])
            elif n in ("True", "False", "None"):
                cache[n] = {"True": True, "False": False, "None": None}[n]
            elif not names:
                raise Undecidable(f"{n!r} is a name, not a constant")
            else:
                raise Undecidable(f"no local {n!r} there")
        return cache[n]

    return _Eval(name).visit(tree.body)


def constant(text: str) -> Any:
    """The value of a constant expression (``--returns``); raises SyntaxError or Undecidable."""
    return evaluate(parse_expression(text), {})


class _Eval:
    def __init__(self, name: Callable[[str], Any]) -> None:
        self.name = name

    def visit(self, node: ast.expr) -> Any:
        value = self._visit(node)
        if isinstance(value, (str, bytes, list, tuple, dict, set)) and len(value) > MAX_SIZE:
            raise Undecidable("the expression builds too large a value")
        return value

    def _visit(self, node: ast.expr) -> Any:  # noqa: C901 - one case per node kind
        v = self.visit
        try:
            if isinstance(node, ast.Constant):
                return node.value
            if isinstance(node, ast.Name):
                return self.name(node.id)
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                items = [v(e) for e in node.elts]
                return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](items)
            if isinstance(node, ast.Dict):
                if any(k is None for k in node.keys):
                    raise Undecidable("** in a dict display")
                return {v(k): v(val) for k, val in zip(node.keys, node.values)}  # type: ignore[arg-type]
            if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
                left, right = v(node.left), v(node.right)
                if isinstance(node.op, ast.Pow) and isinstance(right, int) and abs(right) > 1000:
                    raise Undecidable("too large a power")
                if isinstance(node.op, ast.Mult) and _too_big(left, right):
                    raise Undecidable("the expression builds too large a value")
                return _BINARY[type(node.op)](left, right)
            if isinstance(node, ast.UnaryOp):
                return _UNARY[type(node.op)](v(node.operand))
            if isinstance(node, ast.BoolOp):
                last: Any = None
                for value in node.values:
                    last = v(value)
                    if isinstance(node.op, ast.And) != bool(last):
                        return last
                return last
            if isinstance(node, ast.Compare):
                left = v(node.left)
                for op, right_node in zip(node.ops, node.comparators):
                    right = v(right_node)
                    if not _COMPARE[type(op)](left, right):
                        return False
                    left = right
                return True
            if isinstance(node, ast.IfExp):
                return v(node.body) if v(node.test) else v(node.orelse)
            if isinstance(node, ast.Subscript):
                target = v(node.value)
                if isinstance(node.slice, ast.Slice):
                    s = node.slice
                    return target[slice(*(None if p is None else v(p) for p in (s.lower, s.upper, s.step)))]
                return target[v(node.slice)]
            if isinstance(node, ast.Call) and not node.keywords:
                args = [v(a) for a in node.args if not isinstance(a, ast.Starred)]
                if len(args) != len(node.args):
                    raise Undecidable("starred arguments")
                if isinstance(node.func, ast.Name) and node.func.id in _BUILTINS:
                    return _BUILTINS[node.func.id](*args)
                if isinstance(node.func, ast.Attribute) and node.func.attr in _METHODS:
                    owner = v(node.func.value)
                    if isinstance(owner, (str, list, tuple, dict)):
                        return getattr(owner, node.func.attr)(*args)
        except Undecidable:
            raise
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError, AttributeError,
                RecursionError, MemoryError) as exc:
            raise Undecidable(f"{type(exc).__name__}: {exc}") from None
        raise Undecidable(f"{ast.unparse(node)[:60]} is beyond what a goal expression may use")


def _too_big(left: Any, right: Any) -> bool:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_SIZE:
            return True
    return False
