"""Inverse execution in a session: which runs a search may make, on which engine.

:func:`find_inputs` is what the CLI (``neuraldbg inputs``), the language
server (``neuraldbg/findInputs``) and the CruxEval-I harness call. It gives
the search of :mod:`neuraldbg.inverse` its callbacks: real runs in the
sandbox through the session's execution policy (refused runs raise
:class:`~neuraldbg.session.policy.Refused` on exec; on a model backend they
just leave the proposals ``predicted``), and the model's traces through
:meth:`Session.open_run` (its engines and model lock).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from neuraldbg.backends.base import CancelToken
from neuraldbg.config import Settings
from neuraldbg.inverse.candidates import signature
from neuraldbg.inverse.goals import Goal
from neuraldbg.inverse.model import DEFAULT_PROPOSALS, Chat, ModelSearch, Predictor, Proposal
from neuraldbg.inverse.search import DEFAULT_BUDGET, BatchRunner, ExecSearch, InverseRequest, Progress, SearchResult
from neuraldbg.session.policy import runs_code
from neuraldbg.session.session import Session
from neuraldbg.simulation.target import Target
from neuraldbg.trace.frames import Trace
from neuraldbg.tracer.batch import CallOutcome, run_batch
from neuraldbg.tracer.limits import Limits

PER_CALL_SECONDS = 1.0  # a candidate's time limit: a search wants many short runs, not one long one
CHAT_MAX_TOKENS = 256


@dataclass(frozen=True)
class FoundInputs:
    result: SearchResult
    proposals: tuple[Proposal, ...] = ()  # the model's proposals (model backends)


def batch_runner(target: Target, settings: Settings, per_call_seconds: float = PER_CALL_SECONDS) -> BatchRunner:
    """Real runs of candidate calls of ``target``'s file in the sandbox."""
    per_call = min(per_call_seconds, settings.timeout_seconds)
    limits = Limits(wall_seconds=max(per_call, 0.1))

    def run(calls: list[str], goal_line: int, watch: tuple[int, ...], cancel: CancelToken | None) -> list[CallOutcome]:
        return run_batch(target.source, calls, function=target.function.qualname, path=target.path or "<string>",
                         goal_line=goal_line, watch_lines=watch, per_call_seconds=per_call, limits=limits,
                         python=settings.interpreter or None, cancel=cancel)

    return run


def find_inputs(session: Session, target: Target, goal: Goal, *, settings: Settings | None = None,
                budget: int | None = None, cancel: CancelToken | None = None,
                progress: Progress | None = None, per_call_seconds: float = PER_CALL_SECONDS,
                modes: tuple[str, ...] = ("frame", "chat"), check: bool = True, judge: bool = True) -> FoundInputs:
    """Search for inputs of ``target.function`` that meet ``goal`` on the
    settings' backend; raises Refused where the exec backend may not run code,
    GoalError for a function it cannot call. ``modes`` are the model's ways
    to propose (open call frame, chat); ``check`` False keeps its proposals
    unchecked even where execution is allowed (an evaluation checks them itself);
    ``judge`` False does not have the model trace its chat proposals either."""
    s = settings or session.settings
    request = InverseRequest(target.source, target.index, target.function, goal, target.path or "<string>")
    if runs_code(s.backend):
        session.policy.check(replace(s, backend="exec"), target.index)
        search = ExecSearch(batch_runner(target, s, per_call_seconds), budget=budget or DEFAULT_BUDGET, seed=s.seed)
        return FoundInputs(search.search(request, cancel, progress))
    real_ok = check and session.policy.refusal(replace(s, backend="exec"), target.index) is None
    sig, _tree = signature(target.source, target.function)
    model = ModelSearch(_predictor(session, target, s), sig.callee, chat=_chat(session, s),
                        run_batch=batch_runner(target, s, per_call_seconds) if real_ok else None,
                        budget=budget or DEFAULT_PROPOSALS, backend=s.backend, modes=modes, judge=judge)
    result, proposals = model.search(request, cancel, progress)
    return FoundInputs(result, proposals)


def _predictor(session: Session, target: Target, settings: Settings) -> Predictor:
    """The model's trace of a call ("" leaves the call frame open), one seed per sample."""

    def predict(call: str, sample: int, cancel: CancelToken | None) -> Trace:
        one = replace(target, call=call, call_origin="imagined" if not call else "explicit", setup="")
        run = session.open_run(one, replace(settings, seed=settings.seed + sample), cancel=cancel)
        return run.run_to_end(cancel=cancel)

    return predict


def _chat(session: Session, settings: Settings) -> Chat:
    """Chat-mode answers of the session's model (CWM's chat prompt, no reasoning: one line is asked for)."""
    from neuraldbg.holes.search import chat_prompt_ids
    from neuraldbg.simulation.sampling import chat_sampling
    from neuraldbg.trace.cwm_tokens import EOM_ID, EOT, EOT_ID

    def ask(question: str, cancel: CancelToken | None) -> str:
        backend, tok = session.engines.backend(settings)
        ids = chat_prompt_ids(tok, question, reasoning=False)
        out: list[int] = []
        sampling = chat_sampling(settings, max_tokens=CHAT_MAX_TOKENS)
        with session.model_lock:
            for tok_id in backend.generate(ids, stop_ids=(EOT, EOM_ID, EOT_ID), sampling=sampling, cancel=cancel):
                if tok_id in (EOT, EOM_ID, EOT_ID):
                    break
                out.append(tok_id)
        return tok.decode(out)

    return ask



def found_json(found: FoundInputs, function: str) -> dict[str, object]:
    """The search's result as the CLI's ``--format json`` prints it and the
    language server answers ``neuraldbg/findInputs`` (lsp/schemas/find-inputs-result.json)."""
    return {**found.result.to_json(), "function": function,
            "proposals": [{"call": p.call, "origin": p.origin, "predictedMet": p.predicted_met, "note": p.note}
                          for p in found.proposals]}
