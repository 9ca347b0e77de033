"""Resolve what to trace: a file, a function in it and a call string.

Shared by the CLI and the debug adapter so that both give the same clear
one-line errors for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neuraldbg.source.model import FunctionInfo, SourceIndex

MAX_FILE_BYTES = 2_000_000  # beyond this we refuse rather than parse for seconds


class TargetError(ValueError):
    """Bad input from the user: the message is one line, shown as is."""


@dataclass(frozen=True)
class Target:
    path: str
    source: str
    index: SourceIndex
    function: FunctionInfo
    call: str  # "" means: let the model imagine the inputs
    call_origin: str  # "explicit", "doctest", "main", "pytest", "marker", "imagined"
    uri: str = ""  # the editor's document it was read from ("": the file on disk)
    setup: str = ""  # code run before the call, untraced, in the module's namespace (a doctest's earlier >>> lines)


def read_source(path: str) -> str:
    p = Path(path)
    if not p.exists():
        raise TargetError(f"no such file: {path}")
    if p.is_dir():
        raise TargetError(f"{path} is a directory, not a Python file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_source(data, path)


def decode_source(data: bytes, path: str = "<text>") -> str:
    if len(data) > MAX_FILE_BYTES:
        raise TargetError(f"{path} is {len(data) / 1e6:.1f} MB; neuraldbg traces files up to {MAX_FILE_BYTES / 1e6:.0f} MB")
    if b"\x00" in data:
        raise TargetError(f"{path} looks like a binary file (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TargetError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None
    return text


def split_spec(spec: str) -> tuple[str, str]:
    """``FILE::FUNC`` -> (file, qualname)."""
    if "::" not in spec:
        raise TargetError(f"expected FILE::FUNCTION, got {spec!r} (for example examples/strawberry.py::count_letter)")
    path, _, func = spec.rpartition("::")
    if not path or not func:
        raise TargetError(f"expected FILE::FUNCTION, got {spec!r}")
    return path, func


def resolve(path: str, qualname: str, call: str | None, *, source: str | None = None, allow_imagined: bool = False) -> Target:
    """Find ``qualname`` in the file and choose its input.

    Input order: the explicit call, then the file's entry points (marker with
    a call, doctest, ``__main__``, pytest); with ``allow_imagined`` (model
    backends) no input at all means the model imagines one. A doctest entry
    brings its set-up: the docstring's earlier examples.
    """
    from neuraldbg.source.calls import CallError, default_call_for, entry_setup, parse_call
    from neuraldbg.source.index import index_text

    text = read_source(path) if source is None else source
    index = index_text(text)
    fn = index.function(qualname)
    if fn is None:
        names = ", ".join(f.qualname for f in index.functions[:12]) or "none"
        more = "" if len(index.functions) <= 12 else ", …"
        raise TargetError(f"no function {qualname!r} in {path} (functions: {names}{more})")
    if call:
        try:
            return Target(path, text, index, fn, parse_call(call, fn), "explicit")
        except CallError as exc:
            raise TargetError(str(exc)) from None
    entry = default_call_for(index, fn.qualname)
    if entry is not None and entry.call:
        return Target(path, text, index, fn, entry.call, entry.kind, setup=entry_setup(text, entry))
    if allow_imagined:
        return Target(path, text, index, fn, "", "imagined")
    raise TargetError(
        f"no input for {qualname}: pass --call '{fn.name}(...)', or add a doctest example or a call under "
        f"if __name__ == '__main__'"
    )
