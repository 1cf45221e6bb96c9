"""Up-front checks for output paths, shared by the recorder and the results writers."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from ofer_live.errors import OutputError


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """Raise OutputError when ``path`` cannot be a new output file (folder missing, path is a folder).

    Missing parent folders are an error, not created: a typo should not silently make a new tree.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{what} path is a folder, not a file: {p}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{what} folder does not exist: {parent}")
    if not parent.is_dir():
        raise OutputError(f"{what} folder is not a folder: {parent}")
    return p


def open_output(path: str | Path, mode: str = "wb", what: str = "output", **kwargs) -> IO:
    """``open(path, mode)`` for writing, with errors turned into a one-line OutputError."""
    p = check_output_path(path, what)
    try:
        return open(p, mode, **kwargs)  # noqa: SIM115 - the caller owns the file
    except PermissionError:
        raise OutputError(f"cannot write {what} {p}: permission denied") from None
    except OSError as exc:
        raise OutputError(f"cannot write {what} {p}: {exc.strerror or exc}") from None
