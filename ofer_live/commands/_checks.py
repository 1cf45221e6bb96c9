"""Up-front checks shared by the commands (so a run fails before the models load, not after)."""

from __future__ import annotations

import os
from pathlib import Path

from ofer_live.errors import OutputError


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Raise OutputError (one line) unless ``path`` can be created or overwritten; return it as a Path.

    Nothing is created: the folder must exist and be writable, and ``path`` must not be a folder.
    """
    path = Path(path).expanduser()
    if str(path) in ("", "."):
        raise OutputError(f"{what} path is empty")
    if path.is_dir():
        raise OutputError(f"cannot write {what} {path}: it is a folder")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"cannot write {what} {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"cannot write {what} {path}: {parent} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {what} {path}: permission denied")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {path}: folder {parent} is not writable")
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when both paths name the same existing file, or the same path when they do not exist."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        return False
    return a.resolve() == b.resolve()
