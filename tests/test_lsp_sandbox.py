"""The language server says which sandbox runs workspace code: the level in
neuraldbg/status, and one warning per server when it is the weak one."""

from __future__ import annotations

import os

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from lsp_fixtures import REPO, SERVER_COMMAND, make_client, open_doc, start, validate, wait_until
from neuraldbg.tracer import isolation

STRAWBERRY = REPO / "examples" / "strawberry.py"


def _config(cap: str | None) -> ClientServerConfig:
    env = {k: v for k, v in os.environ.items() if k != isolation.ENV_CAP}
    if cap is not None:
        env[isolation.ENV_CAP] = cap
    return ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client, server_env=env)


def _sandboxes(client: LanguageClient) -> list[dict]:
    return [s["sandbox"] for s in client.statuses if "sandbox" in s]  # type: ignore[attr-defined]


def _weak_warnings(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages
            if m.type == types.MessageType.Warning and "weak isolation" in m.message]


async def _run(client: LanguageClient, settings: dict) -> None:
    await start(client, "visual_studio_code", settings, REPO)
    open_doc(client, STRAWBERRY)
    await wait_until(lambda: bool(client.statuses) and client.statuses[-1]["state"] == "ready"  # type: ignore[attr-defined]
                     and (not settings["allowExecution"] or bool(_sandboxes(client))), timeout=60)


@pytest.mark.parametrize("cap", [None, "audit"], ids=["strongest", "audit-only"])
async def test_status_names_the_level_and_the_weak_level_is_told_once(cap: str | None) -> None:
    expected = isolation.detect(cap)
    client = await _config(cap).start()
    assert isinstance(client, LanguageClient)
    try:
        await _run(client, {"backend": "exec", "allowExecution": True})
        # A settings change (still allowed) must not repeat the warning.
        client.set_configuration({"backend": "exec", "allowExecution": True, "maxFrames": 500}, section="neuraldbg")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await wait_until(lambda: any(s.get("sandbox") for s in client.statuses[-1:]), timeout=30)  # type: ignore[attr-defined]
        sandbox = _sandboxes(client)[-1]
        assert sandbox["level"] == expected.level and sandbox["weak"] is expected.weak
        assert sandbox["doesNotStop"] == expected.weaknesses()
        for status in client.statuses:  # type: ignore[attr-defined]
            validate(status, "status.json")
        assert len(_weak_warnings(client)) == (1 if expected.weak else 0)
    finally:
        await client.shutdown_session()
