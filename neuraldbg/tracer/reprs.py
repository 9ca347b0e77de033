"""Safe, bounded, deterministic reprs of traced values.

Standard library only: the sandboxed child loads this file directly.
"""

from __future__ import annotations

# " at 0x7f3a12..." in default reprs (objects, functions, iterators). Found
# by hand rather than with ``re``, which the child would import just for this.
_ADDRESS_MARK = " at 0x"
_HEX = frozenset("0123456789abcdefABCDEF")


class Renderer:
    """Turns values into the repr strings a trace stores.

    A repr that raises becomes ``<repr failed: ExcType>``; one longer than
    ``max_repr`` is cut as ``text[:max_repr] + "…<+N chars>"``; memory
    addresses are renumbered 0x1, 0x2, ... in order of first appearance, so
    the same object keeps the same name across frames and runs.
    """

    def __init__(self, max_repr: int) -> None:
        self._max_repr = max_repr
        self._addresses: dict[str, str] = {}

    def render(self, value: object) -> str:
        try:
            text = repr(value)
        except BaseException as exc:  # a user __repr__ may raise anything, even SystemExit
            return f"<repr failed: {type(exc).__name__}>"
        if not isinstance(text, str):  # a broken __repr__ in a C type; stay total
            return f"<repr failed: {type(text).__name__}>"
        return self.clip(self.normalize(text))

    def normalize(self, text: str) -> str:
        start = text.find(_ADDRESS_MARK)
        if start < 0:
            return text
        parts: list[str] = []
        done = 0
        while start >= 0:
            digits = start + len(_ADDRESS_MARK)
            end = digits
            while end < len(text) and text[end] in _HEX:
                end += 1
            if end > digits:
                parts.append(text[done : start + 4])  # up to and including " at "
                parts.append(self._rename(text[start + 4 : end]))
                done = end
            start = text.find(_ADDRESS_MARK, max(end, start + 1))
        parts.append(text[done:])
        return "".join(parts)

    def clip(self, text: str) -> str:
        extra = len(text) - self._max_repr
        if extra <= 0:
            return text
        return f"{text[: self._max_repr]}…<+{extra} chars>"

    def _rename(self, address: str) -> str:
        address = address.lower()
        name = self._addresses.get(address)
        if name is None:
            name = f"0x{len(self._addresses) + 1:x}"
            self._addresses[address] = name
        return name
