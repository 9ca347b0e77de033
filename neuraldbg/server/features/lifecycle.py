"""initialize, initialized, settings (initializationOptions,
workspace/configuration, didChangeConfiguration) and shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from neuraldbg.config import Settings
from neuraldbg.server.features import debug_adapter, status
from neuraldbg.server.features.publishing import publish
from neuraldbg.server.state import ClientInfo, ServerState
from neuraldbg.session.policy import has_model

log = logging.getLogger(__name__)

CONFIGURATION_TIMEOUT_S = 5.0  # a client that does not answer workspace/configuration keeps the old settings


def initialize(state: ServerState, params: types.InitializeParams) -> None:
    state.client = ClientInfo.from_capabilities(params.capabilities)
    state.init_options = params.initialization_options
    settings, problems = Settings().merged(params.initialization_options)
    state.session.settings = settings
    for p in problems:
        state.log_to_client(p)


async def initialized(state: ServerState) -> None:
    state.loop = asyncio.get_running_loop()
    if has_model(state.settings.backend):
        state.status.loading = status.loading_message(state)
    state.status.send_now()
    if state.client.configuration:
        await reload_configuration(state)
    state.spawn(status.preload(state))
    state.spawn(status.probe_sandbox(state))


async def did_change_configuration(state: ServerState, params: types.DidChangeConfigurationParams) -> None:
    pushed = params.settings
    if isinstance(pushed, dict) and isinstance(pushed.get("neuraldbg"), dict):
        pushed = pushed["neuraldbg"]
    await reload_configuration(state, pushed)


async def reload_configuration(state: ServerState, pushed: Any = None) -> None:
    """Settings = defaults <- initializationOptions <- workspace/configuration
    (or the pushed didChangeConfiguration settings for clients without it)."""
    base, _ = Settings().merged(state.init_options)
    data: Any = None
    if state.client.configuration:
        try:
            fut = asyncio.ensure_future(state.server.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="neuraldbg")])))
            result = await asyncio.wait_for(asyncio.shield(fut), CONFIGURATION_TIMEOUT_S)
            data = result[0] if result else None
        except Exception as exc:
            state.log_to_client(f"could not read the neuraldbg settings: {exc or type(exc).__name__}",
                                types.MessageType.Info)
            data = None
    elif pushed is not None:
        data = pushed
    new, problems = base.merged(data)
    for p in problems:
        state.log_to_client(p)
    apply_settings(state, new)


def apply_settings(state: ServerState, new: Settings) -> None:
    if new == state.session.settings:
        return
    old = state.session.settings
    state.session.settings = new
    state.session.clear_traces()
    state.status.error = None
    state.status.changed()
    status.tell_weak_sandbox(state)
    log.info("settings: %s", new)
    if (old.backend, old.profile, old.url) != (new.backend, new.profile, new.url) and state.loop is not None:
        state.spawn(status.preload(state))
    for uri in list(state.session.documents):
        state.selection.retrace(uri)
        publish(state, uri)
    state.refresh.inlays()
    state.refresh.lenses()


async def shutdown(state: ServerState) -> None:
    if state.shut:
        return
    state.shut = True
    state.documents.debounce.cancel_all()
    state.fills.shutdown()
    state.cancel_tasks()
    await state.session.shutdown()
    debug_adapter.stop(state)
