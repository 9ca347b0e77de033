"""The tracer's sandbox: every escape attempt is contained, reported, and
leaves the parent (this test process) unharmed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from neuraldbg.trace import Trace
from neuraldbg.tracer import Limits, run_trace

# Small limits so that the non-halting cases end fast; wall time generous
# enough that a busy machine still hits the CPU and frame limits first.
SMALL = Limits(wall_seconds=20, cpu_seconds=0.5, max_frames=300)


def trace_of(body: str, *, imports: str = "", limits: Limits = SMALL) -> Trace:
    source = f"{imports}\ndef f():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return run_trace(source, "f()", function="f", path="/work/prog.py", limits=limits)


def assert_blocked(trace: Trace, message: str) -> None:
    """The operation raised inside the program: an exception frame, the entry
    raised it, and the error says what was denied."""
    assert trace.status == "complete", trace.error
    raised = trace.raised
    assert raised is not None, trace.frames
    assert raised.value is not None and message in raised.value
    assert trace.error is not None and message in trace.error
    assert any(f.event == "exception" for f in trace.frames)


# -- non-halting programs -----------------------------------------------------


def test_infinite_loop_is_stopped_by_the_frame_cap() -> None:
    trace = trace_of("i = 0\nwhile True:\n    i += 1")
    assert (trace.status, trace.stop) == ("truncated", "frame-budget")  # stopped early: nothing proves a loop
    assert trace.error == "stopped after 300 frames, the frame budget, with the program still running"
    assert len(trace.frames) == 300
    assert trace.frames[-1].locals["i"].isdigit()


def test_cpu_loop_without_line_events_is_stopped_by_the_cpu_limit() -> None:
    trace = trace_of("while True: pass")
    assert trace.status == "truncated"
    assert trace.error == "CPU time limit of 0.5 s exceeded (the program may not halt)"
    assert [f.event for f in trace.frames] == ["call", "line"]  # what ran before the loop is kept


def test_sleeping_program_is_stopped_by_the_wall_time() -> None:
    trace = trace_of("import time\ntime.sleep(60)", limits=Limits(wall_seconds=1, cpu_seconds=5))
    assert trace.status == "truncated"
    assert trace.error == "timed out after 1 s (the program may not halt)"


def test_program_that_blocks_the_child_timers_is_killed_by_the_parent() -> None:
    body = "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF, signal.SIGXCPU})\ntime.sleep(60)"
    trace = trace_of(body, imports="import signal, time", limits=Limits(wall_seconds=1, cpu_seconds=5))
    assert trace.status == "truncated"
    assert trace.error == "timed out after 1 s (the program may not halt)"
    assert trace.frames == []  # the parent killed the whole process group: nothing came back


def test_program_that_swallows_the_stop_still_ends() -> None:
    body = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    trace = trace_of(body)
    assert (trace.status, trace.stop) == ("truncated", "cycle")  # the inner `pass` comes back to one state
    assert trace.error == ("stopped after 300 frames: line 6 came back to an earlier state exactly, "
                           "so the loop never ends (the program does not halt)")


# -- memory and files ---------------------------------------------------------


@pytest.mark.parametrize("allocation", ["x = [0] * 10**10", "x = bytearray(10**11)"])
def test_huge_allocation_raises_memory_error(allocation: str) -> None:
    trace = trace_of(allocation)
    assert trace.status == "complete"
    assert trace.error == "MemoryError"
    raised = trace.raised
    assert raised is not None and raised.value == "MemoryError()"


def test_file_write_outside_the_sandbox_is_denied() -> None:
    target = f"/tmp/neuraldbg-escape-{uuid.uuid4().hex}"
    trace = trace_of(f"with open({target!r}, 'w') as fh:\n    fh.write('escaped')")
    assert_blocked(trace, "neuraldbg sandbox: open for writing is not allowed outside the sandbox directory")
    assert not os.path.exists(target)


def test_removing_and_renaming_outside_the_sandbox_is_denied(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    removed = trace_of(f"os.remove({str(victim)!r})", imports="import os")
    assert_blocked(removed, "neuraldbg sandbox: os.remove is not allowed outside the sandbox directory")
    renamed = trace_of(f"os.rename({str(victim)!r}, 'mine.txt')", imports="import os")
    assert_blocked(renamed, "neuraldbg sandbox: os.rename is not allowed")
    linked = trace_of(f"os.symlink({str(victim)!r}, 'link')\nopen('link', 'w').write('x')", imports="import os")
    assert_blocked(linked, "neuraldbg sandbox: os.symlink is not allowed")
    assert victim.read_text() == "precious"


def test_directory_descriptors_outside_the_sandbox_are_denied() -> None:
    trace = trace_of("fd = os.open('/tmp', os.O_RDONLY)", imports="import os")
    assert_blocked(trace, "neuraldbg sandbox: opening a directory is not allowed outside the sandbox directory")


def test_writes_inside_the_sandbox_work() -> None:
    body = (
        "with open('notes.txt', 'w') as fh:\n"
        "    fh.write('kept')\n"
        "os.mkdir('sub')\n"
        "os.rename('notes.txt', 'sub/n.txt')\n"
        "with tempfile.NamedTemporaryFile('w', delete=False) as tmp:\n"
        "    tmp.write('t')\n"
        "return open('sub/n.txt').read(), os.path.dirname(tmp.name) == os.getcwd()"
    )
    trace = trace_of(body, imports="import os, tempfile")
    assert trace.status == "complete", trace.error
    assert trace.error is None
    assert trace.return_value == "('kept', True)"


def test_file_size_limit_turns_into_an_error_not_a_kill() -> None:
    trace = trace_of("open('big', 'wb').write(b'0' * (2 * 1024 * 1024))", limits=Limits(max_file_mb=1))
    assert trace.status == "complete"
    assert trace.error is not None and trace.error.startswith("OSError: [Errno 27] File too large")


def test_reading_files_is_allowed() -> None:
    trace = trace_of("return open('/etc/hostname').read() == open('/etc/hostname').read()")
    assert trace.return_value == "True"


# -- processes, network, native code ------------------------------------------


def test_fork_is_denied() -> None:
    assert_blocked(trace_of("os.fork()", imports="import os"), "neuraldbg sandbox: os.fork is not allowed")


def test_os_system_is_denied() -> None:
    trace = trace_of("os.system('echo hi')", imports="import os")
    assert_blocked(trace, "neuraldbg sandbox: os.system is not allowed")
    assert trace.stdout == ""


def test_subprocess_is_denied() -> None:
    trace = trace_of("subprocess.run(['echo', 'hi'])", imports="import subprocess")
    assert_blocked(trace, "neuraldbg sandbox: subprocess.Popen is not allowed")


def test_exec_is_denied() -> None:
    trace = trace_of("os.execv('/bin/true', ['true'])", imports="import os")
    assert_blocked(trace, "neuraldbg sandbox: os.exec is not allowed")


def test_socket_connect_is_denied() -> None:
    trace = trace_of("s = socket.socket()\ns.connect(('127.0.0.1', 9))", imports="import socket")
    assert_blocked(trace, "neuraldbg sandbox: socket.connect is not allowed")


def test_name_lookup_is_denied() -> None:
    trace = trace_of("socket.getaddrinfo('localhost', 80)", imports="import socket")
    assert_blocked(trace, "neuraldbg sandbox: socket.getaddrinfo is not allowed")


def test_ctypes_is_denied() -> None:
    trace = trace_of("import ctypes")
    assert_blocked(trace, "neuraldbg sandbox: import of ctypes is not allowed")
    assert trace.error is not None and trace.error.startswith("ImportError")


def test_signals_to_other_processes_are_denied() -> None:
    trace = trace_of("os.kill(1, 0)", imports="import os")
    assert_blocked(trace, "neuraldbg sandbox: os.kill is not allowed for other processes")


def test_raising_resource_limits_is_denied() -> None:
    trace = trace_of(
        "resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))",
        imports="import resource",
    )
    assert_blocked(trace, "neuraldbg sandbox: resource.setrlimit is not allowed")


def test_unaudited_process_helpers_are_stubbed() -> None:
    trace = trace_of("fd = os.pidfd_open(1)", imports="import os")
    assert_blocked(trace, "neuraldbg sandbox: os.pidfd_open is not allowed")


# -- crashes and exits --------------------------------------------------------


def test_child_killing_itself_is_reported() -> None:
    trace = trace_of("os.kill(os.getpid(), signal.SIGKILL)", imports="import os, signal")
    assert trace.status == "error"
    assert trace.error == "the program crashed (killed by SIGKILL)"


def test_segfault_is_reported() -> None:
    trace = trace_of("faulthandler._sigsegv()", imports="import faulthandler")
    assert trace.status == "error"
    assert trace.error == "the program crashed (killed by SIGSEGV)"


def test_hard_exit_is_reported() -> None:
    trace = trace_of("os._exit(3)", imports="import os")
    assert trace.status == "error"
    assert trace.error == "the program ended the process (exit code 3) before the call returned"


def test_sys_exit_is_an_exception_frame() -> None:
    trace = trace_of("sys.exit(2)", imports="import sys")
    assert trace.status == "complete"
    assert trace.error == "SystemExit: 2"
    assert trace.raised is not None


def test_input_reads_an_empty_stdin() -> None:
    trace = trace_of("return input('name? ')")
    assert trace.error == "EOFError: EOF when reading a line"
    assert trace.stdout == "name? "


# -- the contract: errors are reported, never raised ---------------------------


def test_uncaught_exception_in_the_sandbox() -> None:
    trace = trace_of("raise KeyError('k')")
    assert trace.status == "complete"
    assert trace.error == "KeyError: 'k'"


def test_syntax_and_import_errors_in_the_sandbox() -> None:
    assert trace_of("return (").error == "syntax error at line 3: '(' was never closed"
    assert trace_of("return 1", imports="import nope").error == "ModuleNotFoundError: No module named 'nope'"


def test_child_that_closes_its_pipes_and_hangs_is_killed() -> None:
    body = (
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF, signal.SIGXCPU})\n"
        "for fd in range(1, 20):\n"
        "    try:\n"
        "        os.close(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "time.sleep(60)"
    )
    trace = trace_of(body, imports="import os, signal, time", limits=Limits(wall_seconds=1, cpu_seconds=5))
    assert trace.status == "truncated"
    assert trace.error == "timed out after 1 s (the program may not halt)"


def test_garbage_written_to_the_result_descriptor_is_survived() -> None:
    body = "for fd in range(3, 10):\n    try:\n        os.write(fd, b'\\x00garbage{')\n    except OSError:\n        pass\nreturn 5"
    trace = trace_of(body, imports="import os")
    assert trace.status == "complete", trace.error
    assert trace.return_value == "5"
