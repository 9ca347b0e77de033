"""May this run execute the user's code here? One rule for every front end.

Which backends run the program for real (exec, replay), which can imagine
inputs (the model backends), and the refusals with their one-line messages.
A refusal carries a :class:`RefusalKind` so callers branch on the kind,
never on the text. Where the permission comes from differs by front end (the
workspace setting in the language server, the launch request for the
standalone debug adapter, always on the command line); only the advice on
how to allow it is the front end's: :class:`ExecutionPolicy` holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from neuraldbg.backends.base import BackendError
from neuraldbg.config import Settings
from neuraldbg.source.model import SourceIndex

RUNS_CODE = frozenset({"exec", "replay"})  # backends that run the user's program for real
MODEL_BACKENDS = frozenset({"local", "remote"})  # backends with a model (CWM), which can also imagine an input
MODEL_PATH = frozenset({"replay", "local", "remote"})  # backends whose frames come through the CWM codec


class RefusalKind(Enum):
    EXECUTION_NOT_ALLOWED = "execution-not-allowed"
    HOLE = "hole"  # a ?? hole: the file cannot run for real
    SYNTAX_ERROR = "syntax-error"
    CANNOT_IMAGINE = "cannot-imagine"  # no input, and the backend runs code for real


class Refused(BackendError):
    """A run the policy refuses; ``kind`` says why, the message says it to the user in one line."""

    def __init__(self, kind: RefusalKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def runs_code(backend: str) -> bool:
    return backend in RUNS_CODE


def imagines_inputs(backend: str) -> bool:
    return backend in MODEL_BACKENDS


def has_model(backend: str) -> bool:
    return backend in MODEL_BACKENDS


@dataclass(frozen=True)
class ExecutionPolicy:
    """The refusals of one front end; ``how_to_allow`` completes "running code is not allowed ..."."""

    how_to_allow: str
    where: str = "here"  # "running code is not allowed <where>"
    # The editor refuses while the user types; a command reports Python's own SyntaxError from the real run.
    refuse_syntax_errors: bool = False

    @staticmethod
    def workspace() -> "ExecutionPolicy":
        """The language server (and the debug adapter inside it): the workspace setting decides."""
        return ExecutionPolicy("enable the setting neuraldbg.allowExecution (trusted workspaces only)",
                               where="in this workspace", refuse_syntax_errors=True)

    @staticmethod
    def launch_request() -> "ExecutionPolicy":
        """The standalone debug adapter: no workspace, so the launch must say so itself."""
        return ExecutionPolicy("add \"allowExecution\": true to the launch configuration (only for code you trust)")

    @staticmethod
    def command_line() -> "ExecutionPolicy":
        """The user asked for the run on the command line."""
        return ExecutionPolicy("run it from the command line")

    def refusal(self, settings: Settings, index: SourceIndex | None = None) -> Refused | None:
        """Why a run of ``index``'s file on ``settings`` must not start (None:
        it may). What no permission can fix (a hole, a syntax error) is said first."""
        backend = settings.backend
        if not runs_code(backend):
            return None
        if index is not None and index.holes:
            line = index.holes[0].span.start_line + 1
            return Refused(RefusalKind.HOLE, f"the file has a ?? hole (line {line}): the {backend} backend runs the "
                                             "file for real and cannot run it (fill it first, or use a model backend)")
        if self.refuse_syntax_errors and index is not None and index.syntax_errors:
            line = index.syntax_errors[0].span.start_line + 1
            return Refused(RefusalKind.SYNTAX_ERROR,
                           f"fix the syntax error at line {line} first (the {backend} backend runs the file)")
        if not settings.allow_execution:
            return Refused(RefusalKind.EXECUTION_NOT_ALLOWED,
                           f"the {backend} backend runs your program for real and running code is not allowed "
                           f"{self.where}: {self.how_to_allow}, or use a model backend (local, remote)")
        return None

    def check(self, settings: Settings, index: SourceIndex | None = None) -> None:
        refused = self.refusal(settings, index)
        if refused is not None:
            raise refused

    @staticmethod
    def check_imagine(backend: str) -> None:
        if not imagines_inputs(backend):
            raise Refused(RefusalKind.CANNOT_IMAGINE,
                          f"the {backend} backend runs the program for real and cannot imagine inputs: "
                          "pass a call such as \"f([3, 4])\"")
