"""The simulated step debugger over the Debug Adapter Protocol.

``run_stdio()`` serves one session on stdin/stdout (``python -m
neuraldbg.dap``); ``start_tcp_server()`` serves sessions on a loopback port
from inside another process (the language server).
"""

from neuraldbg.dap.server import run_stdio, start_tcp_server

__all__ = ["run_stdio", "start_tcp_server"]
