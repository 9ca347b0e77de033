"""The command line, run as a user would (a subprocess), on the examples and
on bad input: clear one-line errors, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neuraldbg.tracer import run_trace

ROOT = Path(__file__).resolve().parents[1]


def ndbg(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neuraldbg", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, input=stdin)


def test_trace_json_matches_the_tracer() -> None:
    res = ndbg("trace", "examples/binary_search.py::binary_search", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    source = (ROOT / "examples/binary_search.py").read_text()
    truth = run_trace(source, "binary_search([1, 3, 5, 7, 9, 11], 7)", function="binary_search",
                      path="examples/binary_search.py")
    assert data["call"] == "binary_search([1, 3, 5, 7, 9, 11], 7)"  # from the doctest
    assert data["backend"] == "exec" and data["error"] is None
    assert data["frames"] == truth.to_json()["frames"]
    assert data["frames"][-1]["event"] == "return" and data["frames"][-1]["value"] == "3"
    for frame in data["frames"]:
        assert set(frame) >= {"event", "line", "function", "depth", "locals", "value"}
        assert ".." not in frame["locals"].values()


def test_trace_table_and_main_entry() -> None:
    res = ndbg("trace", "examples/recursion.py::fib_list")  # no doctest: the __main__ call fib_list(5)
    assert res.returncode == 0, res.stderr
    assert "fib_list(5)" in res.stdout and "returned [0, 1, 1, 2, 3]" in res.stdout
    assert "\x1b[" not in res.stdout  # no colour when not a terminal


def test_trace_cwm_format_is_the_exact_prompt_and_trace() -> None:
    res = ndbg("trace", "examples/strawberry.py::count_letter", "--format", "cwm")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith("<|begin_of_text|><|trace_context_start|>")
    assert "def count_letter(word: str, letter: str) -> int:  # << START_OF_TRACE\n" in out
    assert '<|frame_sep|><|call_sep|>{"word": "\'strawberry\'", "letter": "\'r\'"}<|action_sep|>def count_letter' in out
    assert '<|return_sep|><|action_sep|>    return count\n<|arg_sep|>"3"<|frame_sep|><|end_of_text|>' in out


def test_replay_backend_gives_the_same_frames_as_exec() -> None:
    a = json.loads(ndbg("trace", "examples/recursion.py::factorial", "--format", "json").stdout)
    b = json.loads(ndbg("trace", "examples/recursion.py::factorial", "--format", "json", "--backend", "replay").stdout)
    assert b["backend"] == "replay"
    strip = lambda fs: [(f["event"], f["line"], f["function"], f["depth"], f["value"]) for f in fs]  # noqa: E731
    assert strip(a["frames"]) == strip(b["frames"])
    assert [f["locals"] for f in a["frames"] if f["event"] != "return"] == [f["locals"] for f in b["frames"] if f["event"] != "return"]


def test_uncaught_exception_is_reported(tmp_path: Path) -> None:
    res = ndbg("trace", "examples/raises.py::parse_port")
    assert res.returncode == 1, res.stderr  # traced fine, but the program raised
    assert "exception" in res.stdout and "ValueError: port out of range: 70000" in res.stdout


@pytest.mark.parametrize(
    ("content", "spec", "extra", "message"),
    [
        (b"", "f", [], "no function 'f'"),
        (b"\x00\x01binary", "f", [], "binary file"),
        (b"def f(x):\n    return '\xff'\n", "f", [], "not UTF-8"),
        (b"def f(x):\n    return x\n", "g", [], "no function 'g'"),
        (b"def f(x):\n    return x\n", "f", ["--call", "f(("], "does not parse"),
        (b"def f(x):\n    return x\n", "f", ["--call", "g(1)"], "calls g, not f"),
        (b"def f(x):\n    return x\n", "f", [], "no input for f"),
        (b"def f(x):\n    return ??\n", "f", ["--call", "f(1)"], "?? hole"),
    ],
)
def test_bad_input_gives_one_line_errors(tmp_path: Path, content: bytes, spec: str, extra: list[str], message: str) -> None:
    path = tmp_path / "prog.py"
    path.write_bytes(content)
    res = ndbg("trace", f"{path}::{spec}", *extra)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("spec", ["nope.py::f", "examples/strawberry.py", "examples::"])
def test_bad_targets(spec: str) -> None:
    res = ndbg("trace", spec)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.startswith("neuraldbg: error:")


def test_syntax_error_in_file_is_a_clear_trace_error(tmp_path: Path) -> None:
    path = tmp_path / "syn.py"
    path.write_text("def f(x):\n    return x +\n")
    res = ndbg("trace", f"{path}::f", "--call", "f(1)")
    assert res.returncode == 1
    assert "syntax error at line 2" in res.stdout and "Traceback" not in res.stdout + res.stderr


def test_big_crlf_tab_unicode_files(tmp_path: Path) -> None:
    big = tmp_path / "big.py"
    big.write_text("".join(f"def g{i}(x):\n    return x + {i}\n\n" for i in range(17000)))  # 51,000 lines
    res = ndbg("trace", f"{big}::g16999", "--call", "g16999(1)", "--format", "json")
    assert res.returncode == 0 and json.loads(res.stdout)["frames"][-1]["value"] == "17000"
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes("def größe(λ):\r\n\tü = λ * 2\r\n\treturn ü\r\n".encode())
    res = ndbg("trace", f"{crlf}::größe", "--call", "größe(2)", "--format", "json")
    data = json.loads(res.stdout)
    assert [f["line"] for f in data["frames"]] == [1, 2, 3, 3] and data["frames"][-1]["value"] == "4"


def test_debug_terminal_session() -> None:
    script = "n\nn\np count\ns\nb\nc 14\np\nw\nbogus\nq\n"
    res = ndbg("debug", "examples/strawberry.py::count_letter", stdin=script)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "count = 0" in out
    assert "unknown command 'bogus'" in out
    assert "return count" in out and "count = 3" in out


def test_debug_edit_is_refused_on_exec() -> None:
    res = ndbg("debug", "examples/strawberry.py::count_letter", stdin="n\ne count=5\nq\n")
    assert "not supported on the exec backend" in res.stdout


def debug_script(script: str, *backend: str) -> str:
    res = ndbg("debug", "examples/strawberry.py::count_letter", *backend, stdin=script)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_debug_edit_on_replay_is_refused() -> None:
    """Replay walks a real run: an edited state would be answered with the
    real run's later values (issue 13: 1 where 101 was set), so the terminal
    refuses it in one line, as the debug adapter does, and the session goes on."""
    out = debug_script("n\nn\ne count=40\nc 13\np count\nq\n", "--backend", "replay")
    assert "error: editing a variable is not supported on the replay backend: a real run cannot be resumed" in out
    assert "count = 40" not in out
    assert "[8]     -> count_letter:13" in out and "(ndbg)   count = 0\n" in out.split("[8]", 1)[1], out


def test_debug_step_out_lands_in_the_caller(tmp_path: Path) -> None:
    """The terminal steps by the debug adapter's rules: step out of the first
    ``sq`` in ``sq(a) + sq(b)`` is back on main's calling line (it used to land
    on the second call's def line), and next from there passes the second call."""
    prog = tmp_path / "calls.py"
    prog.write_text("def sq(x):\n    y = x * x\n    return y\n\n\ndef main(a=2, b=3):\n"
                    "    s = sq(a) + sq(b)\n    return s\n")
    res = ndbg("debug", f"{prog}::main", "--call", "main()", stdin="s\ns\no\nn\nq\n")
    assert res.returncode == 0, res.stderr
    after_out = res.stdout.split("(ndbg)")[3]
    assert "back in main:7 (the calling line)" in after_out, res.stdout
    assert "def sq" not in after_out
    assert "-> main:8" in res.stdout.split("(ndbg)")[4], res.stdout


def test_debug_edit_of_the_input_resimulates_on_a_model(oracle_server_url: str) -> None:
    """On a model backend (the oracle-forced CWM), editing the call frame's
    argument simulates the function on the new input: count_letter('rr', 'r')
    runs to 2 in 11 frames, where the doctest input runs to 3 in 28."""
    backend = ("--backend", "remote", "--url", oracle_server_url)
    plain = debug_script("c\nq\n", *backend)
    assert "[27] return count_letter:14" in plain and "value: 3\n" in plain, plain
    edited = debug_script("e word=\"'rr'\"\nc\np\nq\n", *backend)
    assert "word = 'rr' (re-simulating from here)" in edited
    assert "[10] return count_letter:14" in edited and "value: 2\n" in edited, edited
    assert "  word = 'rr'\n  letter = 'r'\n  count = 2\n" in edited, edited


def test_trace_on_a_remote_model_prints_the_values_the_model_wrote(oracle_server_url: str) -> None:
    """``trace --backend remote`` against ``model-server --oracle``: the frames
    come out of a real CWM decode loop (logits masked to the real run), over
    the HTTP API, through the codec and the simulation; they must be the real
    run's, nested call and return values included."""
    from neuraldbg.trace.cwm_decode import cwm_view
    from neuraldbg.trace.frames import Frame

    spec = ("trace", "examples/recursion.py::factorial", "--call", "factorial(2)", "--backend", "remote",
            "--url", oracle_server_url)
    truth = run_trace((ROOT / "examples/recursion.py").read_text(), "factorial(2)", function="factorial",
                      path="examples/recursion.py")
    res = ndbg(*spec, "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["backend"] == "remote" and data["error"] is None and data["status"] == "complete"
    assert data["model"] == f"model server {oracle_server_url}"
    assert cwm_view(Frame.from_json(f) for f in data["frames"]) == cwm_view(truth.frames)
    assert [f["value"] for f in data["frames"] if f["event"] == "return"] == ["1", "2"]

    table = ndbg(*spec)
    assert table.returncode == 0, table.stderr
    assert f"[remote, predicted by model server {oracle_server_url}]" in table.stdout
    assert "rest=1" in table.stdout and "status: complete; returned 2" in table.stdout
