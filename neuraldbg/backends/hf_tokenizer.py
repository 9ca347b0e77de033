"""The production adapter over a Hugging Face tokenizer (CWM's, or a test
one): what the trace codec encodes and decodes with.

transformers is imported here, so callers import this module lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from neuraldbg.trace.cwm_tokens import SPECIAL_BASE


def load_tokenizer(path: Path | str) -> PreTrainedTokenizerFast:
    """The tokenizer saved in a folder (or a hub id), as transformers loads it."""
    return AutoTokenizer.from_pretrained(str(path))


class HFTokenizerAdapter:
    """:class:`neuraldbg.trace.tokenizer.TokenizerLike` over a Hugging Face
    fast tokenizer (CWM's, or the tiny one).

    User text never becomes a special id: encoding runs on a private copy of
    the backend tokenizer with special-token matching disabled
    (``encode_special_tokens``, what ``split_special_tokens=True`` sets), and
    the result is checked.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerFast, special_base: int = SPECIAL_BASE) -> None:
        self.tokenizer = tokenizer
        self._special_base = special_base
        # a private copy, so flipping encode_special_tokens never affects other users of `tokenizer`
        self._backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        self._backend.encode_special_tokens = True
        self._backend.no_padding()
        self._backend.no_truncation()
        self._added_ids = frozenset(int(i) for i in tokenizer.added_tokens_decoder)

    def encode(self, text: str) -> list[int]:
        ids = self._backend.encode(text, add_special_tokens=False).ids
        bad = [i for i in ids if i >= self._special_base or i in self._added_ids]
        if bad:
            raise ValueError(f"ordinary text encoded to special id(s) {bad[:5]}")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._backend.decode(list(ids), skip_special_tokens=False)
