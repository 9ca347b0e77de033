"""The remote path with a known answer: a real run's trace, replayed as ids
by a ReplayBackend behind ``neuraldbg model-server``, driven through
RemoteBackend (ids streamed, tokenizer asked from the server) by the
simulation, must come back as exactly the ground truth."""

from __future__ import annotations

import pytest

from neuraldbg.backends.base import Sampling
from neuraldbg.backends.remote import RemoteBackend, ServerTokenizer
from neuraldbg.backends.replay import ReplayBackend
from neuraldbg.simulation.model_engine import ModelEngine
from neuraldbg.hosting.modelserver import start_model_server
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.source.index import index_text
from neuraldbg.trace.cwm_decode import cwm_view
from neuraldbg.trace.tokenizer import TextTokenizer
from neuraldbg.tracer import run_trace

NESTED = '''\
def helper(v):
    w = v * 2
    return w + 1


def outer(xs):
    """Sums helper(x); the text '<|frame_sep|>' in here stays text."""
    total = 0
    for x in xs:
        total += helper(x)
    return total
'''


def _simulate(backend, tok, moves: str, call: str):
    index = index_text(NESTED)
    engine = ModelEngine(backend, tok, source=NESTED, function=index.function("outer"), functions=index.functions,
                         call=call, sampling=Sampling(), backend_kind="remote")
    sim = Simulation(engine, function="outer", call=call)
    if moves:
        sim.start()
        for m in moves:
            {"i": sim.step_in, "o": sim.step_over, "u": sim.step_out, "b": sim.step_back}[m]()
    return sim.run_to_end()


@pytest.mark.parametrize("moves", ["", "iiiiiuoo", "iiibbiioo"])
def test_replay_through_the_model_server_matches_the_direct_replay(moves: str) -> None:
    """With no moves the result is the ground truth itself; with moves
    (forced events, steps back) it is what the same replay gives without
    the server in between."""
    tok = TextTokenizer()
    call = "outer([3, 4])"
    truth = run_trace(NESTED, call, function="outer")
    assert truth.status == "complete"
    index = index_text(NESTED)

    def replay() -> ReplayBackend:
        return ReplayBackend.for_trace(truth, tok, source=NESTED, functions=index.functions)

    direct = _simulate(replay(), tok, moves, call)
    with start_model_server(replay(), tokenizer=tok, api_key="k") as srv:
        remote = RemoteBackend(srv.url, api_key="k")
        assert isinstance(remote.tokenizer, ServerTokenizer)  # the codec's tokenizer, asked from the server
        got = _simulate(remote, remote.tokenizer, moves, call)
        remote.close()
    assert got.status == "complete", got.error
    assert cwm_view(got.frames) == cwm_view(direct.frames)
    if not moves:
        assert cwm_view(got.frames) == cwm_view(truth.frames)
    assert remote.id_source == "token_ids" and remote.flavor == "neuraldbg"
    assert remote.stats.requests >= 1 and remote.stats.generated_tokens > 0


STOP_NAMES = '''\
def tag(s):
    t = s + "<|frame_sep|>"
    u = t + "<|end_of_text|>"
    return u
'''

SEPARATOR_NAME = '''\
def mark(s):
    t = s + "<|action_sep|>"
    return t
'''


def _text_only_run(source: str, function: str, call: str):
    tok = TextTokenizer()
    truth = run_trace(source, call, function=function)
    assert truth.status == "complete"
    index = index_text(source)
    replay = ReplayBackend.for_trace(truth, tok, source=source, functions=index.functions)
    with start_model_server(replay, tokenizer=tok, text_only=True) as srv:
        remote = RemoteBackend(srv.url)
        engine = ModelEngine(remote, remote.tokenizer, source=source, function=index.function(function),
                             functions=index.functions, call=call, sampling=Sampling(), backend_kind="remote")
        got = Simulation(engine, function=function, call=call).run_to_end()
        remote.close()
    assert remote.id_source == "text"  # the server sent no ids: the text was converted back
    return truth, got


def test_text_only_server_user_strings_that_spell_stop_tokens_stay_text() -> None:
    """A value or a source line that spells a stop token's name: the server
    stops on the real token, so the name anywhere before the end is text."""
    truth, got = _text_only_run(STOP_NAMES, "tag", "tag('<|eot_id|>')")
    assert got.status == "complete", got.error
    assert not any(f.problem for f in got.frames)
    assert cwm_view(got.frames) == cwm_view(truth.frames)


def test_text_only_server_an_ambiguous_separator_flags_the_frames_instead_of_guessing() -> None:
    """The source spells <|action_sep|>: in text, the model's real separator
    and the user's string look the same; neither becomes the special id, and
    the frames that needed it come out flagged."""
    truth, got = _text_only_run(SEPARATOR_NAME, "mark", "mark('a')")
    assert got.frames
    produced = got.frames[1:]  # the call frame is written by us (teacher forcing), the rest by the model
    assert produced and all(f.problem for f in produced)
    assert cwm_view(got.frames[:1]) == cwm_view(truth.frames[:1])
