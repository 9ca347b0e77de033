"""A TokenBackend over HTTP: vLLM, SGLang, or ``neuraldbg model-server``.

Token ids go out, token ids come back, streamed as server-sent events and
yielded as each chunk arrives. The client is synchronous (httpx) because the
language server runs backends in worker threads.

Request shapes (exactly what is sent; ``seed`` only when it is set, ``model``
only when known: given, or the first id of ``GET /v1/models``; the stop ids
are the request's, then the backend's own ``stop_ids``, a profile's):

``flavor="vllm"`` -- ``POST {url}/v1/completions``::

    {"model": M, "prompt": [ids], "max_tokens": N, "temperature": T,
     "top_p": P, "seed": S, "stop_token_ids": [ids], "stream": true,
     "stream_options": {"include_usage": true},
     "return_token_ids": true,                      # vLLM >= 0.10.2: ids per chunk
     "logprobs": 0, "return_tokens_as_token_ids": true,  # older vLLM: ids as "token_id:N"
     "skip_special_tokens": false, "spaces_between_special_tokens": false,
     "include_stop_str_in_output": true}

``logprobs`` and ``return_tokens_as_token_ids`` are sent only until the
server has answered with ``token_ids``: vLLM before 0.14 turns speculative
decoding (the n-gram lookup of models/README.md) off for any request that
asks for logprobs.

``flavor="neuraldbg"`` -- ``POST {url}/v1/completions``: the vLLM body
without ``logprobs``, ``return_tokens_as_token_ids`` and
``spaces_between_special_tokens`` (the server always returns token ids when
asked and keeps special tokens in its text).

``flavor="sglang"`` -- SGLang's native ``POST {url}/generate`` (its
OpenAI-compatible endpoint returns text only)::

    {"input_ids": [ids], "stream": true,
     "sampling_params": {"max_new_tokens": N, "temperature": T, "top_p": P,
        "stop_token_ids": [ids], "skip_special_tokens": false,
        "spaces_between_special_tokens": false, "no_stop_trim": true,
        "sampling_seed": S}}

``flavor="auto"`` (the default) asks ``GET {url}/v1/models`` once and picks
by ``owned_by`` ("neuraldbg", "sglang", else "vllm").

Where the generated ids come from, in order (``id_source``, per request):
``"token_ids"`` (vLLM ``choices[0].token_ids``, SGLang ``output_ids``, in
full or cumulative form), ``"logprobs"`` (``logprobs.tokens`` written as
``token_id:N``), and last ``"text"``: the text is converted back to ids by
:mod:`neuraldbg.backends.remote.text` (special names from the map
``special_tokens``, CWM's by default), which never turns user text into a
special id: a stop token's name counts only at the very end, and a name the
prompt also spells as text stays text, so a frame that needed it comes out
flagged by the trace parser. Re-encoded text may split differently from
what the model sampled, but decodes to the same text, which is all the
trace parser needs.
A stop id that ended the request but was trimmed from the text is restored
from ``stop_reason`` (vLLM) or ``matched_stop`` (SGLang).

The tokenizer (``backend.tokenizer``, which the codec also uses to build
prompts): the one given (a TokenizerLike, or a folder with a Hugging Face
tokenizer), else :class:`ServerTokenizer`, which asks the server's
``/tokenize`` and ``/detokenize`` (``/v1/...`` for SGLang).

Stats: ``prompt_tokens`` and ``generated_tokens`` are counted here;
``reused_tokens`` (and ``prefilled_tokens`` = prompt - reused) come from the
server's usage: ``prompt_tokens_details.cached_tokens`` (vLLM reports it
only with ``--enable-prompt-tokens-details``) or SGLang's
``meta_info.cached_tokens``. ``reports_cached_tokens`` says whether the
last finished request carried that number: False means "unknown", not "0".

Scoring (:meth:`RemoteBackend.score`, the ScoringBackend protocol): one
teacher-forced prefill, ``prompt_logprobs`` on vLLM and neuraldbg servers,
``/generate`` with ``return_logprob`` on SGLang
(:mod:`neuraldbg.backends.remote.scoring`). Ids longer than the context
(``context_tokens``, else the ``max_model_len`` of ``/v1/models``) are
refused before anything is sent.

Failures are :class:`BackendError` with one clear line. Connection errors,
HTTP 5xx and 429 are retried with exponential backoff, but only before any
token was yielded: a request whose tokens were already streamed is never
sent again. Cancellation is checked between chunks (so a server that is
still prefilling is left at its first token, or at the read timeout); it
closes the response (the server sees the disconnect and stops) and raises
:class:`Cancelled`. A client that stops iterating early closes it too.

The modules: :mod:`~neuraldbg.backends.remote.transport` (the httpx client,
retries, error messages), :mod:`~neuraldbg.backends.remote.dialects` (request
bodies and chunk parsers), :mod:`~neuraldbg.backends.remote.stream` (reading
one answer), :mod:`~neuraldbg.backends.remote.text` (text back to ids),
:mod:`~neuraldbg.backends.remote.tokenizer` (the server's tokenizer),
:mod:`~neuraldbg.backends.remote.scoring`,
:mod:`~neuraldbg.backends.remote.backend` (:class:`RemoteBackend`), and
:mod:`~neuraldbg.backends.remote.profile` (:func:`remote_backend`: one from a
remote model profile and the user's URL and API key).
"""

from neuraldbg.backends.remote.backend import FLAVORS, Flavor, RemoteBackend
from neuraldbg.backends.remote.profile import remote_backend
from neuraldbg.backends.remote.stream import GeneratedPiece
from neuraldbg.backends.remote.tokenizer import ServerTokenizer

__all__ = ["FLAVORS", "Flavor", "GeneratedPiece", "RemoteBackend", "ServerTokenizer", "remote_backend"]
