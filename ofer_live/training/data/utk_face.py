"""UTKFace loader: roughly aligned 200x200 colour faces, no expression labels.

File names are ``age_gender_race_date.jpg`` (some files in the public release lack a field; they
are still used, only their attributes read as None). The split into train / held-out is a fixed
function of the file name (a hash), so every run and the evaluation agree on which faces were
never trained on, independent of listing order or of how many files a copy holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ofer_live.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_HOLDOUT_FRACTION = 0.1


@dataclass(frozen=True)
class UtkAttributes:
    age: int | None
    gender: int | None  # 0 male, 1 female (UTKFace convention)
    race: int | None  # 0 white, 1 black, 2 asian, 3 indian, 4 others


def parse_utk_name(name: str) -> UtkAttributes:
    """``'25_1_3_20170104.jpg'`` -> UtkAttributes(25, 1, 3); missing/garbled fields are None."""
    stem = Path(name).name.split(".")[0]
    parts = stem.split("_")
    if len(parts) < 4:  # a field is missing: only the leading ones that precede the date can be trusted
        parts = parts[:-1]
    limits = (200, 1, 4)
    values: list[int | None] = []
    for i in range(3):
        try:
            value = int(parts[i])
        except (IndexError, ValueError):
            value = None
        values.append(value if value is not None and 0 <= value <= limits[i] else None)
    return UtkAttributes(*values)


def utkface_dir(root: str | Path) -> Path:
    """The UTKFace folder under a data root (accepts the data root or the folder itself)."""
    root = Path(root)
    for candidate in (root / "utkface", root):
        if candidate.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in candidate.iterdir()):
            return candidate
    raise InputError(f"UTKFace images not found: expected JPEG files in {root / 'utkface'}")


def list_utkface(root: str | Path) -> list[Path]:
    """All UTKFace image paths, sorted by name."""
    folder = utkface_dir(root)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_heldout(name: str, fraction: float = DEFAULT_HOLDOUT_FRACTION) -> bool:
    """Deterministic held-out membership of a file name (sha1 of the base name)."""
    digest = hashlib.sha1(Path(name).name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def split_utkface(paths: list[Path], fraction: float = DEFAULT_HOLDOUT_FRACTION) -> tuple[list[Path], list[Path]]:
    """paths -> (train, heldout) by ``is_heldout``."""
    train = [p for p in paths if not is_heldout(p.name, fraction)]
    held = [p for p in paths if is_heldout(p.name, fraction)]
    return train, held


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); gray is replicated; raise InputError if unreadable."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
