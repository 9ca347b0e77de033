"""Custom requests (``neuraldbg/trace``, ``neuraldbg/setEntry``) and the
commands behind code lenses (simulate, resample, verify with a real run,
set the input)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from neuraldbg.config import Settings
from neuraldbg.server import diagnostics as diag
from neuraldbg.server.features import trace_compare
from neuraldbg.server.features.publishing import publish
from neuraldbg.server.state import ServerState
from neuraldbg.server.verify import first_divergence
from neuraldbg.session.session import InputError
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Trace

NOT_RUNNABLE = -32001  # JSON-RPC error code: the request is fine, the run is refused


# -- requests -----------------------------------------------------------------
async def trace_request(state: ServerState, params: Any) -> dict[str, Any]:
    p = _params_dict(params)
    await state.documents.ready(p.get("uri"))
    uri, fn = _target(state, p.get("uri"), p.get("function"))
    call = p.get("call")
    if call is not None and not isinstance(call, str):
        raise _invalid("call must be a string")
    compare = p.get("compare", False)
    if not isinstance(compare, bool):
        raise _invalid("compare must be a boolean")
    trace = await _full_trace(state, uri, fn, call)
    out = trace.to_json()
    if compare:  # the trace views: the real run beside the prediction
        out["comparison"] = await trace_compare.comparison(state, uri, trace)
    return out


async def set_entry_request(state: ServerState, params: Any) -> dict[str, Any]:
    p = _params_dict(params)
    await state.documents.ready(p.get("uri"))
    return set_entry(state, p.get("uri"), p.get("function"), p.get("call"))


def set_entry(state: ServerState, uri: Any, function: Any, call: Any) -> dict[str, Any]:
    uri, fn = _target(state, uri, function)
    if call is None:
        call = ""
    if not isinstance(call, str):
        raise _invalid("call must be a string")
    try:
        normalized = state.session.set_entry(uri, fn.qualname, call)
    except InputError as exc:
        return {"ok": False, "call": "", "error": str(exc)}
    state.divergences.get(uri, {}).pop(fn.qualname, None)
    if state.selection.can_trace():
        state.selection.request(uri, fn.qualname)
    publish(state, uri)
    state.refresh.inlays()
    state.refresh.lenses()
    return {"ok": True, "call": normalized}


# -- lens commands --------------------------------------------------------------
async def simulate(state: ServerState, args: list[Any]) -> dict[str, Any]:
    uri, fn, call = await _command_target(state, args)
    trace = await _full_trace(state, uri, fn, call if isinstance(call, str) else None)
    state.refresh.inlays()
    return trace.to_json()


async def resample(state: ServerState, args: list[Any]) -> dict[str, Any]:
    uri, fn, _call = await _command_target(state, args)
    state.session.resample(uri, fn.qualname)
    trace = await _full_trace(state, uri, fn, None)
    state.refresh.inlays()
    state.refresh.lenses()
    return trace.to_json()


async def verify(state: ServerState, args: list[Any]) -> dict[str, Any]:
    """Run the input for real and mark the first step where the prediction leaves it."""
    uri, fn, call = await _command_target(state, args)
    refused = state.session.policy.refusal(state.session.real_run_settings())
    if refused is not None:
        raise JsonRpcException(str(refused), code=NOT_RUNNABLE)
    predicted = await _full_trace(state, uri, fn, call if isinstance(call, str) else None)
    executed = await _full_trace(state, uri, fn, predicted.call, settings=replace(state.settings, backend="exec"))
    doc = state.documents.get(uri)
    found = first_divergence(predicted, executed)
    per_fn = state.divergences.setdefault(uri, {})
    if found is None:
        per_fn.pop(fn.qualname, None)
        message = f"{fn.name}: the prediction matches the real run ({len(executed.frames)} frames)"
        result: dict[str, Any] = {"ok": True, "message": message}
    else:
        line = found.line if doc is not None and 0 < found.line <= len(doc.lines) else fn.def_line
        span = diag.line_span(doc.lines if doc is not None else [], line)
        per_fn[fn.qualname] = diag.Problem(span, f"{found.message} (for {predicted.call})", "warning", "divergence")
        result = {"ok": False, "message": found.message, "step": found.step, "line": found.line}
    publish(state, uri)
    return result


async def set_entry_command(state: ServerState, args: list[Any]) -> dict[str, Any]:
    await state.documents.ready(_first_uri(args))
    uri, function, call = _command_args(state, args)
    if call is None:
        # the lens carries no call: the client is expected to ask the user for one
        _target(state, uri, function)
        return {"ok": False, "call": "", "error": "no call given: pass the call to use as third argument, e.g. f(1, 2)"}
    return set_entry(state, uri, function, call)


# -- arguments and traces --------------------------------------------------------
async def _command_target(state: ServerState, args: list[Any]) -> tuple[str, FunctionInfo, Any]:
    await state.documents.ready(_first_uri(args))
    uri, function, call = _command_args(state, args)
    uri, fn = _target(state, uri, function)
    return uri, fn, call


def _target(state: ServerState, uri: Any, function: Any) -> tuple[str, FunctionInfo]:
    if not isinstance(uri, str) or not isinstance(function, str):
        raise _invalid("expected arguments (uri: string, function: string)")
    doc = state.documents.get(uri)
    if doc is None:
        raise _invalid(f"unknown document {uri} (open it first)")
    state.documents.flush(uri)
    fn = doc.index.function(function)
    if fn is None:
        raise _invalid(f"no function {function!r} in {uri}")
    return uri, fn


def _command_args(state: ServerState, args: list[Any]) -> tuple[Any, Any, Any]:
    """(uri, function, call) from ``[uri, function, call?]`` or one object
    ``{uri, function?, call?, position?}``."""
    if len(args) == 1 and isinstance(args[0], dict):
        obj = args[0]
        uri, function, call = obj.get("uri"), obj.get("function"), obj.get("call")
        pos = obj.get("position")
        if function is None and isinstance(uri, str) and isinstance(pos, dict):
            doc = state.documents.get(uri)
            line = pos.get("line")
            if doc is not None and isinstance(line, int):
                state.documents.flush(uri)
                fn = doc.index.function_at(line + 1)
                function = fn.qualname if fn is not None else None
        return uri, function, call
    uri, function, call = (list(args) + [None, None, None])[:3]
    return uri, function, call


async def _full_trace(state: ServerState, uri: str, fn: FunctionInfo, call: str | None,
                      settings: Settings | None = None) -> Trace:
    """The finished trace of an explicit request (``settings``: another backend's, e.g. the real run)."""
    if call is not None and not call.strip():
        call = None
    if call is not None:
        from neuraldbg.source.calls import CallError, parse_call

        try:
            call = parse_call(call, fn)
        except CallError as exc:
            raise _invalid(str(exc)) from None
    why = state.selection.cannot_run(uri)
    if settings is None and why is not None:
        raise JsonRpcException(why, code=NOT_RUNNABLE)
    try:
        entry = state.selection.fresh(uri, fn.qualname, call, settings)
    except InputError as exc:
        raise _invalid(str(exc)) from None
    await asyncio.shield(entry.done.wait())
    return entry.trace


def _invalid(message: str) -> JsonRpcException:
    return JsonRpcInvalidParams(message)


def _first_uri(args: list[Any]) -> Any:
    if len(args) == 1 and isinstance(args[0], dict):
        return args[0].get("uri")
    return args[0] if args else None


def _params_dict(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    if hasattr(params, "_asdict"):
        return dict(params._asdict())
    raise _invalid("params must be an object")
