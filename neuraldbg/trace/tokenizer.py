"""The codec's only view of a tokenizer, and a tokenizer-free stand-in.

The codec works over id sequences in which special tokens are CWM's special
ids (>= 128000) and everything else comes from ``TokenizerLike.encode``. With
a real tokenizer those are BPE ranks; with :class:`TextTokenizer` they are the
UTF-8 bytes of the text, so the same codec code yields ids that
:func:`neuraldbg.trace.cwm_tokens.render` turns into the exact CWM text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenizerLike(Protocol):
    def encode(self, text: str) -> list[int]:
        """Ordinary ids for ``text``; never a special id, whatever the text."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ordinary ids (exact inverse of ``encode`` on whole segments)."""
        ...


class TextTokenizer:
    """Each ordinary id is one byte of the UTF-8 text (ids 0..255).

    Stateless and exact: ``decode(encode(s)) == s`` for every str. A multi-byte
    character spans several ids, so splitting a segment mid-character behaves
    like a real byte-level BPE would. Ids outside 0..255 decode to U+FFFD.
    """

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8", errors="surrogatepass"))

    def decode(self, ids: Sequence[int]) -> str:
        data = bytes(i if 0 <= i < 256 else 0xFF for i in ids)  # 0xFF is never valid UTF-8
        return data.decode("utf-8", errors="replace")
