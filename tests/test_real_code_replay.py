"""Real code through the model path: a real run of a decorated function
(its wrapper runs first, in another function), of nested functions and of
lambdas passed as callbacks replays to exactly the real trace, and a model
backend that is given the real run starts from the same entry frame."""

from __future__ import annotations

import pytest

from neuraldbg.backends.replay import ReplayBackend
from neuraldbg.config import Settings
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import Target
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.trace.cwm_parse import RawFrame
from neuraldbg.trace.linemap import KnownCall, LineMapper
from neuraldbg.trace.tokenizer import TextTokenizer
from neuraldbg.tracer import run_trace
from test_simulation_replay import replay_sim

DECO = '''\
import functools

def deco(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        r = fn(*args, **kwargs)
        return r
    return wrapper

'''

TARGET = '''\
def target(x):
    y = x + 1
    return y
'''

WRAPS = DECO + "@deco\n" + TARGET

NO_WRAPS = '''\
def deco(fn):
    def wrapper(*args):
        return fn(*args) * 2
    return wrapper

@deco
def target(x):
    y = x + 1
    return y
'''

CLASS_BASED = '''\
class Counted:
    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)

@Counted
def target(x):
    y = x + 1
    return y
'''

STACKED = DECO + '''\
def twice(fn):
    def again(x):
        return fn(fn(x))
    return again

@deco
@twice
''' + TARGET

FACTORY = '''\
def repeat(n):
    def decorate(fn):
        def wrapper(x):
            for _ in range(n):
                x = fn(x)
            return x
        return wrapper
    return decorate

@repeat(2)
def target(x):
    return x * 3
'''

METHOD = '''\
import functools

def logged(fn):
    @functools.wraps(fn)
    def wrapper(self, *args):
        return fn(self, *args)
    return wrapper

class Box:
    def __init__(self, v):
        self.v = v

    @logged
    def add(self, d):
        self.v += d
        return self.v
'''

LAMBDA_DECORATOR = '''\
def trace(fn):
    return lambda *a: fn(*a)

@trace
def target(x):
    return x - 1
'''

# Two decorators whose wrappers have the same text: the caller's `fn`
# names the wrapper it calls (no functools.wraps to hide it).
TWIN_WRAPPERS = '''\
def first(fn):
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper

def second(fn):
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper

@second
@first
def target(x):
    return x + 1
'''

# A closure with the same text in a function that never runs.
TWIN_CLOSURES = '''\
def run(f, xs):
    return [f(x) for x in xs]

def other(xs):
    def step(v):
        return v + 1
    return run(step, xs)

def target(xs):
    def step(v):
        return v + 1
    return run(step, xs)
'''

# A lambda callback with the same text in a function that never runs,
# called from another function (not from the line that made it).
TWIN_LAMBDAS = '''\
def run(f, xs):
    out = []
    for x in xs:
        out.append(f(x))
    return out

def other(xs):
    return run(lambda v: v * 2, xs)

def target(xs):
    return run(lambda v: v * 2, xs)
'''

# A lambda on the def line (a default): its calls are the lambda's, not the function's.
DEFAULT_LAMBDA = '''\
def target(xs, key=lambda v: -v):
    return sorted(xs, key=key)
'''

CASES = {
    "functools.wraps": (WRAPS, "target", "target(3)"),
    "no wraps": (NO_WRAPS, "target", "target(3)"),
    "class-based": (CLASS_BASED, "target", "target(3)"),
    "stacked": (STACKED, "target", "target(3)"),
    "decorator factory": (FACTORY, "target", "target(1)"),
    "decorated method": (METHOD, "Box.add", "Box(1).add(2)"),
    "lambda decorator": (LAMBDA_DECORATOR, "target", "target(5)"),
    "twin wrappers": (TWIN_WRAPPERS, "target", "target(3)"),
    "twin closures": (TWIN_CLOSURES, "target", "target([1, 2])"),
    "twin lambda callbacks": (TWIN_LAMBDAS, "target", "target([1, 2])"),
    "default lambda": (DEFAULT_LAMBDA, "target", "target([1, 3, 2])"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_replay_returns_the_real_trace_exactly(name: str) -> None:
    source, qualname, call = CASES[name]
    sim, truth = replay_sim(source, qualname, call)
    got = sim.run_to_end()
    assert truth.status == "complete" and got.status == "complete", got.error
    assert cwm_view(got.frames) == cwm_view(truth.frames)
    assert [f.problem for f in got.frames if f.problem] == []


def test_the_entry_frame_is_the_wrappers_call() -> None:
    sim, truth = replay_sim(WRAPS, "target", "target(3)")
    first = sim.start()
    assert (first.event, first.line, first.function, first.source) == ("call", 5, "deco.wrapper", "    def wrapper(*args, **kwargs):")
    assert first.locals == truth.frames[0].locals


def test_stepping_back_to_the_entry_and_on_keeps_the_real_trace() -> None:
    sim, truth = replay_sim(TWIN_WRAPPERS, "target", "target(3)")
    sim.run_to_end()
    sim.reverse_continue()
    assert (sim.current.line, sim.current.function) == (7, "second.wrapper")
    got = sim.run_to_end()
    assert cwm_view(got.frames) == cwm_view(truth.frames)


def test_a_model_backend_given_the_real_run_starts_from_its_entry() -> None:
    """The local backend (here the replay adopted as the loaded model) gets
    the real run's entry frame forced, the wrapper's call, not the def line."""
    truth = run_trace(CLASS_BASED, "target(3)", function="target")
    index = index_text(CLASS_BASED)
    fn = index.function("target")
    assert fn is not None
    settings = Settings(backend="local", profile="replayed", allow_execution=True)
    session = Session(settings)
    tok = TextTokenizer()
    session.engines.adopt(settings, ReplayBackend.for_trace(truth, tok, source=CLASS_BASED, functions=index.functions), tok)
    run = session.open_run(Target("<test>", CLASS_BASED, index, fn, "target(3)", "explicit"), truth=truth)
    got = run.simulation.run_to_end()
    assert (got.frames[0].line, got.frames[0].function) == (6, "Counted.__call__")
    assert cwm_view(got.frames) == cwm_view(truth.frames)


def test_a_known_call_on_a_shared_header_still_follows_the_body() -> None:
    """A frame forced at its known position (a cached trace teacher-forced
    again) keeps the other functions with its header text possible: the
    body's lines decide, as for a call mapped by its text."""
    source = "class A:\n    def run(self, v):\n        return v + 1\n\nclass B:\n    def run(self, v):\n        return v * 2\n"
    mapper = LineMapper(source, index_text(source).functions)
    call = RawFrame(event="call", locals_raw={"self": "<B>", "v": "2"}, source_line="    def run(self, v):\n")
    assert mapper.push(call, KnownCall(2, "A.run")).function == "A.run"
    line = mapper.push(RawFrame(event="line", locals_raw={"self": "<B>", "v": "2"}, source_line="        return v * 2\n"))
    assert (line.line, line.function, line.problem) == (7, "B.run", None)
