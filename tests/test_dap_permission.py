"""No code runs without permission in the debug adapter.

Standalone (``python -m neuraldbg.dap``, ``neuraldbg dap --port``): a launch
on a backend that runs the program (exec, replay) needs ``allowExecution:
true`` in the launch request itself. Inside the language server (the
``neuraldbg/debugAdapter`` port): the workspace's ``allowExecution`` setting
decides, and a launch argument cannot turn it on. Model backends need no
permission: they never run the user's code."""

from __future__ import annotations

import asyncio
import contextlib
import marshal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

import neuraldbg.tracer.runner as runner
from dap_client.pyclient import EXAMPLES, DapClient
from lsp_fixtures import SERVER_COMMAND, close, make_client, open_doc, start
from neuraldbg.config import Settings
from neuraldbg.dap import start_tcp_server
from neuraldbg.session.session import Session

# The run is observable: a real run's stdout comes back as output events.
PROGRAM = 'def shout(word):\n    print("ran:" + word)\n    return word.upper()\n'
CALL = 'shout("hi")'
MARKER = "ran:hi"
STANDALONE_FIX = '"allowExecution": true'
WORKSPACE_FIX = "neuraldbg.allowExecution"


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "shout.py"
    path.write_text(PROGRAM)
    return path


@pytest.fixture
def child_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every tracer child started in this process (the one
    place a real run begins)."""
    started: list[str] = []
    real = runner._run_child

    def counted(request: bytes, *args: Any, **kwargs: Any) -> Any:
        started.append(marshal.loads(request)["path"])  # the program the child is asked to run
        return real(request, *args, **kwargs)

    monkeypatch.setattr(runner, "_run_child", counted)
    return started


def launch_args(program: Path, **extra: Any) -> dict[str, Any]:
    return {"program": str(program), "function": "shout", "args": CALL, **extra}


def assert_refused(dap: DapClient, program: Path, fix: str, **extra: Any) -> str:
    """A launch that must fail and leave nothing launched."""
    error = dap.fail("launch", launch_args(program, **extra), timeout=60)
    assert "runs your program for real" in error and "not allowed" in error, error
    assert fix in error, error
    assert "\n" not in error and "Traceback" not in error
    assert "no program is being debugged" in dap.fail("neuraldbg/trace")
    assert dap.req("threads") == {"threads": []}
    names = [e["event"] for e in dap.events]
    assert "initialized" not in names and "stopped" not in names, names
    assert not any(MARKER in o for o in dap.outputs()), dap.outputs()
    return error


def run_to_end(dap: DapClient, program: Path, **extra: Any) -> None:
    """A launch that must run the program for real, to its end."""
    dap.req("launch", launch_args(program, **extra), timeout=120)
    dap.wait_event("initialized")
    dap.req("configurationDone")
    end = dap.wait_stop()
    assert end == {"terminated": True, "exitCode": 0}, end
    frames = dap.trace()["trace"]["frames"]
    assert frames[-1]["event"] == "return" and frames[-1]["value"] == "'HI'", frames[-1]
    if extra.get("backend", "exec") == "exec":  # replay feeds the run through the model path: no stdout kept
        assert any(MARKER in o for o in dap.outputs("stdout")), dap.outputs()


# -- standalone over stdio: a real adapter process ------------------------------
@pytest.fixture
def stdio() -> Iterator[DapClient]:
    with DapClient.initialized() as client:
        yield client


@pytest.mark.parametrize("backend", ["exec", "replay"])
def test_standalone_refuses_to_run_code_the_launch_did_not_allow(stdio: DapClient, program: Path, backend: str) -> None:
    assert_refused(stdio, program, STANDALONE_FIX, backend=backend)
    assert_refused(stdio, program, STANDALONE_FIX, backend=backend, allowExecution=False)
    # the same adapter then runs it when the launch says so
    run_to_end(stdio, program, backend=backend, allowExecution=True)


def test_standalone_allow_execution_must_be_a_boolean(stdio: DapClient, program: Path) -> None:
    assert "'allowExecution' must be true or false" in stdio.fail("launch", launch_args(program, allowExecution="yes"))


def test_standalone_model_backends_need_no_permission(stdio: DapClient) -> None:
    # The model backend is reached (its own missing-setting error), not the permission check.
    error = stdio.fail("launch", {"program": str(EXAMPLES / "strawberry.py"), "function": "count_letter",
                                  "backend": "local"})
    assert "profile" in error and "allowExecution" not in error


@contextlib.contextmanager
def served(session: Any = None) -> Iterator[DapClient]:
    """An initialized client of the adapter on a loopback port: standalone
    without a session (as ``neuraldbg dap --port``), in-process with one."""
    port, stop = start_tcp_server(session=session)
    try:
        dap = DapClient.connect(port)
        try:
            dap.req("initialize", {"adapterID": "neuraldbg"})
            yield dap
        finally:
            dap.shutdown()
        dap.assert_one_response_each()
    finally:
        stop()
        engines = getattr(session, "engines", None)
        if engines is not None:
            engines.close()


# -- standalone over TCP (neuraldbg dap --port): no tracer child starts ---------
def test_standalone_tcp_starts_no_tracer_child_without_permission(program: Path, child_runs: list[str]) -> None:
    with served() as dap:
        assert_refused(dap, program, STANDALONE_FIX)
        assert child_runs == []
        run_to_end(dap, program, allowExecution=True)
        assert child_runs == [str(program)]


# -- in-process: the workspace setting decides -----------------------------------
def test_in_process_launch_cannot_override_the_workspace_setting(program: Path, child_runs: list[str]) -> None:
    session = Session(Settings(allow_execution=False))
    with served(session) as dap:
        for backend in ("exec", "replay"):
            error = assert_refused(dap, program, WORKSPACE_FIX, backend=backend, allowExecution=True)
            assert "cannot override" in error
        assert child_runs == []
        # the user turns the setting on: the next launch in the same session runs, without asking again
        session.settings = Settings(allow_execution=True)
        run_to_end(dap, program)
        assert child_runs == [str(program)]


def test_in_process_restart_rechecks_the_workspace_setting(program: Path, child_runs: list[str]) -> None:
    session = Session(Settings(allow_execution=True))
    with served(session) as dap:
        run_to_end(dap, program)
        assert len(child_runs) == 1
        session.settings = Settings(allow_execution=False)
        for arguments in ({}, launch_args(program, allowExecution=True)):
            error = dap.fail("restart", {"arguments": arguments} if arguments else {})
            assert WORKSPACE_FIX in error, error
        assert len(child_runs) == 1


def test_in_process_model_backends_need_no_permission(program: Path, child_runs: list[str]) -> None:
    with served(Session(Settings(backend="local", allow_execution=False))) as dap:
        # The model backend is reached (its own missing-setting error), not the permission check.
        error = dap.fail("launch", {"program": str(program), "function": "shout", "backend": "remote"})
        assert "needs neuraldbg.url" in error and "allowExecution" not in error
        assert child_runs == []


# -- in-process, through the real language server -----------------------------------
CONFIG = ClientServerConfig(server_command=SERVER_COMMAND, client_factory=make_client)


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_the_language_servers_adapter_follows_its_allow_execution_setting(tmp_path: Path) -> None:
    program = tmp_path / "shout.py"
    program.write_text(PROGRAM)
    client = await CONFIG.start()
    await start(client, "visual-studio-code", {"backend": "exec", "allowExecution": False}, tmp_path)
    dap = None
    try:
        open_doc(client, program)
        answer = await client.protocol.send_request_async("neuraldbg/debugAdapter", {})
        dap = await asyncio.to_thread(DapClient.connect, answer["port"])
        await asyncio.to_thread(dap.req, "initialize", {"adapterID": "neuraldbg"})
        error = await asyncio.to_thread(assert_refused, dap, program, WORKSPACE_FIX, allowExecution=True)
        assert "cannot override" in error
        # the workspace turns execution on (workspace/didChangeConfiguration): the launch runs
        client.set_configuration({"backend": "exec", "allowExecution": True}, section="neuraldbg")
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        # Settings are re-read asynchronously: wait until the server says so, never a fixed sleep.
        launched = False
        for _ in range(100):
            resp = await asyncio.to_thread(dap.request, "launch", launch_args(program), 120)
            if resp["success"]:
                launched = True
                break
            assert WORKSPACE_FIX in resp["message"], resp
            await asyncio.sleep(0.1)
        assert launched, "the launch was still refused after the setting was turned on"
        await asyncio.to_thread(dap.wait_event, "initialized")
        await asyncio.to_thread(dap.req, "configurationDone")
        end = await asyncio.to_thread(dap.wait_stop)
        assert end == {"terminated": True, "exitCode": 0}, end
        assert any(MARKER in o for o in dap.outputs("stdout")), dap.outputs()
    finally:
        if dap is not None:
            await asyncio.to_thread(dap.shutdown)
        await close(client)


# -- the remote backend's API key never reaches the program ------------------------
KEY = "ndbg-test-key-5f0c9a"
PROBE = (
    "import os\n"
    "def probe():\n"
    "    seen = repr(sorted(os.environ.items()))\n"
    "    for name in ('environ', 'cmdline'):\n"
    "        with open('/proc/self/' + name, 'rb') as f:\n"
    "            seen += f.read().decode('utf-8', 'replace')\n"
    "    return KEY in seen\n"
)


def test_the_api_key_is_not_in_the_programs_environment_or_command_line(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "probe.py"
    program.write_text(PROBE.replace("KEY", repr(KEY)))
    monkeypatch.setenv("NEURALDBG_API_KEY", KEY)  # the adapter's own environment holds it
    dap = DapClient.spawn()
    try:
        dap.req("initialize", {"adapterID": "neuraldbg"})
        dap.req("launch", {"program": str(program), "function": "probe", "args": "probe()", "allowExecution": True,
                           "apiKey": KEY, "url": "http://127.0.0.1:9"}, timeout=120)
        dap.wait_event("initialized")
        dap.req("configurationDone")
        assert dap.wait_stop() == {"terminated": True, "exitCode": 0}
        frames = dap.trace()["trace"]["frames"]
        assert frames[-1]["event"] == "return" and frames[-1]["value"] == "False", frames[-1]
    finally:
        dap.shutdown()
