"""Reading still images robustly: alpha, 16-bit, gray, tiny and huge images.

``read_image(path)`` always returns a BGR uint8 image:
- RGBA / gray+alpha: composited on a neutral mid-gray background (``ALPHA_BACKGROUND_BGR``), so a
  transparent cut-out neither turns black nor white;
- 16-bit (and 32-bit) images: scaled by full range (65535 -> 255); float images: 0..1 -> 0..255;
- gray: replicated to BGR;
- a 1x1 image is fine (the detector simply finds no face);
- very large images (e.g. 10000x10000): shrunk with INTER_AREA so the longer side is at most
  ``MAX_SIDE`` (4096) before anything else sees them. ``load_image`` also returns the scale, so
  boxes found on the shrunk image map back to the original: ``original = box / scale``.
  4096 keeps any face that BlazeFace short-range could find (it works on a 128x128 letterbox of
  the whole image) at full quality for alignment, and bounds memory at ~50 MB per image.
Unreadable files raise InputError with a one-line reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ofer_live.errors import InputError

logger = logging.getLogger(__name__)

MAX_SIDE = 4096
ALPHA_BACKGROUND_BGR: tuple[int, int, int] = (128, 128, 128)
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
        ".jp2",
        ".avif",
    }
)


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """image: (H, W, 3) BGR uint8 (possibly shrunk); scale: image size / original size (<= 1);
    original_size: (width, height) of the file's image."""

    image: np.ndarray
    scale: float
    original_size: tuple[int, int]


def to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """image: (H, W), (H, W, 1|2|3|4) of uint8/uint16/int/float -> (H, W, 3) BGR uint8.

    Alpha is composited on ``ALPHA_BACKGROUND_BGR``; integer images wider than 8 bits are scaled
    by their type's full range; float images are taken as 0..1.
    """
    img = image
    if img.dtype == np.uint8:
        pass
    elif img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        img = np.clip(img.astype(np.float64) / max(info.max, 1) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif np.issubdtype(img.dtype, np.floating):
        img = np.clip(np.nan_to_num(img.astype(np.float64)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3:
        raise ValueError(f"unsupported image shape {image.shape}")
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 2:  # gray + alpha
        gray, alpha = img[:, :, 0], img[:, :, 1]
        return _composite(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), alpha)
    if channels == 3:
        return np.ascontiguousarray(img)
    if channels == 4:
        return _composite(np.ascontiguousarray(img[:, :, :3]), img[:, :, 3])
    raise ValueError(f"unsupported number of channels: {channels}")


def _composite(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """bgr: (H, W, 3) uint8, alpha: (H, W) uint8 -> (H, W, 3) uint8 over ALPHA_BACKGROUND_BGR."""
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    bg = np.array(ALPHA_BACKGROUND_BGR, dtype=np.float32)
    return (bgr.astype(np.float32) * a + bg * (1.0 - a) + 0.5).astype(np.uint8)


def check_input_file(path: Path, what: str = "image") -> None:
    """Raise InputError when ``path`` is missing, a folder, unreadable or empty."""
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if path.is_dir():
        raise InputError(f"{what} path is a folder, not a file: {path}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    if size == 0:
        raise InputError(f"{what} file is empty: {path}")


def load_image(path: str | Path, max_side: int = MAX_SIDE) -> LoadedImage:
    """Read an image file -> LoadedImage (BGR uint8, shrunk to ``max_side`` if needed). Raises InputError."""
    path = Path(path)
    check_input_file(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths, unlike cv2.imread
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror}") from None
    try:
        raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"cannot decode image {path}: {str(exc).strip().splitlines()[-1]}") from None
    if raw is None or raw.size == 0:
        raise InputError(f"not a readable image (unknown format or corrupt): {path}")
    h, w = raw.shape[:2]
    scale = 1.0
    if max(h, w) > max_side:  # shrink first (fewer pixels to convert), keeping the exact scale
        size = (max(1, round(w * max_side / max(h, w))), max(1, round(h * max_side / max(h, w))))
        try:
            raw = cv2.resize(raw, size, interpolation=cv2.INTER_AREA)
        except cv2.error as exc:
            raise InputError(f"cannot shrink image {path}: {str(exc).strip().splitlines()[-1]}") from None
        scale = size[0] / w if w >= h else size[1] / h
        logger.info("%s: %dx%d image shrunk to %dx%d for detection", path, w, h, size[0], size[1])
    try:
        bgr = to_bgr_uint8(raw)
    except ValueError as exc:
        raise InputError(f"cannot use image {path}: {exc}") from None
    return LoadedImage(image=bgr, scale=scale, original_size=(w, h))


def read_image(path: str | Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """Read an image file -> (H, W, 3) BGR uint8 (see ``load_image``; boxes are in the returned image's pixels)."""
    return load_image(path, max_side).image


def is_image_path(path: str | Path) -> bool:
    """True when the file name has an image extension."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def iter_image_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a list of image paths.

    Folders are searched recursively for files with an image extension (hidden files and folders
    skipped), sorted by path. Files named explicitly are kept whatever their extension, and so are
    paths that do not exist, so the caller reports them as errors (``read_image`` raises InputError).
    Order: the arguments' order, each folder's files sorted; duplicates removed.
    """
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve() if p.exists() else p
        if key not in seen:
            seen.add(key)
            out.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = [
                f
                for f in p.rglob("*")
                if f.is_file() and is_image_path(f) and not any(part.startswith(".") for part in f.relative_to(p).parts)
            ]
            for f in sorted(found):
                add(f)
        else:
            add(p)
    return out
