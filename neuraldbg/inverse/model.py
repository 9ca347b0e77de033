"""Inputs proposed by CWM (model backends).

Two ways to ask: a trace whose call frame is left open (the model imagines
the arguments when it writes the call event), and chat-mode input
prediction as in CruxEval-I (the function and the goal in, a call out).
Each proposal is judged by the model's own predicted trace of it, and,
where execution is allowed, by a real run in the sandbox: a real run that
meets the goal makes it ``checked``; one that does not rejects it; without
a real run a predicted trace that meets the goal leaves it ``predicted``.

The model and the runs come as callbacks from the session (it owns the
engines, the model lock and the execution policy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neuraldbg.backends.base import CancelToken
from neuraldbg.inverse.goals import Observation, function_tree
from neuraldbg.inverse.guide import Guide
from neuraldbg.inverse.search import (
    BatchRunner,
    FoundInput,
    InverseRequest,
    Progress,
    SearchResult,
    most_different_first,
    outcome_text,
)
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Trace

# (call, or "" for an open call frame; sample number; cancel) -> the model's predicted trace
Predictor = Callable[[str, int, "CancelToken | None"], Trace]
# (question; cancel) -> the model's answer text (its reasoning already cut off)
Chat = Callable[[str, "CancelToken | None"], str]

DEFAULT_PROPOSALS = 8  # model calls: each costs a generation


@dataclass(frozen=True)
class Proposal:
    call: str  # "" when the model's answer held no usable call
    origin: str  # "model call frame", "model chat"
    predicted_met: bool
    note: str  # the predicted outcome, or why the answer was unusable
    answer: str = ""  # what the model wrote: its chat reply, or the locals of its call frame


def call_from_frame(trace: Trace, fn: FunctionInfo, callee: str) -> str:
    """The call the model imagined: its call frame's locals as keyword arguments."""
    first = next((f for f in trace.frames if f.event == "call"), None)
    if first is None or not first.locals:
        return ""
    skip = {fn.params[0]} if fn.is_method and fn.params else set()
    args = [f"{k}={v}" for k, v in first.locals.items() if k in fn.params and k not in skip]
    return f"{callee}({', '.join(args)})"


def chat_question(request: InverseRequest, callee: str) -> str:
    """A CruxEval-I style question: the code, the goal, one call as the answer."""
    goal = request.goal
    want = {
        "returns": f"`{callee}(??) == {goal.expr}`",
        "raises": f"`{callee}(??)` raises {goal.expr}",
        "reach": f"`{callee}(??)` executes line {goal.line}",
        "when": f"`{callee}(??)` reaches line {goal.line} with `{goal.expr}` true",
    }[goal.kind]
    return "\n".join([
        "You are given a Python function and a goal. Find an input such that executing the function on it "
        f"meets the goal: {want}.",
        "Reply with only the call with its arguments filled in, on one line, with no explanation.",
        "", "```python", request.source.rstrip("\n"), "```",
    ])


def call_in_answer(text: str, fn: FunctionInfo) -> str:
    """The first line of the answer that is a call of the function ("" if none)."""
    from neuraldbg.source.calls import CallError, parse_call

    for raw in text.splitlines():
        line = raw.strip().strip("`").strip()
        if line.startswith("assert "):
            line = line[len("assert "):].split("==", 1)[0].strip()
        try:
            return parse_call(line, fn)
        except CallError:
            continue
    return ""


@dataclass
class ModelSearch:
    predict: Predictor
    callee: str
    chat: Chat | None = None
    run_batch: BatchRunner | None = None  # None: execution is not allowed, proposals stay predicted
    budget: int = DEFAULT_PROPOSALS
    backend: str = "local"
    modes: tuple[str, ...] = ("frame", "chat")  # asked in turn: an open call frame, a chat question
    judge: bool = True  # False: a chat proposal is not traced by the model (an evaluation runs it for real instead)

    def search(self, request: InverseRequest, cancel: CancelToken | None = None,
               progress: Progress | None = None) -> tuple[SearchResult, tuple[Proposal, ...]]:
        goal, fn = request.goal, request.function
        proposals: list[Proposal] = []
        for i in range(self.budget):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if progress is not None:
                progress(i, self.budget, "asking the model")
            use_chat = self.chat is not None and self.modes[i % len(self.modes)] == "chat"
            proposals.append(self._chat(request, i, cancel) if use_chat else self._open_frame(request, i, cancel))
        calls = list(dict.fromkeys(p.call for p in proposals if p.call))
        real: dict[str, Observation] = {}
        if self.run_batch is not None and calls:
            goal_line = goal.line if goal.kind == "when" else 0
            real = {o.call: Observation.of_outcome(o) for o in self.run_batch(calls, goal_line, (), cancel)}
        found: list[FoundInput] = []
        for p in proposals:
            if not p.call:
                continue
            if p.call in real:
                if goal.met(real[p.call]):
                    found.append(FoundInput(p.call, True, p.origin, outcome_text(real[p.call])))
            elif p.predicted_met:
                found.append(FoundInput(p.call, False, p.origin, p.note))
        by_origin: dict[str, int] = {}
        for p in proposals:
            by_origin[p.origin] = by_origin.get(p.origin, 0) + 1
        if progress is not None:
            progress(self.budget, self.budget, "done")
        guide = Guide.for_goal(goal, function_tree(request.source, fn))
        closest = guide.closest([o.lines for o in real.values()]) if not found else None
        return SearchResult(goal, most_different_first(found), len(proposals), by_origin, closest, None,
                            backend=self.backend), tuple(proposals)

    def _open_frame(self, request: InverseRequest, sample: int, cancel: CancelToken | None) -> Proposal:
        trace = self.predict("", sample, cancel)
        call = call_from_frame(trace, request.function, self.callee)
        first = next((f for f in trace.frames if f.event == "call"), None)
        wrote = repr(dict(first.locals)) if first is not None else ""
        if not call:
            return Proposal("", "model call frame", False, trace.error or "the model wrote no call frame", wrote)
        return self._judged(request, call, trace, "model call frame", wrote)

    def _chat(self, request: InverseRequest, sample: int, cancel: CancelToken | None) -> Proposal:
        assert self.chat is not None
        answer = self.chat(chat_question(request, self.callee), cancel)
        call = call_in_answer(answer, request.function)
        if not call:
            return Proposal("", "model chat", False, "the model's answer held no call of the function", answer)
        if not self.judge:
            return Proposal(call, "model chat", False, "not traced by the model", answer)
        return self._judged(request, call, self.predict(call, sample, cancel), "model chat", answer)

    def _judged(self, request: InverseRequest, call: str, trace: Trace, origin: str, answer: str) -> Proposal:
        goal = request.goal
        obs = Observation.of_trace(trace, goal.line)
        return Proposal(call, origin, goal.met(obs), f"predicted: {outcome_text(obs)}", answer)
