"""Microsoft's own DAP test client (@vscode/debugadapter-testsupport 1.68,
from npm) drives ``python -m neuraldbg.dap``: the adapter as VS Code's
debug machinery sees it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parent / "dap_client"
REPO = CLIENT.parents[1]


def _npm_install() -> None:
    if (CLIENT / "node_modules" / "@vscode" / "debugadapter-testsupport" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the DebugClient test (apt-get install npm)"
    command = [npm, "ci" if (CLIENT / "package-lock.json").is_file() else "install", "--no-audit", "--no-fund"]
    done = subprocess.run(command, cwd=CLIENT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


@pytest.mark.timeout(600)
def test_microsofts_debug_client_drives_the_adapter() -> None:
    node = shutil.which("node")
    assert node, "node is needed for the DebugClient test"
    _npm_install()
    env = dict(os.environ)
    env["NEURALDBG_PYTHON"] = sys.executable
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([node, str(CLIENT / "test_debugclient.js")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-4000:]
    assert "5 passed, 0 failed" in done.stdout, report[-4000:]
    assert "not ok" not in done.stdout
