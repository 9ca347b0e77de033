"""A DAP ``launch`` request: checked arguments, the target, and its run
opened in the session. Every bad input becomes one clear :class:`LaunchError`.

Who may let a launch run the user's code (:func:`allowed`): inside the
language server, only the workspace's ``allowExecution`` setting (a client
can send any launch arguments, so they never raise it); standalone
(``neuraldbg dap``), only the launch request's own ``allowExecution: true``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from neuraldbg.backends.base import CancelToken
from neuraldbg.config import BACKENDS, Settings
from neuraldbg.session.policy import RefusalKind, Refused, imagines_inputs
from neuraldbg.session.runs import Run
from neuraldbg.session.session import Session
from neuraldbg.simulation.simulation import Simulation
from neuraldbg.simulation.target import Target, TargetError, read_source, resolve

IMAGINE = "imagine"


class LaunchError(ValueError):
    """Bad launch arguments or a target that cannot be traced (one line)."""


@dataclass(frozen=True)
class LaunchConfig:
    program: str  # absolute path
    function: str | None
    args: str | None  # a call string, "imagine", or None (the file's entry points)
    stop_on_entry: bool
    settings: dict[str, Any]  # camelCase keys for Settings.merged (never allowExecution: see allowed())
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


def allowed(config: LaunchConfig, base: Settings, standalone: bool) -> bool:
    """May this launch run the user's program? Inside the language server
    only its workspace setting decides (a client can send any launch
    arguments, so they never raise it); standalone, only the launch's own
    ``allowExecution: true``. The session's policy then refuses or not."""
    return config.allow_execution if standalone else base.allow_execution


@dataclass
class Launched:
    config: LaunchConfig
    run: Run

    @property
    def settings(self) -> Settings:
        return self.run.settings

    @property
    def target(self) -> Target:
        return self.run.target

    @property
    def sim(self) -> Simulation:
        return self.run.simulation


def settings_for(config: LaunchConfig, base: Settings, standalone: bool) -> Settings:
    settings, problems = base.merged(config.settings)
    if problems:
        raise LaunchError("launch: " + "; ".join(problems))
    return replace(settings, allow_execution=allowed(config, base, standalone))


def open_text(path: str, session: Session) -> tuple[str, str]:
    """(text, uri): the editor's text of ``path`` if it is open in the
    session, else the file ("" as uri)."""
    uri = Path(path).as_uri()
    for key in (uri, "file://" + path):
        doc = session.documents.get(key)
        text = getattr(doc, "text", None)
        if isinstance(text, str):
            return text, key
    try:
        return read_source(path), ""
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


def prepare(config: LaunchConfig, settings: Settings, session: Session, cancel: CancelToken, *,
            standalone: bool) -> Launched:
    """Resolve the target and open its run in the session (on exec/replay
    the session's real run of this input when it has one, else a new one:
    seconds; call off the reader thread)."""
    from neuraldbg.source.index import index_text

    text, uri = open_text(config.program, session)
    imagine = config.args == IMAGINE
    can_imagine = imagines_inputs(settings.backend)
    if imagine and not can_imagine:
        raise LaunchError(f"the {settings.backend} backend runs the program for real and cannot imagine inputs: "
                          "pass 'args' as a call such as \"f([3, 4])\"")
    function = config.function or choose_function(index_text(text), config.program)
    try:
        target = resolve(config.program, function, None if imagine else config.args, source=text,
                         allow_imagined=can_imagine)
    except TargetError as exc:
        raise LaunchError(str(exc)) from None
    target = replace(target, uri=uri, **({"call": "", "call_origin": "imagined"} if imagine else {}))
    try:
        run = session.open_run(target, settings, cancel=cancel)
    except Refused as exc:
        if exc.kind is not RefusalKind.EXECUTION_NOT_ALLOWED:
            raise LaunchError(f"{os.path.basename(config.program)}: {exc}") from None
        # A client can send any launch arguments: inside the server they never raise the permission.
        tail = "" if standalone else " (a launch configuration's \"allowExecution\" cannot override the workspace setting)"
        raise LaunchError(f"launch: {exc}{tail}") from None
    return Launched(config, run)
