"""Token counts of real CWM trace requests with a real 128k tokenizer, and
the speed-up bound of prompt-lookup speculative decoding on them.

The first --limit CruxEval samples are traced for real (exec tracer), the
prompt (BOS, <|trace_context_start|>, the source with the START marker,
<|frame_sep|>) and the frames are encoded with the CWM codec and the Llama-3
BPE with CWM's specials (models/llama3-bpe, `make llama3-tokenizer`).

Figures:

- tokens.prompt_p50: median prompt (context) tokens;
- tokens.per_frame_p50: median tokens of one frame, its special ids (event,
  <|action_sep|>, <|frame_sep|>, ...) included; tokens.per_frame_text_p50
  counts only its ordinary (BPE) tokens;
- tokens.per_trace_p50: median frame tokens of a whole trace (every frame,
  then <|end_of_text|>);
- tokens.lookup_bound_k8: the upper bound of prompt-lookup speculative
  decoding with a perfect model at k=8, in tokens per forward pass, pooled
  (all trace tokens / all forwards); tokens.lookup_bound_k8_p50 is the
  median of the per-trace ratios.

The bound's exact rule: the true trace T (the per-trace token sequence
above) is decoded greedily after the prompt P as one stream
(``neuraldbg.backends.prompt_lookup.perfect_model_forwards``). Before each
forward the draft is ``neuraldbg.backends.prompt_lookup.draft(P + T[:p], k)``
(p tokens of T produced so far): the up to k tokens that followed the most
recent earlier occurrence of the longest suffix n-gram, n from 4 down to 1,
of prompt plus trace so far; ``[]`` when no suffix token occurred before. A
perfect model accepts the longest prefix of the draft that equals
``T[p:]`` (a tokens) and yields one more token of its own, so the forward
advances p by min(a + 1, len(T) - p). Forwards are counted until p ==
len(T); the bound is len(T) / forwards (1.0 without speculation). Request
boundaries (one request per frame in the model engine) are ignored.

    python benchmarks/bench_tokens.py [--limit 200] [--k 8] [--jobs 2] [--data PATH]

The data defaults to $NEURALDBG_CRUXEVAL, else ../shared/data/cruxeval.jsonl
next to the repository.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neuraldbg.backends.base import BackendError
from neuraldbg.backends.llama3_tokenizer import load_llama3_tokenizer
from neuraldbg.backends.prompt_lookup import perfect_model_forwards
from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter
from neuraldbg.trace.cwm_encode import encode_frame, encode_trace, reference_locals
from neuraldbg.trace.cwm_prompt import mark_entry, trace_prompt_ids
from neuraldbg.trace.cwm_tokens import is_special
from neuraldbg.tracer import Limits, run_traces

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cruxeval.jsonl"
MAX_NGRAM = 4


@dataclass(frozen=True)
class Encoded:
    prompt: list[int]
    frames: list[list[int]]  # each frame's ids
    trace: list[int]  # all frames, then <|end_of_text|> for a complete trace


@dataclass(frozen=True)
class Lookup:
    tokens: int
    forwards: int

    @property
    def per_forward(self) -> float:
        return self.tokens / self.forwards


def def_line(code: str) -> int:
    """The line of ``def f`` (the entry CruxEval calls)."""
    return next(n.lineno for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef) and n.name == "f")


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("NEURALDBG_CRUXEVAL", str(DEFAULT_DATA)))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    try:
        tok = HFTokenizerAdapter(load_llama3_tokenizer())
        with open(args.data, encoding="utf-8") as fh:
            samples = [json.loads(line) for line in fh if line.strip()][: args.limit]
    except (BackendError, OSError) as exc:
        print(f"bench_tokens: {exc}", file=sys.stderr)
        return 2
    traces = run_traces([(s["code"], f"f({s['input']})", "f", "<cruxeval>") for s in samples], Limits(),
                        workers=args.jobs)
    encoded: list[Encoded] = []
    for sample, trace in zip(samples, traces):
        if not trace.frames:
            continue
        frames = [
            encode_frame(tok, f, reference_locals(trace.frames, i) if f.event == "line" else None)
            for i, f in enumerate(trace.frames)
        ]
        prompt = trace_prompt_ids(tok, mark_entry(sample["code"], def_line(sample["code"])))
        encoded.append(Encoded(prompt, frames, encode_trace(tok, trace)))
    lookups = [Lookup(len(e.trace), perfect_model_forwards(e.prompt, e.trace, args.k, MAX_NGRAM)) for e in encoded]
    prompts = [len(e.prompt) for e in encoded]
    per_frame = [len(f) for e in encoded for f in e.frames]
    per_frame_text = [sum(not is_special(i) for i in f) for e in encoded for f in e.frames]
    per_trace = [len(e.trace) for e in encoded]
    pooled = sum(x.tokens for x in lookups) / sum(x.forwards for x in lookups)
    k = args.k
    print(f"{len(encoded)} CruxEval traces ({len(per_frame)} frames), Llama-3 BPE with CWM's specials")
    print(f"prompt tokens: p50 {p50(prompts)}, max {max(prompts)}")
    print(f"frame tokens: p50 {p50(per_frame)} ({p50(per_frame_text)} ordinary), max {max(per_frame)}")
    print(f"trace tokens: p50 {p50(per_trace)}, max {max(per_trace)}, total {sum(per_trace)}")
    print(f"prompt lookup, perfect model, k={k}, n={MAX_NGRAM}..1: {pooled:.2f} tokens per forward pooled, "
          f"{p50([x.per_forward for x in lookups]):.2f} median per trace")
    print(f"FIGURE tokens.prompt_p50 | {p50(prompts):g} | tokens (context: BOS, source, separators)")
    print(f"FIGURE tokens.per_frame_p50 | {p50(per_frame):g} | tokens per frame")
    print(f"FIGURE tokens.per_frame_text_p50 | {p50(per_frame_text):g} | ordinary tokens per frame (no special ids)")
    print(f"FIGURE tokens.per_trace_p50 | {p50(per_trace):g} | frame tokens per trace")
    print(f"FIGURE tokens.lookup_bound_k{k} | {pooled:.2f} | tokens per forward (perfect model, prompt lookup, pooled)")
    print(f"FIGURE tokens.lookup_bound_k{k}_p50 | {p50([x.per_forward for x in lookups]):.2f} | "
          "tokens per forward (median per trace)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
