"""Up-front checks for output paths, shared by the commands, the recorder and the results writers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO

from ofer_live.errors import OutputError


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """Raise OutputError (one line) unless ``path`` can be created or overwritten as a file; return it as a Path.

    Nothing is created: the folder must exist and be writable, and ``path`` must not be a folder.
    Missing parent folders are an error, not created: a typo should not silently make a new tree.
    """
    p = Path(path).expanduser()
    if str(p) in ("", "."):
        raise OutputError(f"{what} path is empty")
    if p.is_dir():
        raise OutputError(f"{what} path is a folder, not a file: {p}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{what} folder does not exist: {parent}")
    if not parent.is_dir():
        raise OutputError(f"{what} folder is not a folder: {parent}")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"cannot write {what} {p}: permission denied")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {p}: permission denied (folder {parent} is not writable)")
    return p


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when both paths name the same existing file, or the same path when they do not exist."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        return False
    return a.resolve() == b.resolve()


def open_output(path: str | Path, mode: str = "wb", what: str = "output", **kwargs) -> IO:
    """``open(path, mode)`` for writing, with errors turned into a one-line OutputError."""
    p = check_output_path(path, what)
    try:
        return open(p, mode, **kwargs)  # noqa: SIM115 - the caller owns the file
    except PermissionError:
        raise OutputError(f"cannot write {what} {p}: permission denied") from None
    except OSError as exc:
        raise OutputError(f"cannot write {what} {p}: {exc.strerror or exc}") from None


def check_output_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove it is writable (a real test file); raise OutputError otherwise.

    Done before any recording starts, so an unwritable folder is refused up front with a message.
    """
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"cannot use output folder {path}: {reason}") from None
    if not path.is_dir():
        raise OutputError(f"cannot use output folder {path}: not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ofer_live_write_test_", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"output folder {path} is not writable: {reason}") from None
    return path.resolve()
