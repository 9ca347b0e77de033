"""Evaluate watch / hover / condition expressions over predicted locals.

Nothing here runs user code: an expression is parsed with ``ast`` and
interpreted node by node over values rebuilt from the locals' repr strings
with ``ast.literal_eval``. Only literals, names, subscripts and slices,
arithmetic, comparisons, boolean logic, conditional expressions and a few
pure builtins (``len``, ``min``, ``sorted`` ...) are allowed; attribute
access, comprehensions, lambdas and calls of anything else are refused.
Sizes are capped so that ``'a' * 10**12`` is an error, not a frozen editor.
What would have a side effect (an assignment, ``del``, an import, a call
that may change a value or the world) is refused with a message that says
so, not as a syntax error: a debugger console user types ``x = 1`` on
purpose.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

MAX_EXPRESSION_CHARS = 2000
MAX_ITEMS = 100_000  # longest str / sequence an expression may build
MAX_INT_BITS = 64_000  # largest int an expression may build
MAX_DEPTH = 60  # nesting of the expression tree


class EvalError(ValueError):
    """The expression is not allowed or failed; the message is for the user."""


NOT_LITERAL = object()


def literal(text: str) -> Any:
    """The value of a repr string, or raise EvalError if it is not a literal."""
    value = try_literal(text)
    if value is NOT_LITERAL:
        raise EvalError(f"{_short(text)} is not a Python literal")
    return value


def try_literal(text: str) -> Any:
    """The value of a repr string, or ``NOT_LITERAL``."""
    if len(text) > 5_000_000:
        return NOT_LITERAL
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NOT_LITERAL


def is_literal(text: str) -> bool:
    return try_literal(text) is not NOT_LITERAL


def parse_new_value(text: str) -> str:
    """The canonical repr of a value typed by the user (setVariable)."""
    if not isinstance(text, str) or not text.strip():
        raise EvalError("the new value is empty")
    value = try_literal(text)
    if value is NOT_LITERAL:
        raise EvalError(
            f"{_short(text)} is not a Python literal: enter a number, string, bool, None, "
            "or a list/tuple/dict/set of those (e.g. [1, 2] or 'abc')"
        )
    return repr(value)


def _short(text: str, n: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1] + "…"


# -- checking ---------------------------------------------------------------
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
    ast.Invert: operator.invert,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def _range(*args: Any) -> list[int]:
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise EvalError(f"range of {len(r)} items is too long")
    return list(r)


_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "sorted": sorted,
    "reversed": lambda x: list(reversed(x)),
    "any": any,
    "all": all,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "repr": repr,
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "dict": dict,
    "range": _range,
    "enumerate": lambda x, start=0: list(enumerate(x, start)),
    "zip": lambda *xs: list(zip(*xs)),
    "divmod": divmod,
    "ord": ord,
    "chr": chr,
    "type": lambda x: type(x).__name__,  # a name, not the class object
}
_KEYWORDS_ALLOWED = {"sorted": {"reverse"}, "enumerate": {"start"}, "round": {"ndigits"}}
BUILTIN_NAMES: tuple[str, ...] = tuple(sorted(_BUILTINS))  # what an expression may call


def compile_expression(text: str) -> ast.Expression:
    """Parse and check an expression; raises EvalError when not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise EvalError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise EvalError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise EvalError(_statement_refusal(text.strip()) or f"syntax error: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise EvalError("expression cannot be parsed") from None
    _check(tree.body, 0)
    return tree


SIDE_EFFECTS = "evaluate does not run code with side effects"
# Methods that change their object (list, dict, set, bytearray, file-likes).
_MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault",
    "popitem", "add", "discard", "difference_update", "intersection_update", "symmetric_difference_update",
    "write", "writelines", "send", "throw", "close", "__setitem__", "__delitem__", "__setattr__",
})


def side_effect(what: str) -> EvalError:
    return EvalError(f"{SIDE_EFFECTS}: {what}")


def _targets(nodes: list[ast.expr]) -> str:
    """What an assignment binds: ``a, b = ...`` binds a, b; ``xs[0] = ...`` xs[0]."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, (ast.Tuple, ast.List)):
            out.append(_targets(list(node.elts)))
        elif isinstance(node, ast.Starred):
            out.append(_targets([node.value]))
        else:
            out.append(ast.unparse(node))
    return ", ".join(out)


def _statement_refusal(text: str) -> str | None:
    """Why a text that is not an expression is refused, when it parses as
    statements: a side effect is named as such (None: a plain syntax error)."""
    try:
        module = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for stmt in module.body:
        said = _short(ast.get_source_segment(text, stmt) or ast.unparse(stmt))
        if isinstance(stmt, ast.Assign):
            return f"{SIDE_EFFECTS}: {said} assigns {_targets(stmt.targets)}"
        if isinstance(stmt, ast.AnnAssign):
            return f"{SIDE_EFFECTS}: {said} assigns {_targets([stmt.target])}"
        if isinstance(stmt, ast.AugAssign):
            return f"{SIDE_EFFECTS}: {said} changes {_targets([stmt.target])}"
        if isinstance(stmt, ast.Delete):
            return f"{SIDE_EFFECTS}: del removes {_targets(stmt.targets)}"
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return f"{SIDE_EFFECTS}: {said} imports a module (importing runs its code)"
        if isinstance(stmt, (ast.Global, ast.Nonlocal)):
            return f"{SIDE_EFFECTS}: {said} changes where names are bound"
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return f"{SIDE_EFFECTS}: a {'class' if isinstance(stmt, ast.ClassDef) else 'def'} statement binds {stmt.name}"
        if isinstance(stmt, ast.Raise):
            return f"{SIDE_EFFECTS}: raise would throw an exception into the program"
    if len(module.body) > 1:
        return "evaluate takes one expression, not several statements"
    kind = type(module.body[0]).__name__.lower() if module.body else "statement"
    return f"evaluate takes one expression, not a statement ({kind})"


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EvalError("expression nested too deeply")
    d = depth + 1
    if isinstance(node, ast.Constant):
        return
    if isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            raise side_effect(f"assignment to {node.id}")
        return
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                raise EvalError("starred expressions are not allowed")
            _check(elt, d)
        return
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values):
            if k is None:
                raise EvalError("** in a dict display is not allowed")
            _check(k, d)
            _check(v, d)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise EvalError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, d)
        _check(node.right, d)
        return
    if isinstance(node, ast.UnaryOp):
        _check(node.operand, d)
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, d)
        return
    if isinstance(node, ast.Compare):
        _check(node.left, d)
        for c in node.comparators:
            _check(c, d)
        return
    if isinstance(node, ast.IfExp):
        _check(node.test, d)
        _check(node.body, d)
        _check(node.orelse, d)
        return
    if isinstance(node, ast.Subscript):
        _check(node.value, d)
        _check(node.slice, d)
        return
    if isinstance(node, ast.Slice):
        for part in (node.lower, node.upper, node.step):
            if part is not None:
                _check(part, d)
        return
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            if node.func.attr in _MUTATING_METHODS:
                raise side_effect(f"{_short(ast.unparse(node))} may change {_short(ast.unparse(node.func.value))} "
                                  "(attribute access is not allowed: predicted values are plain data)")
            raise EvalError(f"attribute access is not allowed: {ast.unparse(node.func)} (predicted values are plain data)")
        if not isinstance(node.func, ast.Name) or node.func.id not in _BUILTINS:
            what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise side_effect(f"{_short(what)}(...) may have side effects "
                              f"(calling {what} is not allowed; only {', '.join(sorted(_BUILTINS))})")
        allowed = _KEYWORDS_ALLOWED.get(node.func.id, set())
        for kw in node.keywords:
            if kw.arg is None or kw.arg not in allowed:
                raise EvalError(f"keyword argument {kw.arg or '**'} is not allowed for {node.func.id}")
            _check(kw.value, d)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise EvalError("starred arguments are not allowed")
            _check(a, d)
        return
    if isinstance(node, ast.Attribute):
        raise EvalError("attribute access is not allowed (predicted values are plain data)")
    if isinstance(node, ast.JoinedStr):
        raise EvalError("f-strings are not allowed")
    if isinstance(node, ast.NamedExpr):
        raise side_effect(f"{_short(ast.unparse(node))} assigns {ast.unparse(node.target)} (NamedExpr is not allowed)")
    if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom)):
        raise side_effect(f"{type(node).__name__.lower()} would resume other code")
    raise EvalError(f"{type(node).__name__} is not allowed in a debugger expression")


# -- evaluation ---------------------------------------------------------------
class _Scope:
    """Names resolve lazily: only the locals an expression uses are parsed."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self._names = names
        self._cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        if name not in self._names:
            if name in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[name]
            raise EvalError(f"name {name!r} is not defined at this step")
        text = self._names[name]
        value = try_literal(text)
        if value is NOT_LITERAL:
            raise EvalError(f"{name} = {_short(text)} cannot be used in an expression (its repr is not a literal)")
        self._cache[name] = value
        return value


def _guard(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise EvalError("integer result too large")
    elif isinstance(value, (str, bytes, list, tuple, set, frozenset, dict)):
        if len(value) > MAX_ITEMS:
            raise EvalError(f"result of {len(value)} items is too large")
    return value


def _size(x: Any) -> int | None:
    if isinstance(x, (str, bytes, list, tuple)):
        return len(x)
    return None


def _binop(op: ast.operator, a: Any, b: Any) -> Any:
    # Refuse before computing what would take a long time or a lot of memory.
    if isinstance(op, ast.Mult):
        for seq, n in ((a, b), (b, a)):
            if _size(seq) is not None and isinstance(n, int) and _size(seq) * max(n, 0) > MAX_ITEMS:  # type: ignore[operator]
                raise EvalError("repeated sequence would be too large")
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise EvalError("integer result too large")
    elif isinstance(op, ast.Pow):
        if isinstance(a, int) and isinstance(b, int) and b > 0 and max(a.bit_length(), 1) * b > MAX_INT_BITS and abs(a) > 1:
            raise EvalError("integer result too large")
    elif isinstance(op, ast.Mod):
        if isinstance(a, (str, bytes)):
            raise EvalError("%-formatting is not allowed")  # '%0999999999d' % 1 would build a huge string
    elif isinstance(op, ast.LShift):
        if isinstance(b, int) and b > MAX_INT_BITS:
            raise EvalError("integer result too large")
    elif isinstance(op, ast.Add):
        if _size(a) is not None and _size(b) is not None and _size(a) + _size(b) > MAX_ITEMS:  # type: ignore[operator]
            raise EvalError("result would be too large")
    return _BINOPS[type(op)](a, b)


def _eval(node: ast.AST, scope: _Scope) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.List):
        return _guard([_eval(e, scope) for e in node.elts])
    if isinstance(node, ast.Tuple):
        return _guard(tuple(_eval(e, scope) for e in node.elts))
    if isinstance(node, ast.Set):
        return _guard({_eval(e, scope) for e in node.elts})
    if isinstance(node, ast.Dict):
        return _guard({_eval(k, scope): _eval(v, scope) for k, v in zip(node.keys, node.values) if k is not None})
    if isinstance(node, ast.BinOp):
        return _guard(_binop(node.op, _eval(node.left, scope), _eval(node.right, scope)))
    if isinstance(node, ast.UnaryOp):
        return _guard(_UNARY[type(node.op)](_eval(node.operand, scope)))
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for v in node.values:
            result = _eval(v, scope)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, scope)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, scope) if _eval(node.test, scope) else _eval(node.orelse, scope)
    if isinstance(node, ast.Subscript):
        return _eval(node.value, scope)[_eval(node.slice, scope)]
    if isinstance(node, ast.Slice):
        parts = [None if p is None else _eval(p, scope) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        fn = _BUILTINS[node.func.id]
        args = [_eval(a, scope) for a in node.args]
        kwargs = {kw.arg: _eval(kw.value, scope) for kw in node.keywords if kw.arg is not None}
        return _guard(fn(*args, **kwargs))
    raise EvalError(f"{type(node).__name__} is not allowed")  # _check refuses these first


def evaluate(text: str | ast.Expression, names: Mapping[str, str]) -> Any:
    """Value of ``text`` where each name is a local's repr string."""
    tree = compile_expression(text) if isinstance(text, str) else text
    try:
        return _eval(tree.body, _Scope(names))
    except EvalError:
        raise
    except RecursionError:
        raise EvalError("expression nested too deeply") from None
    except MemoryError:
        raise EvalError("out of memory") from None
    except Exception as exc:  # TypeError, ZeroDivisionError, KeyError, IndexError ...
        detail = str(exc)
        raise EvalError(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__) from None


def interpolate(template: str, names: Mapping[str, str]) -> str:
    """A log point's message: ``{expr}`` replaced by its value's str
    (``{{`` and ``}}`` are literal braces); a failing expression shows
    ``<error: ...>`` instead of stopping the program."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == "{" and template.startswith("{{", i):
            out.append("{")
            i += 2
        elif c == "}" and template.startswith("}}", i):
            out.append("}")
            i += 2
        elif c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if template[j] == "{":
                    depth += 1
                elif template[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                out.append(template[i:])
                break
            expr = template[i + 1 : j - 1]
            try:
                value = evaluate(expr, names)
                out.append(value if isinstance(value, str) else repr(value))
            except EvalError as exc:
                out.append(f"<error: {exc}>")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
