"""A DAP ``launch`` request: checked arguments, the target, the engine and
the simulation. Every bad input becomes one clear :class:`LaunchError`.

Who may let a launch run the user's code (:class:`Permission`): inside the
language server, only the workspace's ``allowExecution`` setting (a client
can send any launch arguments, so they never raise it); standalone
(``neuraldbg dap``), only the launch request's own ``allowExecution: true``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from neuraldbg.backends.base import CancelToken
from neuraldbg.config import BACKENDS, Settings
from neuraldbg.simulation.factory import EngineFactory
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.simulation.target import Target, TargetError, read_source, resolve

IMAGINE = "imagine"
MODEL_BACKENDS = ("local", "remote")  # backends that can imagine inputs
RUNS_CODE = ("exec", "replay")  # backends that run the user's program for real


class LaunchError(ValueError):
    """Bad launch arguments or a target that cannot be traced (one line)."""


@dataclass(frozen=True)
class LaunchConfig:
    program: str  # absolute path
    function: str | None
    args: str | None  # a call string, "imagine", or None (the file's entry points)
    stop_on_entry: bool
    settings: dict[str, Any]  # camelCase keys for Settings.merged (never allowExecution: see Permission)
    allow_execution: bool = False  # the launch's own "allowExecution" (heeded only standalone)

    @staticmethod
    def parse(args: Mapping[str, Any]) -> "LaunchConfig":
        program = args.get("program")
        if not isinstance(program, str) or not program.strip():
            raise LaunchError("launch needs 'program': the path of a Python file")
        cwd = args.get("cwd")
        base = cwd if isinstance(cwd, str) and cwd else os.getcwd()
        path = os.path.abspath(os.path.join(base, os.path.expanduser(program)))
        function = args.get("function")
        if function is not None and (not isinstance(function, str) or not function.strip()):
            raise LaunchError("launch: 'function' must be a function name such as count_letter or Stack.push")
        call = args.get("args")
        if isinstance(call, list):
            if len(call) > 1 or not all(isinstance(c, str) for c in call):
                raise LaunchError("launch: 'args' must be one call string such as \"f([3, 4])\", or \"imagine\"")
            call = call[0] if call else None
        if call is not None and not isinstance(call, str):
            raise LaunchError("launch: 'args' must be a call string such as \"f([3, 4])\", or \"imagine\"")
        if isinstance(call, str) and not call.strip():
            call = None
        stop = args.get("stopOnEntry", False)
        if not isinstance(stop, bool):
            raise LaunchError("launch: 'stopOnEntry' must be true or false")
        backend = args.get("backend")
        if backend is not None and backend not in BACKENDS:
            raise LaunchError(f"launch: unknown backend {backend!r} (use one of {', '.join(BACKENDS)})")
        allow = args.get("allowExecution", False)
        if not isinstance(allow, bool):
            raise LaunchError("launch: 'allowExecution' must be true or false")
        settings = {k: args[k] for k in ("backend", "profile", "url", "apiKey", "temperature", "seed", "maxFrames",
                                         "timeoutSeconds") if k in args}
        return LaunchConfig(path, function.strip() if function else None, call.strip() if call else None, stop,
                            settings, allow)


@dataclass(frozen=True)
class Permission:
    """Whether a launch may run the user's program, and how to allow it."""

    allowed: bool
    how_to_allow: str

    @staticmethod
    def of_workspace(settings: Settings) -> "Permission":
        """In the language server: its current settings decide, never the launch."""
        return Permission(settings.allow_execution,
                          "enable the setting neuraldbg.allowExecution (trusted workspaces only; a launch "
                          "configuration's \"allowExecution\" cannot override it)")

    @staticmethod
    def of_launch(config: LaunchConfig) -> "Permission":
        """Standalone adapter: no workspace setting, so the launch must say so itself."""
        return Permission(config.allow_execution,
                          "add \"allowExecution\": true to the launch configuration (only for code you trust)")

    def check(self, backend: str) -> None:
        if backend in RUNS_CODE and not self.allowed:
            raise LaunchError(f"launch: the {backend} backend runs your program for real and running code is not "
                              f"allowed here: {self.how_to_allow}, or use a model backend (local, remote)")


class DocumentSource(Protocol):
    """What the adapter needs of a language-server session: open documents'
    text (unsaved edits included), settings and the shared engine factory."""

    settings: Settings
    engines: EngineFactory
    documents: Mapping[str, Any]


@dataclass
class Launched:
    config: LaunchConfig
    settings: Settings
    target: Target
    sim: Simulation


def settings_for(config: LaunchConfig, base: Settings, permission: Permission) -> Settings:
    settings, problems = base.merged(config.settings)
    if problems:
        raise LaunchError("launch: " + "; ".join(problems))
    # The engine factory checks allow_execution too: it must say what Permission says.
    return replace(settings, allow_execution=permission.allowed)


def open_text(path: str, documents: Mapping[str, Any] | None) -> str:
    """The editor's text of ``path`` if it is open there, else the file."""
    if documents:
        uri = Path(path).as_uri()
        for key in (uri, "file://" + path):
            doc = documents.get(key)
            text = getattr(doc, "text", None)
            if isinstance(text, str):
                return text
    try:
        return read_source(path)
    except TargetError as exc:
        raise LaunchError(str(exc)) from None


def choose_function(target_index: Any, path: str) -> str:
    """The function to trace when the launch names none: the first with an
    entry point (``__main__`` call, doctest...), or the only one."""
    functions = target_index.functions
    for entry in target_index.entries:
        if entry.call and any(f.qualname == entry.function for f in functions):
            return entry.function
    if len(functions) == 1:
        return functions[0].qualname
    if not functions:
        raise LaunchError(f"{path} defines no function to trace")
    names = ", ".join(f.qualname for f in functions[:12])
    raise LaunchError(f"launch: name the 'function' to trace in {os.path.basename(path)} (one of: {names})")


def prepare(config: LaunchConfig, settings: Settings, factory: EngineFactory, documents: Mapping[str, Any] | None,
            cancel: CancelToken, permission: Permission) -> Launched:
    """Resolve the target and build the engine and simulation (runs the
    tracer on exec/replay backends if ``permission`` allows: seconds; call
    off the reader thread)."""
    from neuraldbg.source.index import index_text

    text = open_text(config.program, documents)
    imagine = config.args == IMAGINE
    can_imagine = settings.backend in MODEL_BACKENDS
    if imagine and not can_imagine:
        raise LaunchError(f"the {settings.backend} backend runs the program for real and cannot imagine inputs: "
                          "pass 'args' as a call such as \"f([3, 4])\"")
    function = config.function or choose_function(index_text(text), config.program)
    try:
        target = resolve(config.program, function, None if imagine else config.args, source=text,
                         allow_imagined=can_imagine)
    except TargetError as exc:
        raise LaunchError(str(exc)) from None
    if imagine:
        target = replace(target, call="", call_origin="imagined")
    if settings.backend in ("exec", "replay") and target.index.holes:
        hole = target.index.holes[0]
        raise LaunchError(f"{os.path.basename(config.program)}:{hole.span.start_line + 1}: the file has a ?? hole; "
                          f"the {settings.backend} backend runs it for real and cannot (fill it, or use a model backend)")
    permission.check(settings.backend)  # last before the engine: nothing below may run code unchecked
    engine = factory.make(settings, source=target.source, index=target.index, function=target.function,
                          call=target.call, path=target.path, cancel=cancel)
    sim = Simulation(engine, function=target.function.qualname, call=target.call, max_frames=settings.max_frames)
    return Launched(config, settings, target, sim)
