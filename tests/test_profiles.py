"""Model profiles: the shipped TOML files, lookup by name or path, the
NEURALDBG_MODELS_DIR override, validation and checkpoint resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuraldbg.backends.profiles import (
    DEFAULT_STOP_IDS,
    MODELS_DIR_ENV,
    ProfileError,
    list_profiles,
    load_profile,
    models_dir,
)

SHIPPED = {
    "cwm-bf16-multi-gpu": ("none", 2),
    "cwm-bf16-1x80": ("none", 1),
    "cwm-8bit-1x80": ("8bit", 1),
    "cwm-4bit-nf4": ("4bit-nf4", 1),
}


def test_the_repository_profiles_load(monkeypatch) -> None:
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert models_dir() == Path(__file__).resolve().parent.parent / "models"
    names = list_profiles()
    assert set(SHIPPED) | {"vllm-remote", "sglang-remote"} <= set(names)
    for name, (quantization, min_gpus) in SHIPPED.items():
        p = load_profile(name)
        assert p.name == name and p.kind == "local" and p.quantization == quantization and p.min_gpus == min_gpus
        assert p.checkpoint == "cwm" and p.hub_id == "facebook/cwm" and p.dtype == "bfloat16"
        assert p.stop_ids == DEFAULT_STOP_IDS
        assert 0.2 <= p.sampling.temperature <= 0.6 and p.sampling.top_p == 0.95
        assert p.source == models_dir() / f"{name}.toml"
    for name in ("vllm-remote", "sglang-remote"):
        p = load_profile(name)
        assert p.kind == "remote" and p.url.startswith("http://") and p.api_key_env == "NEURALDBG_API_KEY"
        assert p.model == "facebook/cwm"


def test_an_unknown_profile_lists_the_available_ones(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "b.toml").write_text('checkpoint = "x"\n')
    (tmp_path / "a.toml").write_text('kind = "remote"\nurl = "https://h:1"\n')
    assert list_profiles() == ["a", "b"]
    with pytest.raises(ProfileError, match=r"unknown model profile 'zzz'; available: a, b \(in "):
        load_profile("zzz")
    assert load_profile("b").name == "b"  # the name defaults to the file stem


def test_a_profile_can_be_given_by_path(tmp_path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('name = "mine"\ncheckpoint = "/abs/folder"\nquantization = "8bit"\n[sampling]\ntemperature = 0.4\n')
    p = load_profile(str(f))
    assert p.name == "mine" and p.quantization == "8bit" and p.sampling.temperature == 0.4
    with pytest.raises(ProfileError, match="profile file not found"):
        load_profile(str(tmp_path / "nope.toml"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("checkpoint = \n", "not valid TOML"),
        ('checkpoint = "x"\nquantisation = "8bit"\n', "unknown key\\(s\\) quantisation"),
        ('checkpoint = "x"\nquantization = "3bit"\n', "quantization must be one of none, 8bit, 4bit-nf4"),
        ('checkpoint = "x"\ncontext_tokens = true\n', "context_tokens has a bad value"),
        ('checkpoint = "x"\ncontext_tokens = "many"\n', "context_tokens has a bad value"),
        ('checkpoint = "x"\nstop_ids = [1, "2"]\n', "stop_ids must be a list of token ids"),
        ('checkpoint = "x"\n[sampling]\ntop_p = 1.5\n', "0 < top_p <= 1"),
        ('checkpoint = "x"\n[sampling]\ntopp = 0.5\n', "unknown sampling key"),
        ('kind = "remote"\n', "needs url"),
        ('kind = "cloud"\ncheckpoint = "x"\n', "kind must be one of local, remote"),
        ('dtype = "bfloat16"\n', "needs checkpoint or hub_id"),
        ('checkpoint = "x"\nattn_implementation = "flash"\n', "attn_implementation must be one of"),
    ],
)
def test_malformed_profiles_are_clear_errors(tmp_path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile(str(f))


def test_checkpoints_resolve_under_models_weights_then_the_hub(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    (tmp_path / "p.toml").write_text('checkpoint = "cwm"\nhub_id = "facebook/cwm"\n')
    (tmp_path / "q.toml").write_text('checkpoint = "cwm"\n')
    p = load_profile("p")
    assert p.resolve_checkpoint() == "facebook/cwm" and p.local_checkpoint_dir() is None
    with pytest.raises(ProfileError, match="checkpoint folder not found: .*weights/cwm"):
        load_profile("q").resolve_checkpoint()
    (tmp_path / "weights" / "cwm").mkdir(parents=True)
    assert p.resolve_checkpoint() == str(tmp_path / "weights" / "cwm")
    assert p.local_checkpoint_dir() == tmp_path / "weights" / "cwm"
    remote = tmp_path / "r.toml"
    remote.write_text('kind = "remote"\nurl = "http://x:1"\n')
    with pytest.raises(ProfileError, match="is remote"):
        load_profile("r").resolve_checkpoint()
