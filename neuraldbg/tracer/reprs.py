"""Safe, bounded, deterministic reprs of traced values.

Standard library only: the sandboxed child loads this file directly.
"""

from __future__ import annotations

import re

# " at 0x7f3a12..." in default reprs (objects, functions, iterators).
_ADDRESS = re.compile(r"(?<= at )0x[0-9a-fA-F]+")


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
        if " at 0x" not in text:
            return text
        return _ADDRESS.sub(self._rename, text)

    def clip(self, text: str) -> str:
        extra = len(text) - self._max_repr
        if extra <= 0:
            return text
        return f"{text[: self._max_repr]}…<+{extra} chars>"

    def _rename(self, match: re.Match[str]) -> str:
        address = match.group(0).lower()
        name = self._addresses.get(address)
        if name is None:
            name = f"0x{len(self._addresses) + 1:x}"
            self._addresses[address] = name
        return name
