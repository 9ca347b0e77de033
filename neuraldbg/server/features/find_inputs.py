"""Inverse execution in the editor: ``neuraldbg/findInputs``, its command,
code actions and lenses, and the inputs found offered as the function's input.

A code action on any line of a function finds an input that reaches it; on
a ``raise`` one that raises its class; on a ``return`` one that returns a
value the client asks for (the command's goal has no ``expr`` then). The
search runs on a worker thread through :func:`neuraldbg.session.inputs.find_inputs`
(the session's policy and engines), with a cancellable ``$/progress`` bar;
``$/cancelRequest`` or the bar's Cancel button stops it (its sandboxed
children are killed). The last result per function is kept and offered as
"Use input …" code actions, which send ``neuraldbg.setEntry`` so every view
re-traces on the chosen input.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from neuraldbg.backends.base import CancelToken, Cancelled
from neuraldbg.inverse.goals import GOAL_KINDS, Goal, GoalError, function_tree, make_goal
from neuraldbg.server.state import ServerState
from neuraldbg.session.inputs import FoundInputs, find_inputs, found_json
from neuraldbg.session.policy import Refused
from neuraldbg.session.session import InputError
from neuraldbg.source.model import FunctionInfo

FIND_INPUTS_METHOD = "neuraldbg/findInputs"
CMD_FIND_INPUTS = "neuraldbg.findInputs"
CMD_SET_ENTRY = "neuraldbg.setEntry"
NOT_RUNNABLE = -32001  # as neuraldbg/trace: the request is fine, the run is refused
OFFERED = 5  # inputs offered as code actions


@dataclass
class FindInputs:
    state: ServerState
    results: dict[tuple[str, str], FoundInputs] = field(default_factory=dict)  # (uri, function) -> the last search
    running: set[CancelToken] = field(default_factory=set)  # every search not finished (close() stops them)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="neuraldbg-inputs"))
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- the request and the command --------------------------------------------
    async def request(self, params: Any) -> dict[str, Any]:
        p = _params_dict(params)
        uri = p.get("uri")
        await self.state.documents.ready(uri if isinstance(uri, str) else None)
        uri, fn, doc_text = self._function(uri, p.get("function"), p.get("position"))
        goal = _goal(fn, doc_text, p.get("goal"))
        budget = p.get("budget")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
            raise JsonRpcInvalidParams("budget must be a positive integer")
        session = self.state.session
        try:
            target = session.target_for(uri, fn.qualname, call="")
        except InputError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        cancel = CancelToken()
        bars = self.state.bars
        bar = ("inputs", next(self._ids))
        bars.start(bar, f"neuraldbg: finding inputs of {fn.name}", goal.describe(), percentage=0,
                   on_cancel=cancel.cancel, at_once=True)
        loop = asyncio.get_running_loop()
        last = [0.0]

        def progress(tried: int, total: int, note: str) -> None:
            # Called per candidate on the worker: only a few cross to the event loop.
            now = time.monotonic()
            if now - last[0] >= bars.report_every:
                last[0] = now
                pct = int(100 * tried / total) if total else None
                loop.call_soon_threadsafe(bars.report, bar, f"{tried}/{total} tried", pct)

        def work() -> FoundInputs:
            return find_inputs(session, target, goal, budget=budget, cancel=cancel, progress=progress)

        self.running.add(cancel)
        try:
            found = await loop.run_in_executor(self._pool, work)
        except asyncio.CancelledError:  # $/cancelRequest: stop the search and its children
            cancel.cancel()
            raise
        except Cancelled:
            raise JsonRpcException("the search was cancelled", code=NOT_RUNNABLE) from None
        except Refused as exc:
            raise JsonRpcException(str(exc), code=NOT_RUNNABLE) from None
        except GoalError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        finally:
            self.running.discard(cancel)
            bars.end(bar, "done")
        self.results[(uri, fn.qualname)] = found
        self.state.refresh.lenses()
        return found_json(found, fn.qualname)

    async def command(self, args: list[Any]) -> dict[str, Any]:
        if len(args) == 1 and isinstance(args[0], dict):
            return await self.request(args[0])
        uri, function, goal = (list(args) + [None, None, None])[:3]
        return await self.request({"uri": uri, "function": function, "goal": goal})

    def close(self) -> None:
        for token in list(self.running):
            token.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- code actions and lenses -----------------------------------------------------
    async def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        only = params.context.only
        if only and not any(k in (types.CodeActionKind.Refactor, "") for k in only):
            return []
        uri = params.text_document.uri
        doc = await self.state.documents.current(uri)
        if doc is None:
            return []
        line = params.range.start.line + 1
        fn = doc.index.function_at(line)
        if fn is None:
            return []
        out = [self._use_action(uri, fn, f.call, f.checked) for f in self._offered(uri, fn)]
        for title, goal in _goals_at(doc.text, fn, line):
            out.append(types.CodeAction(title=title, kind=types.CodeActionKind.Refactor,
                                        command=types.Command(title=title, command=CMD_FIND_INPUTS,
                                                              arguments=[{"uri": uri, "function": fn.qualname, "goal": goal}])))
        return out

    async def code_lenses(self, params: types.CodeLensParams) -> list[types.CodeLens]:
        """A lens on each ``raise`` line: every line would drown the view."""
        uri = params.text_document.uri
        doc = await self.state.documents.current(uri)
        if doc is None:
            return []
        out: list[types.CodeLens] = []
        for fn in doc.index.functions:
            tree = function_tree(doc.text, fn)
            for node in ast.walk(tree) if tree is not None and len(fn.params) > int(fn.is_method) else ():
                name = _raised_name(node)
                if name is None:
                    continue
                title = f"Find an input that raises {name}"
                goal = {"kind": "raises", "expr": name}
                pos = types.Position(line=node.lineno - 1, character=0)
                out.append(types.CodeLens(range=types.Range(start=pos, end=pos), command=types.Command(
                    title=title, command=CMD_FIND_INPUTS, arguments=[{"uri": uri, "function": fn.qualname, "goal": goal}])))
        return out

    def _offered(self, uri: str, fn: FunctionInfo) -> list[Any]:
        found = self.results.get((uri, fn.qualname))
        return list(found.result.found[:OFFERED]) if found is not None else []

    @staticmethod
    def _use_action(uri: str, fn: FunctionInfo, call: str, checked: bool) -> types.CodeAction:
        title = f"Use input {call} ({'checked' if checked else 'predicted'})"
        return types.CodeAction(title=title, kind=types.CodeActionKind.Refactor,
                                command=types.Command(title=title, command=CMD_SET_ENTRY, arguments=[uri, fn.qualname, call]))

    # -- helpers ------------------------------------------------------------------
    def _function(self, uri: Any, function: Any, position: Any) -> tuple[str, FunctionInfo, str]:
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams("uri must be a string")
        doc = self.state.documents.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {uri} (open it first)")
        self.state.documents.flush(uri)
        fn = None
        if isinstance(function, str):
            fn = doc.index.function(function)
        elif isinstance(position, dict) and isinstance(position.get("line"), int):
            fn = doc.index.function_at(position["line"] + 1)
        if fn is None:
            raise JsonRpcInvalidParams(f"no function {function!r} in {uri}")
        return uri, fn, doc.text


def _params_dict(params: Any) -> dict[str, Any]:
    if isinstance(params, dict):
        return params
    if params is not None and hasattr(params, "__dict__"):
        return {k: v for k, v in vars(params).items()}
    raise JsonRpcInvalidParams("expected an object {uri, function, goal}")


def _goal(fn: FunctionInfo, source: str, raw: Any) -> Goal:
    """The request's goal (``line`` 0-based, as LSP positions), or invalid params (one line)."""
    if not isinstance(raw, dict):
        raise JsonRpcInvalidParams("goal must be an object {kind, line?, expr?}")
    raw = dict(raw)
    kind, line, expr = raw.get("kind"), raw.get("line"), raw.get("expr")
    if kind not in GOAL_KINDS:
        raise JsonRpcInvalidParams(f"goal.kind must be one of {', '.join(GOAL_KINDS)}")
    if kind in ("reach", "when") and (not isinstance(line, int) or isinstance(line, bool)):
        raise JsonRpcInvalidParams(f"a {kind} goal needs goal.line (0-based)")
    if kind != "reach" and not (isinstance(expr, str) and expr.strip()):
        what = "the value to return" if kind == "returns" else "the exception class" if kind == "raises" else "the condition"
        raise JsonRpcInvalidParams(f"no value given: a {kind} goal needs goal.expr ({what})")
    try:
        return make_goal(fn, source, kind, line=(line or 0) + 1, expr=expr or "")
    except GoalError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


def _raised_name(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return None
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name):
        return exc.id
    return exc.attr if isinstance(exc, ast.Attribute) else None


def _goals_at(source: str, fn: FunctionInfo, line: int) -> list[tuple[str, dict[str, Any]]]:
    """The searches a line offers: reach it, and raise / return there."""
    try:
        goal = make_goal(fn, source, "reach", line=line)
    except GoalError:
        return []  # a line without code, or a function without parameters
    out = [("Find an input that reaches this line", {"kind": "reach", "line": goal.line - 1})]
    tree = function_tree(source, fn)
    stmt = next((n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n.lineno == goal.line), None) if tree else None
    name = _raised_name(stmt) if stmt is not None else None
    if name is not None:
        out.append(("Find an input that raises this", {"kind": "raises", "expr": name}))
    if isinstance(stmt, ast.Return):
        out.append(("Find an input that returns …", {"kind": "returns"}))
    return out
