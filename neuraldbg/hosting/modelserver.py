"""``neuraldbg model-server``: any TokenBackend over a vLLM-shaped HTTP API.

Endpoints (see :mod:`neuraldbg.hosting.wire` for the fields):

- ``POST /v1/completions``: token-id prompt in, ids (``return_token_ids``)
  and text out, streamed as server-sent events (``data: {...}`` lines, then
  ``data: [DONE]``) or as one JSON answer;
- ``GET /v1/models``: the served model (``owned_by: "neuraldbg"``, which is
  how :class:`neuraldbg.backends.remote.RemoteBackend` recognises us);
- ``POST /tokenize``, ``POST /detokenize`` (also under ``/v1/``), vLLM's
  shapes, for clients without a local tokenizer;
- ``GET /health``: always open.

``text_only=True`` (``create_app``, ``start_model_server``, ``serve_model``)
answers as a server that cannot return token ids does (vLLM without
``return_token_ids``): no ``token_ids`` / ``prompt_token_ids`` whatever the
request asks, only the text with special tokens written as their names.
Tests use it to drive the client's text-to-ids path through a real server.

``prompt_logprobs`` (vLLM's one-prefill prompt scoring) is answered when the
backend has ``score()`` (:class:`neuraldbg.backends.base.ScoringBackend`),
in the model thread like a generation; other backends refuse it with 400.

With an API key every endpoint but ``/health`` needs ``Authorization:
Bearer KEY`` (401 otherwise). The server listens on loopback unless told
otherwise, and warns when it is not. One generation runs at a time (others
wait their turn); a client that disconnects cancels its generation. Errors
are OpenAI-shaped: ``{"error": {"message", "type", "code"}}``.

The HTTP side is Starlette on uvicorn. Nothing here imports torch: a model
is loaded (lazily, through LocalBackend) only by :func:`run_model_server`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace as dc_replace
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from neuraldbg.backends.base import BackendError, ProgressCallback, TokenBackend
from neuraldbg.hosting.wire import (
    CompletionIds,
    CompletionRequest,
    RequestError,
    TextDecoder,
    completion_response,
    decode_all,
    error_body,
    finish_of,
    new_completion_id,
    parse_completion_request,
    prompt_logprobs_entries,
    stream_chunk,
    usage_chunk,
)
from neuraldbg.hosting.worker import GenerationWorker, JobEnd

if TYPE_CHECKING:
    from neuraldbg.trace.tokenizer import TokenizerLike

log = logging.getLogger(__name__)

_DISCONNECT_POLL_S = 0.25


class ModelServerError(RuntimeError):
    """A one-line failure to start serving (bad address, port in use...)."""


def _error(status: int, message: str, type_: str = "invalid_request_error", headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, type_), status_code=status, headers=dict(headers or {}))


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


class _ModelService:
    """State and handlers of one served model."""

    def __init__(
        self,
        backend: TokenBackend,
        *,
        api_key: str | None,
        model_name: str | None,
        tokenizer: "TokenizerLike | None",
        special_tokens: Mapping[str, int] | None,
        vocab_size: int | None,
        text_only: bool = False,
    ) -> None:
        from neuraldbg.trace import cwm_tokens

        self.backend = backend
        self.model = model_name or backend.name
        self.api_key = api_key or None
        self.tokenizer = tokenizer if tokenizer is not None else getattr(backend, "tokenizer", None)
        self.specials: Mapping[str, int] = special_tokens if special_tokens is not None else cwm_tokens.SPECIAL_IDS
        self.names: dict[int, str] = {i: n for n, i in self.specials.items()}
        self.vocab_size = vocab_size if vocab_size is not None else getattr(backend, "vocab_size", cwm_tokens.VOCAB_SIZE)
        self.max_model_len: int | None = getattr(backend, "max_model_len", None) or getattr(backend, "context_tokens", None)
        self.worker = GenerationWorker(backend)
        self.text_only = text_only
        self.created = int(time.time())

    # -- plumbing ------------------------------------------------------------------

    def _unauthorized(self, request: Request) -> JSONResponse | None:
        if self.api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            return None
        return _error(401, "missing or wrong API key (send 'Authorization: Bearer KEY')", "authentication_error",
                      {"WWW-Authenticate": "Bearer"})

    @staticmethod
    async def _json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError:
            raise RequestError(400, "the request body is not valid JSON") from None

    # -- endpoints -------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        card = {"id": self.model, "object": "model", "created": self.created, "owned_by": "neuraldbg"}
        if self.max_model_len is not None:
            card["max_model_len"] = self.max_model_len
        return JSONResponse({"object": "list", "data": [card]})

    async def tokenize(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await self._json(request)
        if self.tokenizer is None:
            raise RequestError(400, "this server has no tokenizer")
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if not isinstance(prompt, str):
            raise RequestError(400, "'prompt' must be a string")
        # Ordinary ids only: tokenizing text never yields a special token here.
        ids = list(self.tokenizer.encode(prompt))
        return JSONResponse({"tokens": ids, "count": len(ids), "max_model_len": self.max_model_len})

    async def detokenize(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await self._json(request)
        if self.tokenizer is None:
            raise RequestError(400, "this server has no tokenizer")
        tokens = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < self.vocab_size for t in tokens):
            raise RequestError(400, f"'tokens' must be a list of token ids in 0..{self.vocab_size - 1}")
        text = decode_all(self.tokenizer, self.names, tokens)
        return JSONResponse({"prompt": text, "text": text})

    async def completions(self, request: Request) -> Response:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        req = parse_completion_request(
            await self._json(request),
            served_model=self.model,
            vocab_size=self.vocab_size,
            tokenizer=self.tokenizer,
            specials=self.specials,
            max_model_len=self.max_model_len,
        )
        if self.text_only:
            req = dc_replace(req, return_token_ids=False)
        if req.prompt_logprobs is not None and not self.worker.can_score:
            raise RequestError(400, "this server's backend cannot score prompts: 'prompt_logprobs' is not supported")
        if req.stream:
            return StreamingResponse(
                self._stream(req), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            )
        return await self._complete(req, request)

    # -- generation ----------------------------------------------------------------------

    async def _complete(self, req: CompletionRequest, request: Request) -> Response:
        result = CompletionIds()
        end: list[JobEnd] = []

        async def collect() -> None:
            if req.prompt_logprobs is not None:
                result.prompt_logprobs = await self._prompt_logprobs(req)
            if req.sampling.max_tokens == 0:
                return
            async for item in self.worker.run(req.prompt, stop_ids=req.stop_ids, sampling=req.sampling):
                if isinstance(item, JobEnd):
                    end.append(item)
                else:
                    result.ids.extend(item)

        task = asyncio.create_task(collect())
        # A plain (non-streamed) handler is not told when its client leaves:
        # watch for it, so that an abandoned request frees the GPU.
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
            if not done and await request.is_disconnected():
                task.cancel()
                log.info("client went away: generation cancelled")
                return _error(499, "client closed the request", "cancelled")
        try:
            task.result()
        except BackendError as e:  # a refused score (e.g. longer than the context)
            return _error(400, f"cannot score the prompt: {e}")
        if end and end[0].error:
            return _error(500, f"generation failed: {end[0].error}", "server_error")
        if end and end[0].cancelled:
            return _error(503, "generation cancelled: the server is shutting down", "server_error")
        result.finish_reason, result.stop_reason = finish_of(req, result.ids)
        result.cached_tokens = end[0].cached_tokens if end else 0
        text_ids = result.ids
        if result.stop_reason is not None and not req.include_stop_str:
            text_ids = result.ids[:-1]
        text = decode_all(self.tokenizer, self.names, text_ids)
        return JSONResponse(completion_response(req, cid=new_completion_id(), model=self.model, text=text, result=result))

    async def _prompt_logprobs(self, req: CompletionRequest) -> list[dict[str, dict[str, Any]] | None]:
        assert req.prompt_logprobs is not None
        scores = await self.worker.score(req.prompt, start=1) if len(req.prompt) > 1 else []
        return prompt_logprobs_entries(scores, req.prompt_logprobs, self._token_text)

    def _token_text(self, token_id: int) -> str | None:
        name = self.names.get(token_id)
        if name is not None or self.tokenizer is None:
            return name
        return self.tokenizer.decode([token_id])

    async def _stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        cid, created = new_completion_id(), int(time.time())
        decoder = TextDecoder(self.tokenizer, self.names)
        stop = set(req.stop_ids)
        n = 0
        cached = 0
        finished = False
        first = True
        if req.sampling.max_tokens == 0:
            yield _sse(stream_chunk(req, cid=cid, created=created, model=self.model, text="", ids=[], first=True, finish_reason="length"))
            finished = True
        else:
            # Closing this generator (client gone) closes the job's, which cancels it.
            async for item in self.worker.run(req.prompt, stop_ids=req.stop_ids, sampling=req.sampling):
                if isinstance(item, JobEnd):
                    if item.error:
                        yield _sse(error_body(500, f"generation failed: {item.error}", "server_error"))
                        yield "data: [DONE]\n\n"
                        return
                    if item.cancelled:
                        return  # shutting down: the client sees a cut stream
                    cached = item.cached_tokens
                    break
                n += len(item)
                finish: str | None = None
                stop_reason: int | None = None
                if item[-1] in stop:
                    finish, stop_reason = "stop", item[-1]
                elif n >= req.sampling.max_tokens:
                    finish = "length"
                text_ids = item[:-1] if stop_reason is not None and not req.include_stop_str else item
                text = decoder.feed(text_ids) + (decoder.flush() if finish else "")
                yield _sse(stream_chunk(req, cid=cid, created=created, model=self.model, text=text, ids=item, first=first,
                                        finish_reason=finish, stop_reason=stop_reason))
                first = False
                finished = finished or finish is not None
        if not finished:  # the backend ended without a stop id or the cap
            yield _sse(stream_chunk(req, cid=cid, created=created, model=self.model, text=decoder.flush(), ids=[], first=first,
                                    finish_reason="stop"))
        if req.include_usage:
            yield _sse(usage_chunk(req, cid=cid, created=created, model=self.model, completion_tokens=n, cached_tokens=cached))
        yield "data: [DONE]\n\n"

    def close(self) -> None:
        self.worker.shutdown()


def create_app(
    backend: TokenBackend,
    *,
    api_key: str | None = None,
    model_name: str | None = None,
    tokenizer: "TokenizerLike | None" = None,
    special_tokens: Mapping[str, int] | None = None,
    vocab_size: int | None = None,
    text_only: bool = False,
) -> Starlette:
    """The ASGI app serving ``backend``. ``app.state.service.close()`` stops
    its generation worker. The tokenizer defaults to ``backend.tokenizer``
    (without one, prompts must be ids and texts hold special names only); the
    special tokens and vocabulary size default to CWM's."""
    service = _ModelService(backend, api_key=api_key, model_name=model_name, tokenizer=tokenizer,
                            special_tokens=special_tokens, vocab_size=vocab_size, text_only=text_only)

    async def request_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return _error(exc.status, exc.message, exc.type)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}", kind)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("model server: unhandled error on %s", request.url.path, exc_info=exc)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")

    routes = [
        Route("/health", service.health, methods=["GET"]),
        Route("/v1/models", service.models, methods=["GET"]),
        Route("/v1/completions", service.completions, methods=["POST"]),
        Route("/tokenize", service.tokenize, methods=["POST"]),
        Route("/v1/tokenize", service.tokenize, methods=["POST"]),
        Route("/detokenize", service.detokenize, methods=["POST"]),
        Route("/v1/detokenize", service.detokenize, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={RequestError: request_error, HTTPException: http_error, Exception: internal_error},
    )
    app.state.service = service
    return app


# -- running it ---------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, type_, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    except socket.gaierror as e:
        raise ModelServerError(f"cannot listen on {host}:{port}: unknown host ({e.strerror})") from None
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only
    # then, and without it every keep-alive answer waits ~40 ms (Nagle).
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ModelServerError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _check_address(host: str, port: int, api_key: str | None) -> None:
    if not 0 <= port <= 65535:
        raise ModelServerError(f"invalid port {port}")
    if not _is_loopback(host):
        log.warning(
            "model server listening on %s: reachable from other machines%s",
            host, "" if api_key else " WITHOUT an API key (anyone who can connect can use the model)",
        )


def _server(app: Starlette, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level, log_config=None, lifespan="off", timeout_graceful_shutdown=3)
    return uvicorn.Server(config)


def _serve_blocking(sock: socket.socket, app: Starlette, host: str, log_level: str) -> None:
    service: _ModelService = app.state.service
    log.info("serving %s on %s%s", service.model, _url(host, sock.getsockname()[1]),
             " (API key required)" if service.api_key else "")
    try:
        _server(app, log_level).run(sockets=[sock])
    finally:
        service.close()
        sock.close()


def serve_model(
    backend: TokenBackend,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    *,
    model_name: str | None = None,
    tokenizer: "TokenizerLike | None" = None,
    log_level: str = "info",
    text_only: bool = False,
) -> None:
    """Serve ``backend`` until interrupted (Ctrl-C / SIGTERM). Blocking.

    Raises :class:`ModelServerError` when the address cannot be used.
    """
    _check_address(host, port, api_key)
    sock = _listen(host, port)
    app = create_app(backend, api_key=api_key, model_name=model_name, tokenizer=tokenizer, text_only=text_only)
    _serve_blocking(sock, app, host, log_level)


class RunningModelServer:
    """A model server running in a background thread (tests, embedding)."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, app: Starlette, host: str) -> None:
        self._server = server
        self._sock = sock
        self.app = app
        self.host = host
        self.port: int = sock.getsockname()[1]
        self.url = _url(host, self.port)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="neuraldbg-model-server", daemon=True)

    def _start(self, timeout: float) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ModelServerError(f"the model server on {self.url} did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        self.app.state.service.close()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> "RunningModelServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_model_server(
    backend: TokenBackend,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    *,
    model_name: str | None = None,
    tokenizer: "TokenizerLike | None" = None,
    log_level: str = "warning",
    start_timeout: float = 10.0,
    text_only: bool = False,
) -> RunningModelServer:
    """Serve ``backend`` from a background thread; returns once it accepts
    connections. ``port=0`` picks a free port (see ``.port`` / ``.url``)."""
    _check_address(host, port, api_key)
    sock = _listen(host, port)
    app = create_app(backend, api_key=api_key, model_name=model_name, tokenizer=tokenizer, text_only=text_only)
    running = RunningModelServer(_server(app, log_level), sock, app, host)
    running._start(start_timeout)
    return running


def run_model_server(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    log_level: str = "info",
    oracle: bool = False,
) -> None:
    """Load ``model`` (a profile name or a checkpoint folder) with the local
    backend and serve it until interrupted: ``neuraldbg model-server``."""
    _check_address(host, port, api_key)
    sock = _listen(host, port)  # before loading: a busy port fails in a second, not after the load
    try:
        from neuraldbg.backends.local import LocalBackend  # torch is imported only here

        if oracle:
            from neuraldbg.backends.oracle import load_oracle_backend

            backend, _ = load_oracle_backend(model, progress=progress)
        else:
            backend = LocalBackend.load(model, progress=progress)
    except BaseException:
        sock.close()
        raise
    try:
        _serve_blocking(sock, create_app(backend, api_key=api_key), host, log_level)
    finally:
        backend.close()
