"""The profile's [sampling] table reaches the model: a recording backend
around the real local backend (tiny random CWM) sees every request's
sampling, as the engine factory builds it for the editor, DAP and CLI."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neuraldbg.simulation.model_engine import step_seed
from neuraldbg.backends.base import CancelToken, Sampling, TokenBackend
from neuraldbg.config import Settings
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import Target
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.simulation.model_engine import FRAME_TOKEN_CAP
from neuraldbg.backends.profiles import SamplingDefaults
from neuraldbg.simulation.sampling import chat_sampling, sampling_plan
from neuraldbg.session.session import Session
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text

SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
PROFILE = """name = "tiny"
checkpoint = "{checkpoint}"
context_tokens = 1024
"""


@dataclass
class Request:
    prompt: list[int]
    sampling: Sampling
    produced: list[int] = field(default_factory=list)


class Recording:
    """A TokenBackend that passes every request to a real one and records it."""

    def __init__(self, inner: TokenBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.stats = inner.stats
        self.requests: list[Request] = []

    def generate(self, prompt: Sequence[int], *, stop_ids: Sequence[int], sampling: Sampling,
                 cancel: CancelToken | None = None) -> Iterator[int]:
        request = Request(list(prompt), sampling)
        self.requests.append(request)
        for token in self.inner.generate(prompt, stop_ids=stop_ids, sampling=sampling, cancel=cancel):
            request.produced.append(token)
            yield token

    def close(self) -> None:
        self.inner.close()


class RecordingFactory(EngineFactory):
    """The real factory (profile lookup, LocalBackend.load), its backend recorded."""

    def _load(self, settings: Settings) -> tuple[TokenBackend, object]:
        backend, tok = super()._load(settings)
        return Recording(backend), tok


@pytest.fixture
def profiles(tiny_cwm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile folder; each test writes the tiny CWM's profile with its own [sampling]."""
    monkeypatch.setenv("NEURALDBG_MODELS_DIR", str(tmp_path))
    return tmp_path


def write_profile(folder: Path, tiny_cwm_dir: Path, sampling: str) -> str:
    (folder / "tiny.toml").write_text(PROFILE.format(checkpoint=tiny_cwm_dir) + sampling)
    return "tiny"


@pytest.fixture
def factory() -> Iterator[RecordingFactory]:
    f = RecordingFactory()
    yield f
    f.close()


def simulate(factory: RecordingFactory, settings: Settings, call: str) -> tuple[Simulation, Recording]:
    index = index_text(SOURCE)
    fn = index.function("f")
    assert fn is not None
    session = Session(settings, engines=factory)
    run = session.open_run(Target("/work/f.py", SOURCE, index, fn, call, "explicit" if call else "imagined"))
    recording, _tok = factory.backend(settings)
    assert isinstance(recording, Recording)
    return run.simulation, recording


def test_the_profile_temperature_top_p_and_max_tokens_reach_generate(profiles, tiny_cwm_dir, factory) -> None:
    name = write_profile(profiles, tiny_cwm_dir, "[sampling]\ntemperature = 0.37\ntop_p = 0.8\nmax_tokens = 12\n")
    sim, recording = simulate(factory, Settings(backend="local", profile=name, seed=5), "f([1, 2])")
    sim.start()  # the given call is forced: no request
    sim.step_in()
    assert len(recording.requests) == 1
    request = recording.requests[0]
    assert request.sampling == Sampling(temperature=0.37, top_p=0.8, max_tokens=12, seed=step_seed(5, 1))
    assert len(request.produced) <= 12  # the random model rarely ends a frame: the profile's budget stops it
    # the model-server front end of the same profile gets the same (remote profiles too)
    assert sampling_plan(Settings(profile=name), default_max_tokens=FRAME_TOKEN_CAP).frames.max_tokens == 12


def test_imagined_inputs_use_the_input_temperature_and_steps_the_frame_one(profiles, tiny_cwm_dir, factory) -> None:
    name = write_profile(profiles, tiny_cwm_dir, "[sampling]\ntemperature = 0.3\ninput_temperature = 0.9\nmax_tokens = 8\n")
    sim, recording = simulate(factory, Settings(backend="local", profile=name), "")
    sim.start()
    assert [r.sampling.temperature for r in recording.requests] == [0.9]
    # a step of the same engine (a line frame forced at step 0: the random model writes no valid call frame)
    sim.engine.next([], "line", None)
    assert [r.sampling.temperature for r in recording.requests] == [0.9, 0.3]


def test_without_a_sampling_table_the_release_defaults_apply(profiles, tiny_cwm_dir) -> None:
    name = write_profile(profiles, tiny_cwm_dir, "")
    plan = sampling_plan(Settings(backend="local", profile=name, seed=3), default_max_tokens=FRAME_TOKEN_CAP)
    assert plan.frames == Sampling(temperature=0.2, top_p=0.95, max_tokens=FRAME_TOKEN_CAP, seed=3)
    assert plan.inputs == Sampling(temperature=0.6, top_p=0.95, max_tokens=FRAME_TOKEN_CAP, seed=3)
    # a checkpoint folder (no profile file), or no profile at all: the same defaults
    for profile in (str(tiny_cwm_dir), ""):
        assert sampling_plan(Settings(profile=profile, seed=3), default_max_tokens=FRAME_TOKEN_CAP) == plan
    assert SamplingDefaults().max_tokens is None


def test_a_user_temperature_wins_over_the_profile(profiles, tiny_cwm_dir, factory) -> None:
    name = write_profile(profiles, tiny_cwm_dir, "[sampling]\ntemperature = 0.5\nmax_tokens = 6\n")
    settings, problems = Settings(backend="local", profile=name).merged({"temperature": 0})
    assert not problems and settings.temperature == 0.0
    sim, recording = simulate(factory, settings, "")
    sim.start()
    sim.engine.next([], "line", None)
    assert [r.sampling.temperature for r in recording.requests] == [0.0, 0.0]
    assert chat_sampling(settings, max_tokens=64) == Sampling(temperature=0.0, max_tokens=64, seed=0)


def test_two_resamples_give_different_imagined_inputs(profiles, tiny_cwm_dir, factory) -> None:
    """Through the language server's path: Session.resample bumps the seed the
    engine is built with, and the imagined call frame is sampled again."""
    name = write_profile(profiles, tiny_cwm_dir, "[sampling]\nmax_tokens = 16\n")
    session = Session(Settings(backend="local", profile=name), engines=factory)
    uri = "file:///work/f.py"
    call_frames = []
    for _ in range(2):
        sim, recording = simulate(factory, session.settings_for(uri, "f"), "")
        sim.start()
        call_frames.append(recording.requests[-1])
        session.resample(uri, "f")
    first, second = call_frames
    assert first.prompt == second.prompt
    assert (first.sampling.temperature, second.sampling.temperature) == (0.6, 0.6)
    assert first.sampling.seed != second.sampling.seed
    assert first.produced != second.produced
    # the debug adapter and the CLI debugger reseed the engine in place: that resamples too
    sim.resample(41)
    assert recording.requests[-1].sampling.seed == step_seed(41, 0) and recording.requests[-1].prompt == first.prompt
    assert recording.requests[-1].produced not in (first.produced, second.produced)


def test_resampled_runs_share_no_step_seed() -> None:
    seeds = [step_seed(seed, step) for seed in range(20) for step in range(500)]
    assert len(set(seeds)) == len(seeds)
    assert step_seed(3, 4) == step_seed(3, 4)  # a step regenerated after a step back gets its seed again
