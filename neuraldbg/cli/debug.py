"""``neuraldbg debug FILE::FUNC``: a step debugger in the terminal, on any
backend (the same Simulation the editor's debug adapter drives)."""

from __future__ import annotations

import ast
import shlex
import sys
from typing import TextIO

from neuraldbg.dap.debugger import Debugger, Ended, Outcome, Stopped
from neuraldbg.session.policy import runs_code
from neuraldbg.simulation.simulation import Simulation, SimulationError
from neuraldbg.trace.frames import Frame

HELP = """commands:
  s, step          step into
  n, next          step over (a call's result is predicted directly)
  o, out           step out of the current function (to the caller's calling line)
  b, back          step back
  c, continue [L]  run to line L (or to the end)
  p, print [VAR]   print a local (or all locals)
  e, edit VAR=VAL  set a local here and re-simulate from this point (model backends)
  r, resample      restart with a new sample of the input (model backends)
  w, where         show the call stack
  q, quit          quit"""


def _show(sim: Simulation, out: TextIO, returned: bool = False) -> None:
    frame = sim.current
    if frame is None:
        print("(no frame)", file=out)
        return
    step = len(sim.frames) - 1
    marker = {"call": "call", "line": "->", "return": "return", "exception": "raise"}[frame.event]
    where = f"{frame.function}:{frame.line or '?'}"
    print(f"[{step}] {marker:>6} {where:<24} {frame.source.strip()}", file=out)
    if frame.event in ("return", "exception"):
        print(f"         {'value' if frame.event == 'return' else 'exception'}: {frame.value}", file=out)
    if returned:
        caller = _caller(sim)
        print(f"         back in {caller.function}:{caller.line} (the calling line)" if caller else
              "         back in the caller", file=out)
    if frame.problem:
        print(f"         ! {frame.problem}", file=out)
    if sim.done:
        print(f"-- end of trace ({sim.status}{': ' + sim.error if sim.error else ''})", file=out)


def _caller(sim: Simulation) -> Frame | None:
    """The frame a step out returned to (the latest frame one level up)."""
    cur = sim.current
    if cur is None:
        return None
    return next((f for f in reversed(sim.frames[:-1]) if f.depth == cur.depth - 1), None)


def _note(outcome: Outcome, out: TextIO) -> None:
    if isinstance(outcome, Stopped) and outcome.reason == "pause" and outcome.description:
        print(f"error: {outcome.description}", file=out)
    elif isinstance(outcome, Ended) and outcome.message:
        print(f"-- {outcome.message}", file=out)


def _locals(sim: Simulation) -> dict[str, str]:
    return sim.trace().locals_at(len(sim.frames) - 1) if sim.frames else {}


def run_debugger(sim: Simulation, inp: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """The debug adapter's stepping rules (neuraldbg.dap.debugger), without breakpoints."""
    sim.start()
    dbg = Debugger(sim, breakpoints=lambda: [], output=lambda text, _category, _line: out.write(text),
                   break_on_uncaught=False)
    _show(sim, out)
    seed = 1
    while True:
        out.write("(ndbg) ")
        out.flush()
        line = inp.readline()
        if not line:
            return 0
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"error: {exc}", file=out)
            continue
        if not words:
            continue
        cmd, rest = words[0], words[1:]
        try:
            if cmd in ("q", "quit", "exit"):
                return 0
            elif cmd in ("h", "help", "?"):
                print(HELP, file=out)
                continue
            elif cmd in ("s", "step"):
                _note(dbg.step_in(), out)
            elif cmd in ("n", "next"):
                _note(dbg.next(), out)
            elif cmd in ("o", "out"):
                _note(dbg.step_out(), out)
            elif cmd in ("b", "back"):
                dbg.returned = False
                sim.step_back()
            elif cmd in ("c", "continue"):
                dbg.returned = False
                if rest:
                    sim.run(lambda _i, f, target=int(rest[0]): f.line == target and f.event == "line")
                else:
                    sim.run()
            elif cmd in ("p", "print"):
                loc = _locals(sim)
                if not rest:
                    for k, v in loc.items():
                        print(f"  {k} = {v}", file=out)
                for name in rest:
                    print(f"  {name} = {loc[name]}" if name in loc else f"  no local named {name!r}", file=out)
                continue
            elif cmd in ("w", "where"):
                trace = sim.trace()
                for i in trace.stack_at(len(sim.frames) - 1):
                    f: Frame = trace.frames[i]
                    print(f"  {f.function} (called at step {i})", file=out)
                continue
            elif cmd in ("e", "edit"):
                name, sep, value = " ".join(rest).partition("=")
                if not sep or not name.strip():
                    print("usage: edit VAR=VALUE", file=out)
                    continue
                try:
                    ast.literal_eval(value.strip())
                except (ValueError, SyntaxError):
                    print(f"error: {value.strip()!r} is not a Python literal", file=out)
                    continue
                if runs_code(sim.engine.backend):  # the replay would go on with the real run's later values
                    print(f"error: editing a variable is not supported on the {sim.engine.backend} backend: a real run "
                          "cannot be resumed from an edited state (use --call for another input, or a model backend)",
                          file=out)
                    continue
                dbg.returned = False
                sim.edit(len(sim.frames) - 1, name.strip(), repr(ast.literal_eval(value.strip())))
                print(f"  {name.strip()} = {sim.current.locals[name.strip()] if sim.current else '?'} (re-simulating from here)", file=out)
                continue
            elif cmd in ("r", "resample"):
                if not sim.engine.predicted:
                    print("error: resampling needs a model backend (a real run has one outcome)", file=out)
                    continue
                seed += 1
                dbg.returned = False
                sim.resample(seed)
            else:
                print(f"unknown command {cmd!r} (h for help)", file=out)
                continue
        except SimulationError as exc:
            print(f"error: {exc}", file=out)
            continue
        except ValueError as exc:
            print(f"error: {exc}", file=out)
            continue
        _show(sim, out, dbg.returned)
