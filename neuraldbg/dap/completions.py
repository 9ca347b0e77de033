"""Debug Console completions from what the trace knows at a stop: the
frame's locals, the functions and classes the trace has run (the globals it
has seen), the builtins evaluate can call, and after a dot the attributes
of a value whose repr says what it is (a literal's type, the fields of a
``Point(x=1, y=2)`` repr). Nothing is run: the value comes from its repr."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from neuraldbg.dap.safe_eval import BUILTIN_NAMES, NOT_LITERAL, EvalError, evaluate, try_literal

KEYWORDS = ("True", "False", "None", "and", "or", "not", "in", "is", "if", "else")
# A name or a subscripted name before a dot, then the word being typed.
_TAIL = re.compile(r"(?:(?P<base>[^\W\d]\w*(?:\[[^\[\]]*\])*)\s*\.\s*)?(?P<word>\w*)$")


@dataclass(frozen=True)
class Completion:
    label: str
    type: str  # DAP CompletionItemType: variable, function, class, method, field, keyword


@dataclass(frozen=True)
class Completions:
    start: int  # index in the line where the word being completed begins
    length: int  # how many characters of it are typed
    items: list[Completion]


def globals_seen(functions: Iterable[str]) -> list[Completion]:
    """Module-level names of the functions a trace ran: ``Stack.push`` ran,
    so ``Stack`` is a class of the module; ``outer.inner`` shows ``outer``."""
    ran = list(dict.fromkeys(functions))
    own = {f for f in ran if "." not in f}
    out: dict[str, Completion] = {}
    for qualname in ran:
        head = qualname.split(".", 1)[0]
        if head.isidentifier() and head not in out:
            out[head] = Completion(head, "function" if head in own else "class")
    return list(out.values())


def attributes(base: str, names: Mapping[str, str]) -> list[Completion]:
    """The attributes of ``base``'s value as far as its repr tells."""
    text = names.get(base)
    if text is not None and try_literal(text) is NOT_LITERAL:
        return _fields(text)
    try:
        value = evaluate(base, names)
    except EvalError:
        return []
    out = []
    for attr in dir(type(value)):
        if attr.startswith("_"):
            continue
        kind = "method" if callable(getattr(type(value), attr, None)) else "property"
        out.append(Completion(attr, kind))
    return out


def _fields(text: str) -> list[Completion]:
    """``Point(x=1, y=2)`` (a dataclass's or a namedtuple's repr): x and y."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    if not isinstance(node, ast.Call):
        return []
    return [Completion(kw.arg, "field") for kw in node.keywords if kw.arg]


def complete(line: str, cursor: int, names: Mapping[str, str], functions: Iterable[str]) -> Completions:
    """What may follow the word before ``cursor`` (an index into ``line``)."""
    before = line[: max(0, min(cursor, len(line)))]
    m = _TAIL.search(before)
    word = m.group("word") if m else ""
    base = m.group("base") if m else None
    start = len(before) - len(word)
    if base is not None:
        pool = attributes(base, names)
    else:
        pool = [Completion(n, "variable") for n in names if n.isidentifier()]
        pool += globals_seen(functions)
        pool += [Completion(n, "function") for n in BUILTIN_NAMES]
        pool += [Completion(k, "keyword") for k in KEYWORDS]
    seen: set[str] = set()
    items = []
    lowered = word.lower()
    for item in pool:
        if item.label in seen or not item.label.lower().startswith(lowered):
            continue
        seen.add(item.label)
        items.append(item)
    return Completions(start, len(word), items)
