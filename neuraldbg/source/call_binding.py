"""Turn a call string into the locals of the entry's call frame.

A model backend is given concrete inputs by writing the call frame itself
(teacher forcing): CWM's call frame holds the arguments as repr strings.
Arguments are evaluated with ``ast.literal_eval`` only (never by running user
code); an argument that is not a literal keeps its source text, which is what
its repr would look like for most user-defined constructors.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


class BindingError(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "positional", "vararg", "keyword", "varkw"
    default: str | None  # source text of the default, if any


def _repr_of(node: ast.expr, source: str) -> str:
    text = ast.get_source_segment(source, node) or ast.unparse(node)
    try:
        return repr(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def function_params(def_source: str) -> list[Param]:
    """Parameters of the first function defined in ``def_source`` (the
    function's own text, decorators included, dedented or not)."""
    import textwrap

    text = textwrap.dedent(def_source)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        # A body with a ?? hole does not parse: the signature alone does.
        header = text.split(":\n", 1)[0] + ":\n    pass\n"
        try:
            tree = ast.parse(header)
        except SyntaxError as exc:
            raise BindingError(f"cannot read the signature: {exc.msg}") from None
    fn = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if fn is None:
        raise BindingError("no function definition found")
    a = fn.args
    out: list[Param] = []
    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for arg, d in zip(positional, defaults):
        out.append(Param(arg.arg, "positional", None if d is None else _repr_of(d, text)))
    if a.vararg:
        out.append(Param(a.vararg.arg, "vararg", None))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append(Param(arg.arg, "keyword", None if d is None else _repr_of(d, text)))
    if a.kwarg:
        out.append(Param(a.kwarg.arg, "varkw", None))
    return out


def bind_call(call: str, params: list[Param], *, bound_self: str | None = None) -> dict[str, str]:
    """Locals (name -> repr) of the call frame for ``call``.

    ``bound_self``: for a method called on an instance, the repr to show for
    ``self`` (the receiver expression's text).
    """
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError as exc:
        raise BindingError(f"call string does not parse: {exc.msg}") from None
    if not isinstance(node, ast.Call):
        raise BindingError("call string is not a call")
    src = call.strip()
    pos = list(node.args)
    out: dict[str, str] = {}
    remaining = list(params)
    if bound_self is not None and remaining and remaining[0].kind == "positional":
        out[remaining.pop(0).name] = bound_self
    extra: list[str] = []
    for p in remaining:
        if p.kind == "positional" and pos:
            arg = pos.pop(0)
            if isinstance(arg, ast.Starred):
                raise BindingError("starred arguments cannot be bound without running code")
            out[p.name] = _repr_of(arg, src)
    if pos:
        vararg = next((p for p in remaining if p.kind == "vararg"), None)
        if vararg is None:
            raise BindingError(f"too many positional arguments ({len(pos)} extra)")
        extra = [_repr_of(a, src) for a in pos]
    kwargs: dict[str, str] = {}
    names = {p.name for p in remaining if p.kind in ("positional", "keyword")}
    for kw in node.keywords:
        if kw.arg is None:
            raise BindingError("**kwargs cannot be bound without running code")
        value = _repr_of(kw.value, src)
        if kw.arg in names:
            if kw.arg in out:
                raise BindingError(f"got multiple values for argument {kw.arg!r}")
            out[kw.arg] = value
        else:
            kwargs[kw.arg] = value
    if kwargs and not any(p.kind == "varkw" for p in remaining):
        raise BindingError(f"unexpected keyword argument {next(iter(kwargs))!r}")
    ordered: dict[str, str] = {}
    for p in params:
        if p.name in out:
            ordered[p.name] = out[p.name]
        elif p.kind == "vararg":
            ordered[p.name] = "(" + ", ".join(extra) + ("," if len(extra) == 1 else "") + ")"
        elif p.kind == "varkw":
            ordered[p.name] = "{" + ", ".join(f"{k!r}: {v}" for k, v in kwargs.items()) + "}"
        elif p.default is not None:
            ordered[p.name] = p.default
        else:
            raise BindingError(f"missing a value for parameter {p.name!r}")
    return ordered
