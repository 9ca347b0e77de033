"""benchmarks/run_all.py: the FIGURE-line convention, script markers, one
table, failures and timeouts reported as rows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RUN_ALL = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", RUN_ALL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_markers(run_all, tmp_path) -> None:
    plain = run_all.read_script(_script(tmp_path, "bench_a.py", "print(1)\n"), 600)
    assert (plain.needs_gpu, plain.args, plain.timeout) == (False, [], 600)
    gpu = run_all.read_script(_script(tmp_path, "gpu_b.py", "print(1)\n"), 600)
    assert gpu.needs_gpu
    cpu_ok = run_all.read_script(_script(tmp_path, "gpu_c.py", '"""doc"""\n# bench: cpu-ok\n# bench: args --steps 5 --name "a b"\n# bench: timeout 30\n'), 600)
    assert (cpu_ok.needs_gpu, cpu_ok.args, cpu_ok.timeout) == (False, ["--steps", "5", "--name", "a b"], 30.0)
    assert cpu_ok.command == "python benchmarks/gpu_c.py --steps 5 --name 'a b'"
    assert run_all.read_script(_script(tmp_path, "bench_d.py", "# bench: needs-gpu\n"), 600).needs_gpu


def test_figures_failures_and_timeouts_become_rows(run_all, tmp_path) -> None:
    good = run_all.read_script(_script(tmp_path, "bench_good.py", (
        "print('human readable')\n"
        "print('FIGURE x.speed | 12.5 | ms')\n"
        "print('FIGURE x.ratio|3.0x|ratio')\n")), 60)
    rows, _ = run_all.run_script(good)
    assert [(r.benchmark, r.figure, r.value, r.unit) for r in rows] == [
        ("bench_good", "x.speed", "12.5", "ms"), ("bench_good", "x.ratio", "3.0x", "ratio")]
    silent = run_all.read_script(_script(tmp_path, "bench_silent.py", "print('no figures here')\nprint('last line')\n"), 60)
    rows, _ = run_all.run_script(silent)
    assert [(r.figure, r.value) for r in rows] == [("no FIGURE lines", "last line")]
    failing = run_all.read_script(_script(tmp_path, "bench_fail.py", "print('FIGURE y.a | 1 | s')\nraise SystemExit('broken input')\n"), 60)
    rows, _ = run_all.run_script(failing)
    assert [(r.figure, r.value) for r in rows] == [("y.a", "1"), ("(failed: exit 1)", "broken input")]
    slow = run_all.read_script(_script(tmp_path, "bench_slow.py", "# bench: timeout 1\nimport time\nprint('FIGURE z.a | 2 | s', flush=True)\ntime.sleep(30)\n"), 60)
    rows, wall = run_all.run_script(slow)
    assert [r.figure for r in rows] == ["z.a", "(timed out after 1 s)"]
    assert wall < 20


def test_one_markdown_table(run_all) -> None:
    Row = run_all.Row
    text = run_all.table([Row("b", "f.a", "1|2", "ms", "python benchmarks/b.py"), Row("c", "skipped: needs a GPU", "", "", "python benchmarks/c.py")])
    lines = text.splitlines()
    assert lines[0].startswith("| benchmark") and "| command" in lines[0]
    assert len(lines) == 4 and all(ln.startswith("|") and ln.endswith("|") for ln in lines)
    assert "1\\|2" in lines[2]  # a pipe inside a cell is escaped
    assert any(ln.startswith("- CPU: ") for ln in run_all.machine())


def test_readme_table_is_replaced_between_markers(run_all, tmp_path, monkeypatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run_all.README_START}\nold table\n{run_all.README_END}\noutro\n")
    monkeypatch.setattr(run_all, "README", readme)
    assert run_all.update_readme("| new | table |")
    assert readme.read_text() == f"intro\n{run_all.README_START}\n| new | table |\n{run_all.README_END}\noutro\n"
    readme.write_text("no markers here\n")
    assert not run_all.update_readme("| new | table |")
    assert readme.read_text() == "no markers here\n"
