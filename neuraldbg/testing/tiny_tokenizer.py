"""A tiny stand-in for CWM's tokenizer, built offline (the adapter the
codec uses over it, as over any HF tokenizer, is
:class:`neuraldbg.backends.hf_tokenizer.HFTokenizerAdapter`).

The tiny tokenizer has CWM's exact layout: a byte-level BPE filling ids
0..127999 (256 byte tokens, a few hundred merges learned from a little Python
text, then unused filler tokens) and CWM's 256 reserved special tokens at
128000..128255 with CWM's names at CWM's ids. Tests and small models use it
where the real tokenizer (gated download) is not available.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from neuraldbg.trace.cwm_tokens import BOS, EOT, PAD, SPECIAL_BASE, SPECIAL_NAMES, VOCAB_SIZE

log = logging.getLogger(__name__)

# The pre-tokenizer split of CWM's tiktoken tokenizer (cwm/text/tokenizers.py).
CWM_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
TINY_MERGES = 400

_TRAINING_TEXT = '''\
def f(xs):
    total = 0
    for x in xs:
        total += x
    return total


def binary_search(items: list[int], target: int) -> int:
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        elif items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


class Counter:
    def __init__(self, start=0):
        self.count = start

    def increment(self, step=1):
        self.count += step
        return self.count


def count_letters(text: str) -> dict[str, int]:
    counts = {}
    for ch in text:
        if ch.isalpha():
            counts[ch] = counts.get(ch, 0) + 1
    return counts


def f(text, value):
    result = []
    for i in range(len(text)):
        if text[i] == value:
            result.append(i)
    return result
'''


def _train_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte tokens plus TINY_MERGES merges learned from a little Python."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = _pre_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + TINY_MERGES,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    trainer_tok.train_from_iterator([_TRAINING_TEXT] * 4, trainer=trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return vocab, merges  # type: ignore[return-value]


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CWM_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def build_tiny_tokenizer_object() -> Tokenizer:
    """The ``tokenizers`` object (no files written)."""
    vocab, merges = _train_bpe()
    if len(vocab) > SPECIAL_BASE:
        raise RuntimeError("tiny BPE vocabulary is larger than CWM's BPE range")
    filler = SPECIAL_BASE - len(vocab)
    # fillers hold the unused ranks; no merge produces them and no pre-token can equal them
    full_vocab = dict(vocab)
    for i in range(filler):
        full_vocab[f"<filler_{i}>"] = len(vocab) + i
    tok = Tokenizer(models.BPE(vocab=full_vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    added = tok.add_special_tokens(
        [AddedToken(SPECIAL_NAMES[i], special=True, normalized=False) for i in range(SPECIAL_BASE, VOCAB_SIZE)]
    )
    if added != VOCAB_SIZE - SPECIAL_BASE or tok.token_to_id(SPECIAL_NAMES[VOCAB_SIZE - 1]) != VOCAB_SIZE - 1:
        raise RuntimeError("special tokens did not land on CWM's ids")
    return tok


def build_tiny_tokenizer(out_dir: Path) -> PreTrainedTokenizerFast:
    """Build the tiny CWM-layout tokenizer, save it with ``save_pretrained``
    into ``out_dir`` (``AutoTokenizer.from_pretrained(out_dir)`` loads it) and
    return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=build_tiny_tokenizer_object(),
        bos_token=SPECIAL_NAMES[BOS],
        eos_token=SPECIAL_NAMES[EOT],
        pad_token=SPECIAL_NAMES[PAD],
        add_bos_token=False,
        add_eos_token=False,
    )
    hf.save_pretrained(str(out_dir))
    log.info("tiny CWM tokenizer saved to %s (%d ids)", out_dir, len(hf))
    return hf
