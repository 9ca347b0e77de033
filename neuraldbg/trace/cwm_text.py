"""The exact CWM text of a prompt plus trace, special tokens as their names."""

from __future__ import annotations

from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.cwm_encode import encode_trace
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import render
from neuraldbg.trace.frames import Trace
from neuraldbg.trace.tokenizer import TextTokenizer


def render_cwm_text(source: str, function: FunctionInfo, trace: Trace) -> str:
    tok = TextTokenizer()
    ids = trace_prompt_ids(tok, mark_entry(source, function.def_line)) + encode_trace(tok, trace)
    return render(tok, ids)
