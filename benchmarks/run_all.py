"""Run every benchmark script and print one table of their figures.

The convention each script in benchmarks/ follows:

- Besides its human-readable output, it prints each figure on stdout as one
  line ``FIGURE <name> | <value> | <unit or ratio>`` (name without spaces,
  e.g. ``FIGURE kv_reuse.prefill_ratio | 9.8 | x fewer tokens prefilled``).
- Optional comment lines near the top tell this runner how to run it:
  ``# bench: needs-gpu`` (skipped without a CUDA device; a script named
  ``gpu_*.py`` needs one unless it says ``# bench: cpu-ok``),
  ``# bench: args --runs 20`` (arguments to pass), ``# bench: timeout 300``
  (seconds; default --timeout).

Each script runs as a subprocess from the repository root with a timeout.
The table (benchmark, figure, value, unit, command) goes to stdout and to
benchmarks/RESULTS.md with a description of the machine.

    python benchmarks/run_all.py [--only NAME ...] [--timeout 600] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
README = ROOT / "README.md"
README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"
FIGURE = re.compile(r"^FIGURE\s+(\S+)\s*\|\s*(.*?)\s*\|\s*(.*?)\s*$")
MARKER = re.compile(r"^#\s*bench:\s*(\S+)\s*(.*?)\s*$")
HEADER_LINES = 60  # markers are looked for in this many first lines


@dataclass
class Script:
    path: Path
    needs_gpu: bool = False
    args: list[str] = field(default_factory=list)
    timeout: float | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def command(self) -> str:
        return shlex.join(["python", f"benchmarks/{self.path.name}", *self.args])


@dataclass
class Row:
    benchmark: str
    figure: str
    value: str
    unit: str
    command: str


def read_script(path: Path, default_timeout: float) -> Script:
    script = Script(path, needs_gpu=path.name.startswith("gpu_"), timeout=default_timeout)
    try:
        head = path.read_text(encoding="utf-8").splitlines()[:HEADER_LINES]
    except (OSError, UnicodeDecodeError):
        return script
    for line in head:
        m = MARKER.match(line.strip())
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if key == "needs-gpu":
            script.needs_gpu = True
        elif key == "cpu-ok":
            script.needs_gpu = False
        elif key == "args":
            script.args = shlex.split(value)
        elif key == "timeout":
            try:
                script.timeout = float(value)
            except ValueError:
                pass
    return script


def discover(default_timeout: float, only: list[str] | None) -> list[Script]:
    scripts = [read_script(p, default_timeout) for p in sorted(HERE.glob("*.py"))
               if p.name != Path(__file__).name and not p.name.startswith("_")]
    if only:
        wanted = {o.removesuffix(".py") for o in only}
        unknown = wanted - {s.name for s in scripts}
        if unknown:
            raise SystemExit(f"run_all: no benchmark {', '.join(sorted(unknown))}")
        scripts = [s for s in scripts if s.name in wanted]
    return scripts


def cuda_device() -> str | None:
    """The name of the first CUDA device, or None (also when torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except RuntimeError:
        return None


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "(no output)"
    return last if len(last) <= 120 else last[:119] + "…"


def run_script(script: Script) -> tuple[list[Row], float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(script.path), *script.args]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=script.timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rows = figures(script, out)
        rows.append(Row(script.name, f"(timed out after {script.timeout:g} s)", "", "", script.command))
        return rows, time.perf_counter() - t0
    wall = time.perf_counter() - t0
    rows = figures(script, proc.stdout)
    if proc.returncode != 0:
        rows.append(Row(script.name, f"(failed: exit {proc.returncode})", last_line(proc.stderr or proc.stdout), "",
                        script.command))
    elif not rows:
        rows.append(Row(script.name, "no FIGURE lines", last_line(proc.stdout), "", script.command))
    return rows, wall


def figures(script: Script, stdout: str) -> list[Row]:
    rows = []
    for line in stdout.splitlines():
        m = FIGURE.match(line.strip())
        if m:
            rows.append(Row(script.name, m.group(1), m.group(2), m.group(3), script.command))
    return rows


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
                break
    except (OSError, ValueError):
        pass
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    try:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    gpu = cuda_device()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores (load average at the start {load})",
        f"- RAM: {ram}",
        f"- GPU: {gpu or 'none (CUDA not available)'}",
        f"- Python {platform.python_version()}, torch {torch_version}, {platform.system()} {platform.release()}",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
    ]


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[Row]) -> str:
    head = ["benchmark", "figure", "value", "unit", "command"]
    body = [[r.benchmark, r.figure, r.value, r.unit, f"`{r.command}`"] for r in rows]
    widths = [max(len(cell(x)) for x in col) for col in zip(head, *body)]
    lines = ["| " + " | ".join(cell(h).ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in body:
        lines.append("| " + " | ".join(cell(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)


def update_readme(body: str) -> bool:
    """Put the latest machine description and table between the README's
    markers, so that the README always shows the last full run."""
    text = README.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    README.write_text(text[: start + len(README_START)] + "\n" + body + "\n" + text[end:], encoding="utf-8")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description="run every benchmark and print one table of figures")
    parser.add_argument("--only", nargs="+", help="run only these scripts (names without .py)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script (a script may set its own)")
    parser.add_argument("--no-write", action="store_true",
                        help=f"do not write {RESULTS.relative_to(ROOT)} or the table in {README.relative_to(ROOT)}")
    args = parser.parse_args()
    scripts = discover(args.timeout, args.only)
    about = machine()  # before the runs: the load average says how busy the machine was
    gpu = cuda_device()
    rows: list[Row] = []
    started = time.perf_counter()
    for script in scripts:
        if script.needs_gpu and gpu is None:
            rows.append(Row(script.name, "skipped: needs a GPU", "", "", script.command))
            print(f"run_all: {script.name}: skipped (needs a GPU)", file=sys.stderr, flush=True)
            continue
        print(f"run_all: {script.name} ...", file=sys.stderr, flush=True)
        got, wall = run_script(script)
        rows += got
        print(f"run_all: {script.name}: {len(got)} row(s) in {wall:.1f} s", file=sys.stderr, flush=True)
    text = table(rows)
    print(text)
    if not args.no_write:
        total = time.perf_counter() - started
        body = "\n".join(about) + f"\n- total wall time: {total:.0f} s\n\n" + text
        RESULTS.write_text(
            "# Benchmark results\n\n"
            "Written by `python benchmarks/run_all.py` (`make bench`); each figure is a `FIGURE` line\n"
            "printed by the script in the command column, run from the repository root.\n\n"
            + body + "\n",
            encoding="utf-8",
        )
        print(f"run_all: wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
        if not args.only and update_readme(body):  # a partial run does not replace the README's table
            print(f"run_all: updated the table in {README.relative_to(ROOT)}", file=sys.stderr)
    failed = [r for r in rows if r.figure.startswith("(failed") or r.figure.startswith("(timed out")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
