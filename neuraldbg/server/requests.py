"""Custom requests (``neuraldbg/trace``, ``neuraldbg/setEntry``,
``neuraldbg/debugAdapter``) and the commands behind code lenses (simulate,
resample, verify with a real run, set the input)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from neuraldbg.config import Settings
from neuraldbg.server import diagnostics as diag
from neuraldbg.server.verify import first_divergence
from neuraldbg.session.session import PRIORITY_FOCUS, PRIORITY_VISIBLE, InputError
from neuraldbg.source.model import FunctionInfo
from neuraldbg.trace.frames import Trace

if TYPE_CHECKING:
    from neuraldbg.server.controller import Controller

log = logging.getLogger(__name__)


NOT_ALLOWED = ("running code is not allowed in this workspace: enable the setting neuraldbg.allowExecution "
               "(trusted workspaces only) or use a model backend")


def invalid(message: str) -> JsonRpcException:
    return JsonRpcInvalidParams(message)


class CustomRequests:
    def __init__(self, controller: "Controller") -> None:
        self.c = controller

    def _target(self, uri: Any, function: Any) -> tuple[str, FunctionInfo]:
        if not isinstance(uri, str) or not isinstance(function, str):
            raise invalid("expected arguments (uri: string, function: string)")
        doc = self.c.doc(uri)
        if doc is None:
            raise invalid(f"unknown document {uri} (open it first)")
        self.c.flush(uri)
        fn = doc.index.function(function)
        if fn is None:
            raise invalid(f"no function {function!r} in {uri}")
        return uri, fn

    async def _full_trace(self, uri: str, fn: FunctionInfo, call: str | None, settings: Settings | None = None) -> Trace:
        if call is not None and not call.strip():
            call = None
        if call is not None:
            from neuraldbg.source.calls import CallError, parse_call

            try:
                call = parse_call(call, fn)
            except CallError as exc:
                raise invalid(str(exc)) from None
        doc = self.c.doc(uri)
        why = self.c.cannot_run(doc.index) if doc is not None else "document closed"
        if settings is None and why is not None:
            raise JsonRpcException(why, code=-32001)
        try:
            entry = self.c.session.cached(uri, fn.qualname, call, settings=settings)
            if entry is not None and entry.done.is_set() and entry.trace.status == "error":
                self.c.session.forget(entry.key)
            entry = self.c.session.request(uri, fn.qualname, call=call, priority=PRIORITY_FOCUS, settings=settings)
        except InputError as exc:
            raise invalid(str(exc)) from None
        self.c.watched.setdefault(uri, set()).add(fn.qualname)
        await asyncio.shield(entry.done.wait())
        return entry.trace

    async def trace_request(self, params: Any) -> dict[str, Any]:
        p = _params_dict(params)
        await self.c._ready_any(p.get("uri"))
        uri, fn = self._target(p.get("uri"), p.get("function"))
        call = p.get("call")
        if call is not None and not isinstance(call, str):
            raise invalid("call must be a string")
        trace = await self._full_trace(uri, fn, call)
        return trace.to_json()

    def set_entry(self, uri: Any, function: Any, call: Any) -> dict[str, Any]:
        uri, fn = self._target(uri, function)
        if call is None:
            call = ""
        if not isinstance(call, str):
            raise invalid("call must be a string")
        try:
            normalized = self.c.session.set_entry(uri, fn.qualname, call)
        except InputError as exc:
            return {"ok": False, "call": "", "error": str(exc)}
        self.c.divergences.get(uri, {}).pop(fn.qualname, None)
        if self.c.can_trace():
            self.c._request(uri, fn.qualname, PRIORITY_VISIBLE)
        self.c.publish(uri)
        self.c.refresh_inlays()
        self.c.refresh_lenses()
        return {"ok": True, "call": normalized}

    async def set_entry_request(self, params: Any) -> dict[str, Any]:
        p = _params_dict(params)
        await self.c._ready_any(p.get("uri"))
        return self.set_entry(p.get("uri"), p.get("function"), p.get("call"))

    def _command_args(self, args: list[Any]) -> tuple[Any, Any, Any]:
        """(uri, function, call) from ``[uri, function, call?]`` or one object
        ``{uri, function?, call?, position?}``."""
        if len(args) == 1 and isinstance(args[0], dict):
            obj = args[0]
            uri, function, call = obj.get("uri"), obj.get("function"), obj.get("call")
            pos = obj.get("position")
            if function is None and isinstance(uri, str) and isinstance(pos, dict):
                doc = self.c.doc(uri)
                line = pos.get("line")
                if doc is not None and isinstance(line, int):
                    self.c.flush(uri)
                    fn = doc.index.function_at(line + 1)
                    function = fn.qualname if fn is not None else None
            return uri, function, call
        uri, function, call = (list(args) + [None, None, None])[:3]
        return uri, function, call

    async def cmd_simulate(self, args: list[Any]) -> dict[str, Any]:
        await self.c._ready_any(_first_uri(args))
        uri, function, call = self._command_args(args)
        uri, fn = self._target(uri, function)
        trace = await self._full_trace(uri, fn, call if isinstance(call, str) else None)
        self.c.refresh_inlays()
        return trace.to_json()

    async def cmd_resample(self, args: list[Any]) -> dict[str, Any]:
        await self.c._ready_any(_first_uri(args))
        uri, function, _call = self._command_args(args)
        uri, fn = self._target(uri, function)
        self.c.session.resample(uri, fn.qualname)
        trace = await self._full_trace(uri, fn, None)
        self.c.refresh_inlays()
        self.c.refresh_lenses()
        return trace.to_json()

    async def cmd_verify(self, args: list[Any]) -> dict[str, Any]:
        await self.c._ready_any(_first_uri(args))
        uri, function, call = self._command_args(args)
        uri, fn = self._target(uri, function)
        s = self.c.settings
        if not s.allow_execution:
            raise JsonRpcException(NOT_ALLOWED, code=-32001)
        predicted = await self._full_trace(uri, fn, call if isinstance(call, str) else None)
        executed = await self._full_trace(uri, fn, predicted.call, settings=replace(s, backend="exec"))
        doc = self.c.doc(uri)
        found = first_divergence(predicted, executed)
        per_fn = self.c.divergences.setdefault(uri, {})
        if found is None:
            per_fn.pop(fn.qualname, None)
            message = f"{fn.name}: the prediction matches the real run ({len(executed.frames)} frames)"
            result: dict[str, Any] = {"ok": True, "message": message}
        else:
            line = found.line if doc is not None and 0 < found.line <= len(doc.lines) else fn.def_line
            span = diag.line_span(doc.lines if doc is not None else [], line)
            per_fn[fn.qualname] = diag.Problem(span, f"{found.message} (for {predicted.call})", "warning", "divergence")
            result = {"ok": False, "message": found.message, "step": found.step, "line": found.line}
        self.c.publish(uri)
        return result

    async def cmd_set_entry(self, args: list[Any]) -> dict[str, Any]:
        await self.c._ready_any(_first_uri(args))
        uri, function, call = self._command_args(args)
        if call is None:
            # the lens carries no call: the client is expected to ask the user for one
            self._target(uri, function)
            return {"ok": False, "call": "", "error": "no call given: pass the call to use as third argument, e.g. f(1, 2)"}
        return self.set_entry(uri, function, call)

    async def debug_adapter(self, params: Any) -> dict[str, Any]:
        if self.c._adapter_port is not None:
            return {"port": self.c._adapter_port}
        start = _adapter_start_fn()
        if start is None:
            raise JsonRpcException("debug adapter not available", code=-32001)
        try:
            port, stop = await asyncio.get_running_loop().run_in_executor(
                None, lambda: start("127.0.0.1", 0, session=self.c.session, registry=self.c.registry))
        except Exception as exc:
            raise JsonRpcException(f"debug adapter not available: {exc}", code=-32001) from None
        self.c._adapter_port, self.c._adapter_stop = int(port), stop
        return {"port": self.c._adapter_port}


def _adapter_start_fn() -> Any:
    """The debug adapter's in-process TCP server:
    ``neuraldbg.dap.start_tcp_server(host, port, session=..., registry=...) -> (port, stop)``."""
    try:
        import neuraldbg.dap as dap
    except Exception:  # the adapter is optional for the language server
        log.exception("the debug adapter cannot be imported")
        return None
    return getattr(dap, "start_tcp_server", None)


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
    raise invalid("params must be an object")
