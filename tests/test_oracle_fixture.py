"""The oracle-forced CWM: a real CwmForCausalLM in the real local decode loop
whose logits are masked to the real run's next token. Every frame here is
written by the model's generation loop; these tests check that what it writes
is the real run, under every stepping command the simulation issues."""

from __future__ import annotations

import pytest

from model_support import model_sim
from neuraldbg.backends.base import Sampling
from neuraldbg.backends.oracle import OracleLogitsProcessor, TraceOracle, call_from_locals
from neuraldbg.source.call_binding import function_params
from neuraldbg.simulation.exec_engine import ExecEngine
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.tracer import run_trace
from test_simulation_replay import NESTED

DOCTESTS = '''\
def scale(xs, k):
    """
    >>> scale([1, 2], 3)
    [3, 6]
    >>> scale([5], 10)
    [50]
    >>> scale([], 2)
    []
    """
    out = []
    for x in xs:
        out.append(x * k)
    return out
'''


def _moves(sim: Simulation, moves: str) -> list[tuple[str, int, str, dict[str, str]]]:
    sim.start()
    out = []
    for m in moves:
        {"i": sim.step_in, "o": sim.step_over, "u": sim.step_out, "b": sim.step_back}[m]()
        f = sim.current
        # CWM's return frames carry no locals (the format has none there).
        out.append((f.event, f.line, f.function, {} if f.event == "return" else dict(f.locals)))
    return out


def test_a_whole_run_is_written_by_the_model_and_equals_the_real_run(oracle_cwm) -> None:
    backend, oracle = oracle_cwm
    before_gen, before_forced = backend.stats.generated_tokens, oracle.stats.forced
    got = model_sim(backend, NESTED, "outer", "outer([1, 2])").run_to_end()
    truth = run_trace(NESTED, "outer([1, 2])", function="outer")
    assert got.status == "complete", got.error
    assert cwm_view(got.frames) == cwm_view(truth.frames)
    assert got.return_value == "8"
    generated = backend.stats.generated_tokens - before_gen
    # Every frame but the teacher-forced call frame came out of the decode loop, token by token.
    assert generated > 20 * (len(truth.frames) - 1)
    assert oracle.stats.forced - before_forced == generated


@pytest.mark.parametrize("moves", ["iiiiiiii", "ooooooo", "iiiiiuoo", "iiibbiioo", "ooobbbooo", "iiiiiiuuo"])
def test_stepping_on_the_model_lands_where_the_real_run_does(oracle_cwm, moves: str) -> None:
    backend, _ = oracle_cwm
    truth = run_trace(NESTED, "outer([1, 2])", function="outer")
    exec_sim = Simulation(ExecEngine(truth), function="outer", call="outer([1, 2])")
    assert _moves(model_sim(backend, NESTED, "outer", "outer([1, 2])"), moves) == _moves(exec_sim, moves)


def test_step_over_is_the_callee_return_frame_written_directly(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    sim = model_sim(backend, NESTED, "outer", "outer([1, 2])")
    sim.start()
    seen = []
    while not sim.done:
        sim.step_over()
        seen.append((sim.current.event, sim.current.function))
    assert ("line", "helper") not in seen
    # The model wrote each callee's return frame right after its call frame (the forced <|return_sep|>).
    assert [f.event for f in sim.frames if f.function == "helper"] == ["call", "return"] * 2
    assert sim.trace().return_value == "8"


def test_run_to_line_and_reverse_continue(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    sim = model_sim(backend, NESTED, "outer", "outer([1, 2])")
    sim.start()
    f = sim.run_to_line(3)  # helper's return line, first visit
    assert (f.line, f.function, f.locals["w"]) == (3, "helper", "2")
    f = sim.run_to_line(3)
    assert f.locals["w"] == "4"
    back = sim.reverse_continue(lambda _i, fr: fr.line == 3 and fr.event == "line")
    assert back.locals["w"] == "2"


def test_an_edit_of_the_arguments_is_a_new_real_run(oracle_cwm) -> None:
    backend, oracle = oracle_cwm
    sim = model_sim(backend, NESTED, "outer", "outer([1, 2])")
    sim.start()
    sim.edit(0, "xs", "[10]")
    got = sim.run_to_end()
    assert got.status == "complete"
    assert got.return_value == "21"  # helper(10) for real
    assert cwm_view(got.frames) == cwm_view(run_trace(NESTED, "outer([10])", function="outer").frames)


def test_an_edit_mid_trace_continues_as_a_well_formed_trace(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    sim = model_sim(backend, NESTED, "outer", "outer([1, 2])")
    sim.start()
    sim.step_in()
    sim.step_in()  # at the loop header, total = 0
    sim.edit(len(sim.frames) - 1, "total", "100")
    got = sim.run_to_end()
    assert got.status == "complete"
    assert not [f for f in got.frames if getattr(f, "problem", None)]
    # The continuation is the real run's from that position (documented): the return value is the real one.
    assert got.return_value == "8"


def test_imagined_inputs_come_from_the_source_and_differ_when_sampled(oracle_cwm) -> None:
    backend, oracle = oracle_cwm
    greedy = {model_sim(backend, DOCTESTS, "scale", "").start().locals["xs"] for _ in range(2)}
    assert len(greedy) == 1  # temperature 0: one input, always the same
    before = oracle.stats.choices
    inputs = set()
    for seed in range(8):
        sim = model_sim(backend, DOCTESTS, "scale", "", sampling=Sampling(temperature=0.6, seed=seed))
        call = sim.start()
        inputs.add((call.locals["xs"], call.locals["k"]))
        assert sim.run_to_end().status == "complete"
    assert oracle.stats.choices > before
    assert inputs <= {("[1, 2]", "3"), ("[5]", "10"), ("[]", "2")}
    assert len(inputs) >= 2


def test_a_model_that_leaves_the_real_run_is_flagged_and_bounded(oracle_cwm) -> None:
    """Mid-frame, a processor stops forcing: the random model's own logits take
    over, and the engine reports it (no crash, no endless request)."""
    backend, oracle = oracle_cwm

    class LeaveAfter:
        def __init__(self, n: int) -> None:
            self.n = n
            self.inner = OracleLogitsProcessor(oracle)

        def __call__(self, ids, scores):
            self.n -= 1
            return self.inner(ids, scores) if self.n > 0 else scores

    saved = backend.logits_processor
    backend.logits_processor = LeaveAfter(40)
    try:
        sim = model_sim(backend, NESTED, "outer", "outer([1, 2])")
        sim.start()
        sim.engine.sampling = Sampling(max_tokens=64)
        for _ in range(4):
            if sim.step_in() is None:
                break
        trace = sim.trace()
    finally:
        backend.logits_processor = saved
    assert trace.status in ("truncated", "error"), trace.status
    assert trace.error


def test_call_from_locals_round_trips_the_binding() -> None:
    src = "class Box:\n    def put(self, a, *rest, key=None, **extra):\n        return a\n"
    fn = index_text(src).function("Box.put")
    params = function_params("    def put(self, a, *rest, key=None, **extra):\n        return a\n")
    call = call_from_locals(fn, params, {"self": "Box()", "a": "1", "rest": "(2, 3)", "key": "'k'", "extra": "{'z': 0}"})
    assert call == "Box().put(1, *(2, 3), key='k', **{'z': 0})"


def test_the_oracle_has_no_answer_outside_a_trace_prompt(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    oracle = TraceOracle(backend.tokenizer)
    assert oracle.allowed([1, 2, 3]) is None
    assert oracle.stats.runs == 0


def test_a_marker_lookalike_in_a_string_does_not_hide_the_entry(oracle_cwm) -> None:
    backend, _ = oracle_cwm
    src = 'def f(n):\n    s = """\n  # << START_OF_TRACE\n"""\n    return n + len(s)\n'
    got = model_sim(backend, src, "f", "f(1)").run_to_end()
    assert got.status == "complete", got.error
    assert got.return_value == "24"
