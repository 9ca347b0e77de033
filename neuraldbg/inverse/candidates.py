"""Where candidate inputs come from: the function's signature, its known
inputs, the constants in its code, its annotations (hypothesis), and
mutations of the inputs that got closest.

Values are held as Python source (reprs of literals), so a candidate is a
call string the sandboxed child can evaluate and the user can read.
"""

from __future__ import annotations

import ast
import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from neuraldbg.inverse.goals import GoalError, function_tree
from neuraldbg.source.model import FunctionInfo, SourceIndex

MAX_VALUE_TEXT = 400  # a value's source longer than this is not worth trying

_BASICS: dict[str, list[str]] = {
    "int": ["0", "1", "-1", "2", "10", "100", "3", "-5", "7"],
    "float": ["0.0", "1.5", "-1.0", "0.5", "100.0"],
    "str": ["''", "'a'", "'abc'", "'hello world'", "'A1 b2'", "'aab'", "'x,y'"],
    "bool": ["True", "False"],
    "list": ["[]", "[0]", "[1, 2, 3]", "[3, 1, 2]", "[-1, 0, 1]", "[1, 1]", "['a', 'b']"],
    "dict": ["{}", "{'a': 1}", "{1: 2, 3: 4}"],
    "tuple": ["()", "(1, 2)", "(0,)"],
    "none": ["None"],
}
_ANY = ["0", "1", "''", "'a'", "[]", "[1, 2, 3]", "None", "-1", "True", "'abc'", "{}", "2"]


@dataclass
class Param:
    name: str
    keyword_only: bool
    annotation: ast.expr | None
    default: str | None
    pool: list[str] = field(default_factory=list)  # values to try, best first
    types: set[str] = field(default_factory=set)  # kinds guessed from the code ("int", "str", "list", ...)


@dataclass
class Signature:
    callee: str  # what the call string calls: "f", "Stack().push"
    params: list[Param]

    def call(self, values: Sequence[str]) -> str:
        args = [v if not p.keyword_only else f"{p.name}={v}" for p, v in zip(self.params, values)]
        return f"{self.callee}({', '.join(args)})"


def signature(source: str, fn: FunctionInfo) -> tuple[Signature, ast.Module]:
    """The function's parameters (not ``self``; not ``*args``/``**kwargs``,
    which are left empty) and its parsed text; GoalError when it cannot be called."""
    tree = function_tree(source, fn)
    node = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None) if tree else None
    if tree is None or node is None:
        raise GoalError(f"{fn.qualname} does not parse: fix it first")
    if fn.is_async:
        raise GoalError(f"{fn.qualname} is a coroutine function: its calls do not run it")
    if "." in fn.qualname and not fn.is_method:
        raise GoalError(f"{fn.qualname} is a nested function: it cannot be called from outside")
    a = node.args
    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [Param(arg.arg, False, arg.annotation, None if d is None else ast.unparse(d)) for arg, d in zip(positional, defaults)]
    params += [Param(arg.arg, True, arg.annotation, None if d is None else ast.unparse(d))
               for arg, d in zip(a.kwonlyargs, a.kw_defaults)]
    callee = fn.name
    if fn.is_method:
        owner = fn.qualname.rsplit(".", 1)[0]
        static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
        if not static and params:
            params = params[1:]  # self / cls
        callee = f"{owner}.{fn.name}" if static or any(isinstance(d, ast.Name) and d.id == "classmethod"
                                                        for d in node.decorator_list) else f"{owner}().{fn.name}"
    if not params:
        raise GoalError(f"{fn.qualname} takes no parameters: there is no input to find")
    return Signature(callee, params), tree


# -- mining the code ------------------------------------------------------------

def _literal(node: ast.expr) -> Any:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOTHING
    return value


_NOTHING = object()


def _mentions(node: ast.expr, names: set[str]) -> tuple[str, str] | None:
    """(parameter, shape) when ``node`` is a parameter (``direct``), its
    length (``len``) or an item/slice/attribute of it (``part``)."""
    if isinstance(node, ast.Name) and node.id in names:
        return node.id, "direct"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and node.args:
        inner = node.args[0]
        if isinstance(inner, ast.Name) and inner.id in names:
            return inner.id, "len"
    if isinstance(node, (ast.Subscript, ast.Attribute, ast.Call)):
        base = node.value if isinstance(node, (ast.Subscript, ast.Attribute)) else node.func
        found = _mentions(base, names)
        if found is not None:
            return found[0], "part"
    return None


def _neighbours(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [value, not value]
    if isinstance(value, int):
        return [value, value + 1, value - 1]
    if isinstance(value, float):
        return [value, value + 1.0, value - 1.0]
    if isinstance(value, str):
        return [value, value + "a", value[:-1]] if value else [value, "a"]
    return [value]


def _kind(value: Any) -> str:
    return "none" if value is None else type(value).__name__


def mine(sig: Signature, tree: ast.Module, seeds: Sequence[dict[str, str]]) -> list[str]:
    """Fill each parameter's pool (best first) and guess its kinds; returns
    the constants of the code (any parameter may try them)."""
    names = {p.name for p in sig.params}
    by_name = {p.name: p for p in sig.params}
    direct: dict[str, list[Any]] = {n: [] for n in names}
    lengths: dict[str, list[int]] = {n: [] for n in names}
    parts: dict[str, list[tuple[ast.expr, Any]]] = {n: [] for n in names}  # (the part's expression, its value)
    constants: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and len(repr(node.value)) < 200:
            constants.append(node.value)
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for (a, b), op in zip(zip(sides, sides[1:]), node.ops):
                for this, other in ((a, b), (b, a)):
                    found = _mentions(this, names)
                    value = _literal(other)
                    if found is None or value is _NOTHING:
                        continue
                    name, shape = found
                    if isinstance(op, (ast.In, ast.NotIn)) and this is a and isinstance(value, (tuple, list, set, str)):
                        direct[name].extend(value if not isinstance(value, str) else [value])
                        continue
                    if shape == "len" and isinstance(value, int):
                        lengths[name].extend(v for v in (value, value + 1, value - 1) if 0 <= v <= 50)
                    elif shape == "direct":
                        direct[name].extend(_neighbours(value))
                    else:
                        parts[name].append((this, value))
        _guess_kinds(node, by_name)
    for name, values in direct.items():
        by_name[name].types.update(_kind(v) for v in values if v is not None)
    for p in sig.params:
        pool: list[Any] = list(direct[p.name])
        for n in lengths[p.name]:
            pool += ["a" * n, list(range(n))] if "list" not in p.types else [list(range(n))]
        wholes = [w for expr, v in parts[p.name] for w in _wholes(expr, v, p.name, constants)]
        keyed = [w for w in wholes if isinstance(w, dict)]
        if len(keyed) > 1:  # item["kind"] == "fruit" and item["color"] == "red": one dict with every key
            pool.append({k: v for d in keyed for k, v in d.items()})
        pool += wholes
        for _expr, v in parts[p.name]:
            if isinstance(v, str):
                pool += [v, v + "x", [v]]
            elif isinstance(v, (int, float)):
                pool += [[v], {"a": v}, [v, v]]
        texts = [repr(v) for v in pool]
        texts += [s[p.name] for s in seeds if p.name in s]
        if p.default is not None:
            texts.append(p.default)
        for kind in sorted(p.types) or []:
            texts += _BASICS.get(kind, [])
        texts += [repr(v) for v in constants if _kind(v) in p.types or not p.types]
        if "str" in p.types or not p.types:
            texts += [repr(v) for v in _string_variants(constants)]
        if not p.types:
            texts += _ANY
        p.pool = _dedupe(t for t in texts if len(t) <= MAX_VALUE_TEXT)
    return _dedupe(repr(v) for v in constants)


def _wholes(expr: ast.expr, value: Any, name: str, constants: Sequence[Any]) -> list[Any]:
    """Values of parameter ``name`` whose part ``expr`` (a subscript, slice,
    ``.get`` or method call of it, as in ``p[2:] == value``) is ``value``:
    the comparison's other side carried back to the parameter."""
    strings = [c for c in constants if isinstance(c, str) and len(c) <= 40][:12]
    out: list[Any] = []
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name) and expr.value.id == name:
        key = _literal(expr.slice) if not isinstance(expr.slice, ast.Slice) else _NOTHING
        if isinstance(key, str):
            out.append({key: value})
        elif isinstance(key, int) and not isinstance(key, bool) and -20 <= key <= 20:
            size = key + 1 if key >= 0 else -key
            out.append([value] * size)
            if isinstance(value, str) and len(value) == 1:
                out.append(value * size)
        elif isinstance(expr.slice, ast.Slice) and isinstance(value, (str, list, tuple)):
            s = expr.slice
            lower, upper, step = (None if n is None else _literal(n) for n in (s.lower, s.upper, s.step))
            if step == -1 and lower is None and upper is None:
                out.append(value[::-1])
            elif step is None and isinstance(lower, int) and upper is None and 0 < lower <= 20:
                fill = value[:0]
                heads = [c for c in strings if len(c) == lower] if isinstance(value, str) else []
                out += [h + value for h in heads] + [fill + ("x" * lower if isinstance(value, str) else [0] * lower) + value]
            elif step is None and lower is None and isinstance(upper, int) and 0 < upper <= 20 and len(value) == upper:
                tails = [c for c in strings if c != value] if isinstance(value, str) else []
                out += [value] + [value + t for t in tails[:6]]
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and isinstance(expr.func.value, ast.Name) \
            and expr.func.value.id == name:
        method = expr.func.attr
        first = _literal(expr.args[0]) if expr.args else _NOTHING
        if method == "get" and first is not _NOTHING and not isinstance(first, (list, dict, set)):
            out.append({first: value})
        elif isinstance(value, str) and method in ("lower", "upper", "strip", "casefold", "title", "swapcase"):
            out += [value, value.upper(), value.lower(), value.swapcase(), f" {value} "]
        elif method in ("count", "index", "find") and isinstance(first, str) and isinstance(value, int) and 0 <= value <= 20:
            out.append(first * value)
    return out


def _string_variants(constants: Sequence[Any]) -> list[str]:
    """The code's strings reversed, in the other case, and two of them joined
    (``p.startswith("AB") and p[2:] == "-9"`` wants ``"AB-9"``)."""
    strings = list(dict.fromkeys(c for c in constants if isinstance(c, str) and 0 < len(c) <= 40))[:12]
    out: list[str] = []
    for s in strings:
        out += [s[::-1], s.upper(), s.lower()]
    out += [a + b for a in strings for b in strings if a != b]
    return [s for s in dict.fromkeys(out) if s not in strings]


def _guess_kinds(node: ast.AST, params: dict[str, Param]) -> None:
    """Kinds from use: ``for c in p`` / ``p[i]`` (a sequence), ``p.lower()`` (a str), ``p + 1`` (a number)."""
    str_methods = {"lower", "upper", "split", "strip", "startswith", "endswith", "replace", "isdigit", "isalpha", "find", "join"}
    list_methods = {"append", "pop", "sort", "extend", "insert", "remove"}
    dict_methods = {"items", "keys", "values", "get", "setdefault"}
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in params:
        p = params[node.value.id]
        p.types.update(["str"] if node.attr in str_methods else ["list"] if node.attr in list_methods
                       else ["dict"] if node.attr in dict_methods else [])
    elif isinstance(node, ast.For) and isinstance(node.iter, ast.Name) and node.iter.id in params:
        params[node.iter.id].types.update(["list", "str"])
    elif isinstance(node, ast.BinOp):
        for side, other in ((node.left, node.right), (node.right, node.left)):
            value = _literal(other)
            if isinstance(side, ast.Name) and side.id in params and isinstance(value, (int, float)) and not isinstance(value, bool):
                params[side.id].types.add("int" if isinstance(value, int) else "float")


def _dedupe(texts: Iterator[str] | Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


# -- annotations (hypothesis) ----------------------------------------------------

def annotation_values(annotation: ast.expr | None, rng: random.Random, count: int) -> list[str]:
    """Values drawn from ``hypothesis.strategies.from_type`` of a builtin
    annotation (``int``, ``list[str]``, ``dict[str, int]``...), as reprs
    that read back as literals; nothing for annotations it cannot resolve
    without the user's module."""
    hint = _resolve(annotation)
    if hint is _UNRESOLVED:
        return []
    try:
        from hypothesis import strategies as st
        from hypothesis.internal.conjecture.data import ConjectureData

        strategy = st.from_type(hint)
    except Exception:
        return []
    out: list[str] = []
    for _ in range(count):
        try:
            value = ConjectureData(random=random.Random(rng.random())).draw(strategy)
        except Exception:  # a strategy that gave up (filtered too much, overran): try the next
            continue
        text = repr(value)
        if len(text) <= MAX_VALUE_TEXT and _reads_back(text):
            out.append(text)
    return _dedupe(out)


def fits_annotation(annotation: ast.expr | None, value: str) -> bool:
    """The literal ``value`` is of the builtin type ``annotation`` names
    (its outer type: ``list[str]`` checks a list); True where there is no
    annotation or it cannot be resolved without the user's module."""
    hint = _resolve(annotation)
    if hint is _UNRESOLVED:
        return True
    try:
        obj = ast.literal_eval(value)
    except Exception:
        return True
    return _is_instance(obj, hint)


_UNRESOLVED = object()


def _resolve(annotation: ast.expr | None) -> Any:
    """The builtin or typing type an annotation names, or ``_UNRESOLVED``."""
    if annotation is None:
        return _UNRESOLVED
    try:
        return eval(compile(ast.Expression(annotation), "<annotation>", "eval"), {"__builtins__": {}}, _TYPE_NAMES)
    except Exception:  # a name of the user's module, a string annotation...: not ours to resolve
        return _UNRESOLVED


def _is_instance(obj: object, hint: Any) -> bool:
    import typing

    if hint is None:
        return obj is None
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        return any(_is_instance(obj, h) for h in typing.get_args(hint))
    cls = origin or hint
    if not isinstance(cls, type):
        return True
    if cls is float:  # PEP 484: an int is acceptable where a float is expected
        return isinstance(obj, (int, float)) and not isinstance(obj, bool)
    return isinstance(obj, cls)


def _reads_back(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _type_names() -> dict[str, Any]:
    import typing

    names: dict[str, Any] = {n: getattr(__import__("builtins"), n) for n in
                             ("int", "float", "str", "bool", "bytes", "list", "dict", "tuple", "set", "frozenset")}
    names.update({n: getattr(typing, n) for n in ("List", "Dict", "Tuple", "Set", "Optional", "Union", "Any")})
    names["None"] = None
    return names


_TYPE_NAMES = _type_names()


# -- known inputs ------------------------------------------------------------------

def known_calls(index: SourceIndex, fn: FunctionInfo) -> list[str]:
    """Every call of the function the file already has (doctests, ``__main__``, tests, markers)."""
    return _dedupe(e.call for e in index.entries if e.function == fn.qualname and e.call)


def seed_values(calls: Sequence[str], source: str, fn: FunctionInfo) -> list[dict[str, str]]:
    """The arguments of each known call, by parameter name."""
    from neuraldbg.source.call_binding import BindingError, bind_call, function_params

    lines = source.splitlines()
    try:
        params = function_params("\n".join(lines[fn.first_line - 1 : fn.end_line]))
    except BindingError:
        return []
    out = []
    for call in calls:
        try:
            out.append(bind_call(call, params, bound_self="self" if fn.is_method else None))
        except BindingError:
            continue
    return out


# -- combining and mutating --------------------------------------------------------

def combinations(pools: Sequence[Sequence[str]]) -> Iterator[tuple[str, ...]]:
    """Every choice of one value per pool, lowest rank sum first (lazily)."""
    if not pools or any(not p for p in pools):
        return
    start = (0,) * len(pools)
    heap = [(0, start)]
    seen = {start}
    while heap:
        _, ranks = heapq.heappop(heap)
        yield tuple(p[r] for p, r in zip(pools, ranks))
        for i in range(len(pools)):
            if ranks[i] + 1 < len(pools[i]):
                nxt = ranks[:i] + (ranks[i] + 1,) + ranks[i + 1 :]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (sum(nxt), nxt))


def mutate_value(text: str, pool: Sequence[str], rng: random.Random) -> str:
    """A small change of one literal value (or a value from the pool)."""
    if pool and rng.random() < 0.3:
        return rng.choice(pool)
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return rng.choice(pool) if pool else text
    new = _mutate(value, pool, rng, depth=0)
    out = repr(new)
    return out if len(out) <= MAX_VALUE_TEXT else text


def _mutate(value: Any, pool: Sequence[str], rng: random.Random, depth: int) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value - 1, value * 2, -value, value // 2, value + rng.randint(-100, 100),
                           rng.randint(-10, 10)])
    if isinstance(value, float):
        return rng.choice([value + 1.0, value - 1.0, value * 2, -value, value / 2, 0.0])
    if isinstance(value, str):
        alphabet = "".join(t.strip("'\"") for t in pool if t[:1] in "'\"")[:200] or "abcxyz 019"
        i = rng.randint(0, len(value))
        choice = rng.randrange(5)
        if choice == 0 or not value:
            return value[:i] + rng.choice(alphabet or "a") + value[i:]
        if choice == 1:
            return value[:i] + value[i + 1 :]
        if choice == 2:
            return value + value
        if choice == 3:
            return value.swapcase()
        return value[:i] + rng.choice(alphabet or "a") + value[i + 1 :]
    if isinstance(value, (list, tuple)) and depth < 3:
        items = list(value)
        choice = rng.randrange(4)
        if choice == 0 or not items:
            items.insert(rng.randint(0, len(items)), _element(items, pool, rng))
        elif choice == 1:
            items.pop(rng.randrange(len(items)))
        elif choice == 2:
            j = rng.randrange(len(items))
            items[j] = _mutate(items[j], pool, rng, depth + 1)
        else:
            rng.shuffle(items)
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and depth < 3:
        items = dict(value)
        if items and rng.random() < 0.4:
            items.pop(rng.choice(list(items)))
        else:
            key = _element(list(items), pool, rng)
            try:
                items[key] = _element(list(items.values()), pool, rng)
            except TypeError:  # an unhashable key
                pass
        return items
    if value is None:
        return rng.choice([0, "", []])
    return value


def _element(like: list[Any], pool: Sequence[str], rng: random.Random) -> Any:
    if like and rng.random() < 0.6:
        return _mutate(rng.choice(like), pool, rng, depth=3)
    scalars = [t for t in pool if t[:1] not in "[{("]
    if scalars:
        try:
            return ast.literal_eval(rng.choice(scalars))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    return rng.randint(-5, 5)
