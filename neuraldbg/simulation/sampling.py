"""The sampling of every model request, derived in one place.

The model profile's ``[sampling]`` table gives it (the release's defaults,
:class:`~neuraldbg.backends.profiles.SamplingDefaults`, when there is no profile or the
table leaves a key out); a temperature the user set (editor setting, CLI
``--temperature``) wins over the profile's. Stepping runs at the profile's
``temperature``; the call frame the model writes when it imagines the inputs
runs at ``input_temperature``, so that "Resample input" gives new inputs.
No torch here: protocol code builds its requests through this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from neuraldbg.backends.base import Sampling
from neuraldbg.config import Settings
from neuraldbg.backends.profiles import ProfileError, SamplingDefaults, load_profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingPlan:
    frames: Sampling  # each step of a trace
    inputs: Sampling  # the imagined call frame (new inputs on each resample)


def profile_sampling(profile: str) -> SamplingDefaults:
    """The ``[sampling]`` table of the profile a setting names; the defaults
    for none, for a checkpoint folder, or for a profile that cannot be read
    (loading the backend reports that one)."""
    if not profile:
        return SamplingDefaults()
    try:
        return load_profile(profile).sampling
    except ProfileError as exc:
        log.debug("sampling defaults for %s: %s", profile, exc)
        return SamplingDefaults()


def sampling_plan(settings: Settings, *, default_max_tokens: int) -> SamplingPlan:
    """The samplings of a trace under ``settings``: ``max_tokens`` per request
    is the profile's, else ``default_max_tokens`` (the engine's frame cap)."""
    d = profile_sampling(settings.profile)
    frames = Sampling(temperature=d.temperature, top_p=d.top_p, max_tokens=d.max_tokens or default_max_tokens,
                      seed=settings.seed)
    inputs = replace(frames, temperature=d.input_temperature)
    if settings.temperature is not None:
        frames, inputs = (replace(s, temperature=settings.temperature) for s in (frames, inputs))
    return SamplingPlan(frames=frames, inputs=inputs)


def chat_sampling(settings: Settings, *, max_tokens: int) -> Sampling:
    """The sampling of a chat-mode request (a hole fill) with its own token budget."""
    return replace(sampling_plan(settings, default_max_tokens=max_tokens).frames, max_tokens=max_tokens)
