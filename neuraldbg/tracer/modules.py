"""Where a file sits in its project: the dotted name Python imports it under
and the folders that go first on ``sys.path`` for that import.

Computed in the server process (the child only applies it). The package
root is Python's own rule: walk up while the folder has an ``__init__.py``
(``src/`` layouts need nothing more: ``src/pkg/mod.py`` is ``pkg.mod`` with
``src`` as the root). The project's other import roots (its own folder, a
``src/`` folder, a ``pyproject.toml``'s declared package folders) follow it,
so that the file's absolute imports of the project's other packages work as
they do when the project runs from its folder.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from typing import Any

FALLBACK_NAME = "program"  # a file whose name is no module name (my-script.py, <string>)
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")  # the first ancestor with one is the project


@dataclass(frozen=True)
class ModuleLocation:
    name: str  # dotted: "pkg.sub.mod"; "pkg" for pkg/__init__.py
    roots: tuple[str, ...]  # absolute folders for sys.path, the package root first


@dataclass(frozen=True)
class _Walk:
    parts: tuple[str, ...]
    root: str


def locate(path: str) -> ModuleLocation:
    """The module ``path`` is, as Python would import it; a path that is no
    file on disk (an unsaved buffer, ``<string>``) is a top-level module with
    no roots."""
    if not os.path.isfile(path):
        return ModuleLocation(_top_level_name(path), ())
    file = os.path.abspath(path)
    walk = _package_walk(file)
    roots = [walk.root]
    for extra in project_roots(walk.root):
        if extra not in roots:
            roots.append(extra)
    return ModuleLocation(".".join(walk.parts), tuple(roots))


def _package_walk(file: str) -> _Walk:
    folder = os.path.dirname(file)
    stem = os.path.splitext(os.path.basename(file))[0]
    parts: list[str] = [] if stem == "__init__" else [stem]
    root = folder
    while _is_package_dir(root):
        parts.insert(0, os.path.basename(root))
        parent = os.path.dirname(root)
        if parent == root:
            break
        root = parent
    if parts == [stem]:  # outside any package
        return _Walk((_top_level_name(file),), folder)
    if not parts or not all(part.isidentifier() for part in parts):  # my-script.py in a package: not importable
        return _Walk((FALLBACK_NAME,), folder)
    return _Walk(tuple(parts), root)


def _is_package_dir(folder: str) -> bool:
    return os.path.basename(folder).isidentifier() and os.path.isfile(os.path.join(folder, "__init__.py"))


def _top_level_name(path: str) -> str:
    """A module outside any package: its file's stem, unless that is no
    module name or ``__main__`` (whose guarded block must not run)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem if stem.isidentifier() and stem != "__main__" else FALLBACK_NAME


def project_roots(start: str) -> list[str]:
    """The import roots of the project around ``start``: its folder (the
    first ancestor with a project marker), its ``src/``, and the package
    folders its ``pyproject.toml`` declares; none outside a project."""
    project = _project_dir(start)
    if project is None:
        return []
    roots = [project]
    declared = _declared_roots(os.path.join(project, "pyproject.toml"))
    src = os.path.join(project, "src")
    for relative in declared or ([src] if os.path.isdir(src) else []):
        folder = os.path.normpath(os.path.join(project, relative))
        if os.path.isdir(folder) and folder not in roots and _inside(folder, project):
            roots.append(folder)
    return roots


def _project_dir(start: str) -> str | None:
    folder = start
    while True:
        if any(os.path.exists(os.path.join(folder, marker)) for marker in PROJECT_MARKERS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _inside(folder: str, project: str) -> bool:
    return folder == project or folder.startswith(project.rstrip(os.sep) + os.sep)


def _declared_roots(pyproject: str) -> list[str]:
    """Folders (relative to the project) that hold its packages, as its
    ``pyproject.toml`` says: setuptools' ``package-dir`` root and
    ``packages.find`` ``where``, Poetry's ``packages`` ``from``. A file that
    is missing or unreadable declares nothing."""
    try:
        with open(pyproject, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    tool = _table(data, "tool")
    setuptools = _table(tool, "setuptools")
    found: list[str] = []
    package_dir = _table(setuptools, "package-dir")
    if isinstance(package_dir.get(""), str):
        found.append(package_dir[""])
    where = _table(_table(setuptools, "packages"), "find").get("where")
    if isinstance(where, list):
        found += [w for w in where if isinstance(w, str)]
    poetry_packages = _table(tool, "poetry").get("packages")
    if isinstance(poetry_packages, list):
        found += [p["from"] for p in poetry_packages if isinstance(p, dict) and isinstance(p.get("from"), str)]
    return found


def _table(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}
