"""A :class:`RemoteBackend` from a remote model profile (``models/*.toml`` with
``kind = "remote"``) and the user's settings.

An explicit URL or API key (editor settings, CLI flags) wins over the
profile's ``url`` and ``api_key_env``; the profile's served ``model`` name,
``stop_ids`` (sent with every request) and ``context_tokens`` are used as
they are. Its ``[sampling]`` table is not the backend's business: the
simulation reads it (:mod:`neuraldbg.simulation.sampling`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from neuraldbg.backends.base import BackendError
from neuraldbg.backends.profiles import Profile, ProfileError, load_profile
from neuraldbg.backends.remote.backend import RemoteBackend

log = logging.getLogger(__name__)


def remote_backend(profile: str = "", *, url: str = "", api_key: str = "", **options: Any) -> RemoteBackend:
    """The backend for ``profile`` (a name in the profile folder, a ``.toml``
    path, or ``""`` for none) at ``url`` with ``api_key``. ``options`` are
    further :class:`RemoteBackend` keywords (timeouts, retries, a tokenizer).
    Raises :class:`BackendError` (one line) for an unknown, malformed or
    local profile, or when no URL is known."""
    if not profile:
        if not url:
            raise BackendError("the remote backend needs neuraldbg.url (e.g. http://gpu-host:8000) or a remote profile")
        return RemoteBackend(url, api_key=api_key or None, **options)
    p = _remote_profile(profile)
    return RemoteBackend(
        url or p.url,
        api_key=api_key or _key_from_env(p),
        model=p.model or None,
        context_tokens=p.context_tokens,
        stop_ids=p.stop_ids,
        **options,
    )


def _remote_profile(name: str) -> Profile:
    try:
        p = load_profile(name)
    except ProfileError as exc:
        raise BackendError(str(exc)) from None
    if p.kind != "remote":
        where = f" ({p.source})" if p.source else ""
        raise BackendError(f"profile {p.name!r}{where} is a {p.kind} profile: the remote backend needs one with "
                           f'kind = "remote" (or no profile and neuraldbg.url)')
    return p


def _key_from_env(p: Profile) -> str | None:
    if not p.api_key_env:
        return None
    key = os.environ.get(p.api_key_env, "")
    if not key:
        # The server may need no key; if it does, its 401 says "check the API key".
        log.warning("profile %s takes the API key from $%s, which is not set: no key is sent", p.name, p.api_key_env)
    return key or None
