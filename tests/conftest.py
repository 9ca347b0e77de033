"""Shared pytest fixtures. Keep each fixture self-contained."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The tiny CWM-layout tokenizer (byte-level BPE in 0..127999, CWM's 256
    specials at 128000..128255), built once per session, saved with
    ``save_pretrained`` and loaded back with ``AutoTokenizer`` (its folder is
    ``tiny_tokenizer.name_or_path``)."""
    from neuraldbg.backends.tiny_tokenizer import build_tiny_tokenizer, load_tokenizer

    out_dir = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_tokenizer(out_dir)
    return load_tokenizer(out_dir)
