"""Remote model profiles are live: ``remote_backend`` builds a RemoteBackend
whose requests to a real HTTP server carry the profile's served model name,
stop ids and API key (from its environment variable), bounded by its
context; an explicit URL and API key win over the profile's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_remote_client import Handler, models_card, raw, vllm_chunk  # noqa: F401 (raw: the server fixture)

from neuraldbg.backends.base import BackendError, Sampling
from neuraldbg.backends.profiles import MODELS_DIR_ENV, load_profile
from neuraldbg.backends.remote import RemoteBackend, remote_backend
from neuraldbg.trace import cwm_tokens as ct

GREEDY = Sampling(temperature=0.0, max_tokens=50)
FAST = {"backoff": 0.01, "timeout": 5.0}
SHIPPED = Path(__file__).resolve().parent.parent / "models"  # vllm-remote.toml, sglang-remote.toml


@pytest.fixture(autouse=True)
def shipped_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's profiles (tests/test_profiles.py checks that they are
    the default folder), and no API key in the environment."""
    monkeypatch.setenv(MODELS_DIR_ENV, str(SHIPPED))
    monkeypatch.delenv("NEURALDBG_API_KEY", raising=False)


def vllm_script(ids: list[int], finish: str = "stop") -> Any:
    """A vLLM server whose model card names another model than the profile's."""

    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if path == "/v1/models":
            h.json(200, {"object": "list", "data": [
                {"id": "not-the-profile-model", "object": "model", "owned_by": "vllm", "max_model_len": 4096}]})
            return
        h.start()
        h.event(vllm_chunk(ids, finish=finish))
        h.event("[DONE]")

    return script


def remote_profile(folder: Path, **values: Any) -> Path:
    lines = [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in {"kind": "remote", **values}.items()]
    path = folder / "lab.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_vllm_profile_sends_its_model_stop_ids_and_key(raw, monkeypatch) -> None:
    monkeypatch.setenv("NEURALDBG_API_KEY", "from-the-env")
    # EOM (a profile stop id, not the request's) ends the answer even though the server sent more.
    srv = raw(vllm_script([5, ct.EOM_ID, 7], finish="length"))
    b = remote_backend("vllm-remote", url=srv.url, **FAST)  # the explicit url wins over localhost:8000
    ids = list(b.generate([1, 2], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
    assert ids == [5, ct.EOM_ID]
    method, path, headers, body = srv.requests[-1]
    assert (method, path) == ("POST", "/v1/completions")
    assert headers["Authorization"] == "Bearer from-the-env"
    assert body["model"] == "facebook/cwm"
    assert body["stop_token_ids"] == [ct.FRAME_SEP, 128001, 128008, 128009]
    assert b.max_model_len == 131072  # the profile's context, not the card's 4096
    b.close()


def test_an_explicit_api_key_wins_over_the_profile_env(raw, monkeypatch) -> None:
    monkeypatch.setenv("NEURALDBG_API_KEY", "from-the-env")
    srv = raw(vllm_script([5], finish="stop"))
    b = remote_backend("vllm-remote", url=srv.url, api_key="explicit", **FAST)
    list(b.generate([1], stop_ids=[], sampling=GREEDY))
    assert srv.requests[-1][2]["Authorization"] == "Bearer explicit"
    b.close()


def test_an_unset_key_variable_sends_no_key(raw) -> None:
    srv = raw(vllm_script([5], finish="stop"))
    b = remote_backend("vllm-remote", url=srv.url, **FAST)
    list(b.generate([1], stop_ids=[], sampling=GREEDY))
    assert "Authorization" not in srv.requests[-1][2]
    b.close()


def test_the_sglang_profile_sends_its_stop_ids_to_generate(raw) -> None:
    def script(h: Handler, path: str, body: Any, n: int) -> None:
        if path == "/v1/models":
            h.json(200, models_card("sglang"))
            return
        h.start()
        h.event({"text": "a", "output_ids": [7, ct.EOT], "meta_info": {
            "completion_tokens": 2, "finish_reason": {"type": "stop", "matched": ct.EOT}}})
        h.event("[DONE]")

    srv = raw(script)
    b = remote_backend("sglang-remote", url=srv.url, **FAST)
    assert list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY)) == [7, ct.EOT]
    method, path, _headers, body = srv.requests[-1]
    assert (method, path) == ("POST", "/generate") and b.flavor == "sglang"
    assert body["sampling_params"]["stop_token_ids"] == [ct.FRAME_SEP, 128001, 128008, 128009]
    b.close()


def test_a_profile_url_key_variable_model_stops_and_context_are_used(raw, tmp_path, monkeypatch) -> None:
    srv = raw(vllm_script([9, 5, 7], finish="length"))
    monkeypatch.setenv("LAB_KEY", "lab-key")
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    remote_profile(tmp_path, url=srv.url, api_key_env="LAB_KEY", model="lab-model", context_tokens=32,
                   stop_ids=[5, 6])
    b = remote_backend("lab", **FAST)  # by name, from $NEURALDBG_MODELS_DIR; no url given: the profile's
    assert list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY)) == [9, 5]
    _method, _path, headers, body = srv.requests[-1]
    assert headers["Authorization"] == "Bearer lab-key"
    assert body["model"] == "lab-model" and body["stop_token_ids"] == [ct.FRAME_SEP, 5, 6]
    sent = len(srv.requests)
    with pytest.raises(BackendError, match="the context of the model at .* holds 32"):
        b.score(list(range(1, 41)), start=1)
    assert len(srv.requests) == sent  # refused before anything was sent
    b.close()


def test_no_profile_takes_the_url_and_key_as_given(raw) -> None:
    srv = raw(vllm_script([5], finish="stop"))
    b = remote_backend("", url=srv.url, api_key="k", **FAST)
    list(b.generate([1], stop_ids=[ct.FRAME_SEP], sampling=GREEDY))
    _method, _path, headers, body = srv.requests[-1]
    assert headers["Authorization"] == "Bearer k"
    assert body["model"] == "not-the-profile-model" and body["stop_token_ids"] == [ct.FRAME_SEP]
    b.close()


@pytest.mark.parametrize(("toml", "message"), [
    (None, "unknown model profile 'nope'"),
    ('kind = "local"\ncheckpoint = "x"\n', "is a local profile: the remote backend needs one with kind = \"remote\""),
    ("kind = [\n", "is not valid TOML"),
    ('kind = "remote"\nurl = "http://h:1"\nstop_ids = [-1]\n', "stop_ids must be a list of token ids"),
])
def test_a_bad_profile_is_one_clear_line(tmp_path, monkeypatch, toml: str | None, message: str) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    if toml is not None:
        (tmp_path / "nope.toml").write_text(toml)
    with pytest.raises(BackendError, match=message) as err:
        remote_backend("nope", url="http://127.0.0.1:1")
    assert "\n" not in str(err.value)


def test_no_profile_and_no_url_is_refused() -> None:
    with pytest.raises(BackendError, match="needs neuraldbg.url"):
        remote_backend("", url="")


def test_a_remote_profile_sampling_defaults_reach_the_simulation() -> None:
    from neuraldbg.config import Settings
    from neuraldbg.simulation.sampling import sampling_plan

    want = load_profile("vllm-remote").sampling
    plan = sampling_plan(Settings(backend="remote", profile="vllm-remote"), default_max_tokens=512)
    assert (plan.frames.temperature, plan.inputs.temperature, plan.frames.top_p, plan.frames.max_tokens) == (
        want.temperature, want.input_temperature, want.top_p, want.max_tokens) == (0.2, 0.6, 0.95, 2048)


def test_remote_backend_refuses_bad_stop_ids() -> None:
    with pytest.raises(BackendError, match="stop_ids must be token ids"):
        RemoteBackend("http://127.0.0.1:1", stop_ids=[1, -2])
