"""JSON text for the child's result, without importing :mod:`json`.

The child starts once per trace, and ``json`` (with ``re`` and ``enum``
behind it) is a large share of its start-up; the strings are escaped by the
same C function ``json`` uses. The parent reads the text with ``json.loads``.
Standard library only: the sandboxed child loads this file directly.
"""

from __future__ import annotations

from _json import encode_basestring_ascii as _quote

TYPE_CHECKING = False  # typing costs the child's startup; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable


def dumps(value: object) -> str:
    """Compact ASCII JSON for dicts (str keys), lists, tuples, str, int,
    bool and None; anything else is a TypeError."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: object, out: Callable[[str], object]) -> None:
    if isinstance(value, str):
        out(_quote(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, int):
        out(int.__repr__(value))
    elif isinstance(value, dict):
        out("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
            out(f",{_quote(key)}:" if i else f"{_quote(key)}:")
            _write(item, out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for i, item in enumerate(value):
            if i:
                out(",")
            _write(item, out)
        out("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
