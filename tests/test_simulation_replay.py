"""The model path with a known answer: a real run's trace, replayed as token
ids through the simulation (prompt building, streaming parser, line mapper,
stepping), must come back as exactly the ground truth."""

from __future__ import annotations

import pytest

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.replay import ReplayBackend
from neuraldbg.backends.hf_tokenizer import HFTokenizerAdapter
from neuraldbg.config import Settings
from neuraldbg.session.session import Session
from neuraldbg.simulation.exec_engine import ExecEngine
from neuraldbg.simulation.model_engine import ModelEngine
from neuraldbg.simulation.simulation import Simulation, SimulationError
from neuraldbg.simulation.target import Target
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.trace.tokenizer import TextTokenizer
from neuraldbg.tracer import Limits, run_trace


def replay_sim(source: str, qualname: str, call: str) -> tuple[Simulation, object]:
    """The replay backend's run as every front end gets it (Session.open_run)."""
    truth = run_trace(source, call, function=qualname)
    index = index_text(source)
    fn = index.function(qualname)
    assert fn is not None
    session = Session(Settings(backend="replay", allow_execution=True))
    run = session.open_run(Target("<test>", source, index, fn, call, "explicit"), truth=truth)
    return run.simulation, truth


@pytest.mark.slow
def test_every_cruxeval_sample_replays_to_its_ground_truth(cruxeval_samples, cruxeval_traces, tiny_tokenizer) -> None:
    tok = HFTokenizerAdapter(tiny_tokenizer)
    mismatches: list[str] = []
    frames = 0
    for sample, truth in zip(cruxeval_samples, cruxeval_traces):
        assert truth.status == "complete", (sample["id"], truth.error)
        index = index_text(sample["code"])
        fn = index.function("f")
        backend = ReplayBackend.for_trace(truth, tok, source=sample["code"], functions=index.functions)
        engine = ModelEngine(backend, tok, source=sample["code"], function=fn, functions=index.functions,
                             call=truth.call, sampling=Sampling(), backend_kind="replay",
                             call_locals=dict(truth.frames[0].locals))
        got = Simulation(engine, function="f", call=truth.call).run_to_end()
        frames += len(got.frames)
        if got.status != "complete" or cwm_view(got.frames) != cwm_view(truth.frames):
            mismatches.append(f"{sample['id']}: {got.status} {got.error}")
    print(f"replayed {len(cruxeval_samples)} samples, {frames} frames, {len(mismatches)} mismatches")
    assert len(cruxeval_samples) == 800
    assert not mismatches, mismatches[:10]


NESTED = '''\
def helper(v):
    w = v * 2
    return w + 1


def outer(xs):
    total = 0
    for x in xs:
        total += helper(x)
    return total
'''


def _motion(sim: Simulation, moves: str) -> list[tuple[str, int, str]]:
    sim.start()
    out = []
    for m in moves:
        {"i": sim.step_in, "o": sim.step_over, "u": sim.step_out, "b": sim.step_back}[m]()
        f = sim.current
        out.append((f.event, f.line, f.function))
    return out


@pytest.mark.parametrize("moves", ["iiiiiiii", "ooooooo", "iiiiiuoo", "iiibbiioo", "ooobbbooo"])
def test_replay_steps_like_the_ground_truth(moves: str) -> None:
    """Step in/over/out/back on the replay (model path, forced events) and on
    the exec engine (direct navigation) land on the same frames."""
    sim, truth = replay_sim(NESTED, "outer", "outer([1, 2])")
    exec_sim = Simulation(ExecEngine(truth), function="outer", call="outer([1, 2])")
    assert _motion(sim, moves) == _motion(exec_sim, moves)


def test_step_over_predicts_the_callee_result_directly() -> None:
    sim, truth = replay_sim(NESTED, "outer", "outer([1, 2])")
    sim.start()
    seen = []
    while not sim.done:
        sim.step_over()
        seen.append((sim.current.event, sim.current.function))
    assert ("line", "helper") not in seen  # the callee's lines were never produced
    assert sim.trace().return_value == truth.return_value == "8"


def test_step_out_returns_to_the_caller() -> None:
    sim, _ = replay_sim(NESTED, "outer", "outer([1, 2])")
    sim.start()
    while sim.current.function != "helper":
        sim.step_in()
    sim.step_in()
    sim.step_out()
    assert sim.current.function == "outer" and sim.current.event == "line"
    assert sim.current.line == 8  # back at the loop header after total += helper(x)


def test_step_back_reuses_predicted_frames() -> None:
    sim, _ = replay_sim(NESTED, "outer", "outer([1, 2])")
    sim.start()
    for _ in range(5):
        sim.step_in()
    requests = sim.engine.backend_impl.stats.requests
    ahead = sim.current
    sim.step_back()
    sim.step_back()
    sim.step_in()
    sim.step_in()
    assert sim.current == ahead
    assert sim.engine.backend_impl.stats.requests == requests  # served from the simulation's memory


def test_edit_truncates_and_resimulates_from_the_edit() -> None:
    sim, truth = replay_sim(NESTED, "outer", "outer([1, 2])")
    sim.start()
    sim.step_in()
    sim.step_in()  # at "for x in xs:" with total = 0
    step = len(sim.frames) - 1
    edited = sim.edit(step, "total", "100")
    assert edited.locals["total"] == "100"
    assert len(sim.frames) == step + 1
    sim.step_in()
    # The prompt now carries the edited frame; the replay continues the truth from there.
    prompt = sim.engine.prompt()
    assert b'"total": "100"' in bytes(i for i in prompt if i < 256)
    assert sim.current.line == 9


def test_exec_engine_refuses_edits_clearly() -> None:
    truth = run_trace(NESTED, "outer([1])", function="outer")
    sim = Simulation(ExecEngine(truth), function="outer", call="outer([1])")
    sim.start()
    sim.step_in()
    with pytest.raises(SimulationError, match="not supported on the exec backend"):
        sim.edit(1, "total", "5")


def test_run_to_line_and_reverse_continue() -> None:
    sim, truth = replay_sim(NESTED, "outer", "outer([1, 2, 3])")
    sim.start()
    hits = []
    while not sim.done:
        sim.run_to_line(9)
        if sim.current.line == 9 and sim.current.event == "line":
            hits.append(sim.trace().locals_at(len(sim.frames) - 1)["x"])
    assert hits == ["1", "2", "3"]
    sim.reverse_continue(lambda _i, f: f.line == 9 and f.function == "outer")
    assert sim.current.line == 9


def test_frame_cap_marks_stopped_early() -> None:
    src = "def spin(n):\n    while n > 0:\n        n += 1\n    return n\n"
    truth = run_trace(src, "spin(1)", function="spin", limits=Limits(max_frames=500))
    assert (truth.status, truth.stop) == ("truncated", "frame-budget")
    sim = Simulation(ExecEngine(truth), function="spin", call="spin(1)", max_frames=50)
    trace = sim.run_to_end()
    assert (trace.status, trace.stop) == ("truncated", "frame-budget") and not trace.may_not_halt
    assert trace.error == "stopped after 50 frames, the frame budget, with the program still running"
    assert len(trace.frames) == 50
