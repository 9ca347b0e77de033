"""HTTP to a model server: one httpx client, retries, and failures as one clear line.

Connection errors, connect timeouts, HTTP 5xx and 429 are :class:`Retryable`;
they are retried with exponential backoff (at least the server's
``Retry-After``, capped), every other failure is a :class:`BackendError`.
Streaming callers retry only before any token was yielded (the backend
decides that), so a request whose tokens were already streamed is never sent
again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from neuraldbg.backends.base import BackendError, CancelToken

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RETRY_AFTER_S = 30.0
ERROR_SNIPPET = 300  # characters of a server's error message quoted to the user


class Retryable(Exception):
    """An attempt failed in a way that may be retried (nothing was yielded)."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def normalize_url(url: str) -> str:
    """``http(s)://host:port`` without a trailing slash or ``/v1``."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):  # people paste OpenAI base URLs
        url = url[:-3]
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as e:
        raise BackendError(f"invalid model server URL {url!r}: {e}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BackendError(f"invalid model server URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    return url


def error_message(resp: httpx.Response) -> str:
    """The server's own words from an error answer (OpenAI, FastAPI or plain shapes)."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return text[:ERROR_SNIPPET] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if err.get(key):
                    return str(err[key])[:ERROR_SNIPPET]
        elif err:
            return str(err)[:ERROR_SNIPPET]
    return json.dumps(body)[:ERROR_SNIPPET]


def retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignore, the backoff applies


def cancellable_sleep(seconds: float, cancel: CancelToken | None) -> None:
    """Sleep, waking every 50 ms to honour ``cancel``."""
    end = time.monotonic() + seconds
    while True:
        if cancel is not None:
            cancel.raise_if_cancelled()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


class Transport:
    """The httpx client of one model server and its retry policy."""

    def __init__(self, url: str, *, api_key: str | None, timeout: float, connect_timeout: float, retries: int,
                 backoff: float) -> None:
        if timeout <= 0 or connect_timeout <= 0 or retries < 0 or backoff < 0:
            raise BackendError("remote backend: timeouts must be positive, retries and backoff non-negative")
        self.url = normalize_url(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
        )

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    def close(self) -> None:
        self._client.close()

    # -- retries ------------------------------------------------------------------

    def delay_before_retry(self, attempt: int, retryable: Retryable) -> float:
        """The wait before retry ``attempt + 1``; raises the error once retries are spent."""
        if attempt >= self.retries:
            raise retryable.error from None
        delay = max(self.backoff * (2**attempt), retryable.retry_after or 0.0)
        log.warning("%s; retrying in %.2g s (%d/%d)", retryable.error, delay, attempt + 1, self.retries)
        return delay

    def with_retries(self, fn: Callable[[], T], cancel: CancelToken | None = None) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except Retryable as r:
                cancellable_sleep(self.delay_before_retry(attempt, r), cancel)
                attempt += 1

    # -- requests -----------------------------------------------------------------

    def open_stream(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` and return the open 200 response (the caller closes it)."""
        request = self._client.build_request(
            "POST", self.url + path, json=body, headers={"Accept": "text/event-stream", "Cache-Control": "no-store"}
        )
        resp = self._send(lambda: self._client.send(request, stream=True))
        if resp.status_code == 200:
            return resp
        try:
            resp.read()
        except httpx.HTTPError:
            pass
        finally:
            resp.close()
        raise self.status_error(resp, path)

    def models(self) -> list[Any] | None:
        """The cards of ``GET /v1/models`` (retried); None when the server has no such route."""
        return self.with_retries(self.models_once)

    def get(self, path: str) -> httpx.Response:
        """GET ``path`` (retried); any answer but 200 is an error."""

        def once() -> httpx.Response:
            resp = self._send(lambda: self._client.get(self.url + path))
            if resp.status_code != 200:
                raise self.status_error(resp, path)
            return resp

        return self.with_retries(once)

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` and return the JSON object answered (retried)."""

        def once() -> dict[str, Any]:
            resp = self._send(lambda: self._client.post(self.url + path, json=body))
            if resp.status_code != 200:
                raise self.status_error(resp, path)
            try:
                obj = resp.json()
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                raise BackendError(f"model server at {self.url} sent a malformed answer on {path}")
            return obj

        return self.with_retries(once)

    def models_once(self) -> list[Any] | None:
        resp = self._send(lambda: self._client.get(self.url + "/v1/models"))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self.status_error(resp, "/v1/models")
        try:
            data = resp.json().get("data")
        except (ValueError, AttributeError):
            log.debug("model server at %s: /v1/models is not a model list; ignored", self.url)
            return None
        return data if isinstance(data, list) else []

    def _send(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """One HTTP exchange, its failures mapped to BackendError / Retryable."""
        try:
            return send()
        except httpx.TimeoutException as e:
            raise self.timeout_error(e, None) from None
        except httpx.TransportError as e:
            raise Retryable(BackendError(f"cannot reach model server at {self.url}: {e or type(e).__name__}")) from None
        except httpx.HTTPError as e:
            raise BackendError(f"request to model server at {self.url} failed: {e or type(e).__name__}") from None

    # -- errors -------------------------------------------------------------------

    def timeout_error(self, e: httpx.TimeoutException, produced: int | None) -> BackendError | Retryable:
        """``produced``: tokens received so far, None while waiting for the response itself."""
        if isinstance(e, httpx.ConnectTimeout):
            return Retryable(BackendError(f"connecting to model server at {self.url} timed out after {self.connect_timeout:g} s"))
        if produced is None:
            return BackendError(f"model server at {self.url} timed out after {self.timeout:g} s waiting for a response")
        return BackendError(
            f"model server at {self.url} timed out after {self.timeout:g} s waiting for the next token ({produced} received)"
        )

    def status_error(self, resp: httpx.Response, path: str) -> BackendError | Retryable:
        code = resp.status_code
        msg = error_message(resp)
        err = BackendError(f"model server at {self.url} answered HTTP {code} {resp.reason_phrase} on {path}: {msg}")
        if code in (401, 403):
            err = BackendError(f"model server at {self.url} refused the request (HTTP {code}): {msg}; check the API key")
        if code >= 500 or code == 429:
            return Retryable(err, retry_after(resp))
        return err
