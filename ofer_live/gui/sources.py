"""Source specs and output folders as the app presents them (Qt-free).

A source spec is what ``ofer_live.io.open_source`` takes: ``camera:N``, ``demo`` or a file path.
The app adds ``auto``: the first working camera, else the demo clip.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from pathlib import Path

AUTO = "auto"
DEMO = "demo"
_CAMERA_RE = re.compile(r"^camera:(\d+)$")


def camera_index(spec: str) -> int | None:
    """The N of ``camera:N``, else None."""
    match = _CAMERA_RE.match(spec.strip())
    return int(match.group(1)) if match else None


def list_cameras(max_index: int = 9, sysfs: str = "/sys/class/video4linux") -> list[int]:
    """Camera indices worth offering (no device is opened).

    Linux: the /dev/videoN nodes that capture video. A webcam has two nodes, one for frames and one for metadata;
    sysfs numbers them (``index`` 0 is the capture node), so metadata nodes, which never open as a camera, are
    left out. Elsewhere: 0 and 1 (opening is the only probe there).
    """
    if sys.platform.startswith("linux"):
        found = []
        for node in glob.glob("/dev/video*"):
            match = re.match(r"^/dev/video(\d+)$", node)
            if not match or int(match.group(1)) > max_index:
                continue
            index_file = os.path.join(sysfs, f"video{match.group(1)}", "index")
            try:
                with open(index_file, encoding="ascii") as handle:
                    if handle.read().strip() not in ("", "0"):
                        continue  # a metadata node
            except OSError:
                pass  # no sysfs entry: keep it
            found.append(int(match.group(1)))
        return sorted(found)
    return [0, 1]


def describe_source(spec: str) -> str:
    """Short human name of a source spec, for the chooser, messages and the window title."""
    if spec == DEMO or spec.startswith("demo:"):
        return "Demo clip"
    if spec == AUTO:
        return "First working camera"
    index = camera_index(spec)
    if index is not None:
        return f"Camera {index}"
    return Path(spec).name or spec


def normalize_source(spec: str) -> str:
    """Canonical form of a user-given spec: camera:N, demo, demo:N, auto, or an absolute file path (the grammar
    is ``io.sources.parse_source``'s; InputError for a malformed camera or demo spec)."""
    from ofer_live.io.sources import parse_source

    if spec.strip().lower() == AUTO:
        return AUTO
    return parse_source(spec).canonical


def default_output_dir() -> Path:
    """Where recordings and snapshots go unless the user chose a folder."""
    videos = Path.home() / "Videos"
    return (videos if videos.is_dir() else Path.home()) / "ofer_live"


def timestamped_stem(prefix: str = "ofer_live", directory: Path | None = None) -> str:
    """``prefix_YYYYmmdd_HHMMSS``, with ``_2``, ``_3``... appended while files with that stem exist in ``directory``."""
    stem = f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}"
    if directory is None:
        return stem
    candidate, n = stem, 1
    while any(directory.glob(glob.escape(candidate) + ".*")) or any(directory.glob(glob.escape(candidate) + "_*.*")):
        n += 1
        candidate = f"{stem}_{n}"
    return candidate
