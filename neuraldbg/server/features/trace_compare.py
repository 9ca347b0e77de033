"""``neuraldbg/trace`` with ``compare: true``: the real run of the same input
beside a predicted trace, the first step where they part, and the model's
probability of each real frame where the real run was rated under the model
(``scoreRealRuns``). What the editors' trace views show side by side."""

from __future__ import annotations

import asyncio
from typing import Any

from neuraldbg.server.state import ServerState
from neuraldbg.server.verify import first_divergence
from neuraldbg.session.session import InputError
from neuraldbg.simulation.agreement import Agreement
from neuraldbg.trace.frames import Trace


async def comparison(state: ServerState, uri: str, trace: Trace) -> dict[str, Any]:
    """The ``comparison`` member of a compared trace (lsp/README.md, schemas/trace.json)."""
    if not trace.predicted:
        return {"predicted": False, "executed": None, "divergence": None,
                "reason": "this trace is the real run (exec backend): there is no prediction to compare"}
    if not trace.call:
        return _without_real_run("the model imagined the input: there is no real run of it")
    refused = state.session.policy.refusal(state.session.real_run_settings())
    if refused is not None:
        return _without_real_run(str(refused))
    try:
        # the trace's own call, as is: the same cache entry as the real run it is rated against
        real = state.selection.fresh(uri, trace.function, trace.call, state.session.real_run_settings())
    except (InputError, KeyError) as exc:
        return _without_real_run(str(exc))
    await asyncio.shield(real.done.wait())
    executed = real.trace
    out: dict[str, Any] = {"predicted": True, "executed": executed.to_json(), "divergence": None}
    if executed.status != "error":
        found = first_divergence(trace, executed)
        if found is not None:
            out["divergence"] = {"step": found.step, "line": found.line, "message": found.message}
    entry = state.session.cached(uri, trace.function, trace.call)
    if entry is not None and entry.agreement is not None:
        out.update(_rating(entry.agreement, len(executed.frames)))
    return out


def _without_real_run(reason: str) -> dict[str, Any]:
    return {"predicted": True, "executed": None, "divergence": None, "reason": reason}


def _rating(agreement: Agreement, n_frames: int) -> dict[str, Any]:
    """Per executed frame, the model's probability of it (None: not scored, e.g. the call frame: the input)."""
    confidence: list[float | None] = [None] * n_frames
    for index, probability in agreement.frame_probabilities:
        if 0 <= index < n_frames:
            confidence[index] = probability
    return {"confidence": confidence, "agreement": {"frames": agreement.frames, "agreeing": agreement.agreeing}}
