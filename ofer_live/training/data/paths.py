"""Where the training data lives: ``--data``, else ``$OFER_DATA``, else ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

from ofer_live.config import PACKAGE_DIR

DEFAULT_DATA = "../shared/data"
ENV_DATA = "OFER_DATA"


def resolve_data_root(value: str | os.PathLike | None = None) -> Path:
    """--data, else $OFER_DATA, else ../shared/data (relative to the working directory, then to the repository).

    The folder need not exist: a run whose caches are already built does not read it.
    """
    if value:
        return Path(value).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    here = Path(DEFAULT_DATA)
    if here.is_dir():
        return here
    repo_relative = (PACKAGE_DIR.parent / DEFAULT_DATA).resolve()
    return repo_relative if repo_relative.is_dir() else here
