"""Compact training caches: aligned faces in one ``.npz`` per data set, so a run can carry its data along.

Layout of ``<cache_dir>`` (default ``./cache``, git-ignored)::

    ferplus_train_64_jpeg95.npz   FER+ train, aligned to the run-time template at 64 px, gray
    ferplus_valid_64_jpeg95.npz   FER+ valid
    utkface_112_jpeg95.npz        UTKFace, aligned at the face size S (112 for the default preset), colour
    occluders.npz                 every occluder cut-out (PNG bytes), kinds, MaskTheFace anchors
    folder_<name>_<hash>_112_jpeg95.npz   a user data set (RAF-DB / AffectNet / KDEF folders or CSV)

Every face file holds the faces (``faces`` uint8 (N, H, W[, 3]) for ``encoding='raw'``, or ``faces_blob`` +
``faces_offsets``: image bytes for ``'jpeg'`` / ``'webp'`` / ``'png'``), per-face arrays (labels, votes, names,
...) and a
JSON ``meta`` string (cache version, source, template, alignment statistics). No pickles: everything loads with
``np.load(allow_pickle=False)``. Datasets resize faces to the training size on the fly, so one FER cache serves
every preset (FER2013 holds 48 px of information; 64 px in the template framing keeps all of it).

Alignment (so train-time crops match run-time crops):
- every face is run through the run-time detector (``ofer_live.face.detector``) and warped onto the run-time
  template with ``ofer_live.face.align.align_face``;
- FER2013 faces (48 px, pre-cropped, framing varies: eye distance 0.28-0.41 of the crop) are upscaled 48 -> 128
  before detection (99.5 % found); the template was measured on FER+ (eye distance 0.37 S), so a median FER face
  maps at about 48 -> 48 px and the 64 px store keeps all of its detail; pixels outside the crop are edge-replicated
  by ``align_face``;
- UTKFace (200 px, already aligned by its authors with a looser crop: eye distance 0.40 of the image) is re-aligned
  the same way (100 % found in a probe), because its framing differs from the template's;
- when the detector misses a face, or its keypoints are implausible (eye distance off by more than 40 % or eye
  centre more than 20 % of the image away from the data set's median), the data set's median keypoints are used
  instead: the ``aligned`` array records which faces had their own keypoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ofer_live.errors import InputError, OutputError
from ofer_live.face.crops import CropAligner
from ofer_live.training.data.fer_plus import load_ferplus
from ofer_live.training.data.folders import load_folder_dataset
from ofer_live.training.data.occluders import OccluderBank, load_occluders, pack_occluders, unpack_occluders
from ofer_live.training.data.utk_face import is_heldout, list_utkface, read_rgb

log = logging.getLogger(__name__)

CACHE_VERSION = 1
ENCODINGS: tuple[str, ...] = ("jpeg", "webp", "png", "raw")
DEFAULT_ENCODING = "jpeg"
DEFAULT_QUALITY = 95
FER_STORE_SIZE = 64
FER_DETECT_SIZE = 128


# ---------------------------------------------------------------------------------------------------------------
# Face storage
# ---------------------------------------------------------------------------------------------------------------


class FaceStore:
    """N faces of one shape, raw or encoded. ``store[i] -> (H, W, 3) uint8 RGB`` (gray faces replicated).

    ``channels`` is 1 for gray data sets (stored once, replicated on read) or 3 (RGB).
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        encoding: str,
        faces: np.ndarray | None = None,
        blob: np.ndarray | None = None,
        offsets: np.ndarray | None = None,
    ) -> None:
        if encoding not in ENCODINGS:
            raise InputError(f"unknown face encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
        self.shape = tuple(int(v) for v in shape)
        self.encoding = encoding
        self.faces = faces
        self.blob = blob
        self.offsets = offsets
        if encoding == "raw" and faces is None:
            raise InputError("raw face store without faces")
        if encoding != "raw" and (blob is None or offsets is None):
            raise InputError("encoded face store without its byte blob")

    @property
    def channels(self) -> int:
        return self.shape[2]

    @property
    def size(self) -> int:
        return self.shape[0]

    def __len__(self) -> int:
        return int(self.faces.shape[0]) if self.encoding == "raw" else int(len(self.offsets) - 1)

    def raw(self, index: int) -> np.ndarray:
        """-> (H, W) uint8 for gray stores, (H, W, 3) RGB for colour stores."""
        if self.encoding == "raw":
            return self.faces[index]
        data = self.blob[self.offsets[index] : self.offsets[index + 1]]
        flag = cv2.IMREAD_GRAYSCALE if self.channels == 1 else cv2.IMREAD_COLOR
        image = cv2.imdecode(data, flag)
        if image is None:
            raise InputError(f"cached face {index} cannot be decoded")
        return image if self.channels == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def __getitem__(self, index: int) -> np.ndarray:
        image = self.raw(int(index))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        return image

    def get(self, index: int, size: int | None = None) -> np.ndarray:
        """-> (size, size, 3) uint8 RGB, resized (area when shrinking, cubic when growing)."""
        image = self[index]
        if size is None or size == image.shape[0]:
            return image
        interp = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_CUBIC
        return cv2.resize(image, (size, size), interpolation=interp)

    def batch(self, indices: Iterable[int], size: int | None = None) -> np.ndarray:
        """-> (N, size, size, 3) uint8."""
        items = [self.get(i, size) for i in indices]
        s = size or self.shape[0]
        return np.stack(items) if items else np.zeros((0, s, s, 3), np.uint8)

    @classmethod
    def encode(
        cls, faces: Sequence[np.ndarray], encoding: str = DEFAULT_ENCODING, quality: int = DEFAULT_QUALITY
    ) -> FaceStore:
        """faces: sequence of (H, W) gray or (H, W, 3) RGB uint8, all one shape -> FaceStore."""
        if encoding not in ENCODINGS:
            raise InputError(f"unknown face encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
        if not len(faces):
            raise InputError("no faces to store")
        first = faces[0]
        shape = (first.shape[0], first.shape[1], 1 if first.ndim == 2 else 3)
        if encoding == "raw":
            return cls(shape, "raw", faces=np.ascontiguousarray(np.stack(faces)))
        ext, params = {
            "jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]),
            "webp": (".webp", [cv2.IMWRITE_WEBP_QUALITY, int(quality)]),  # about 40 % smaller than JPEG (data packs)
            "png": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 6]),
        }[encoding]
        chunks = []
        for face in faces:
            image = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(ext, image, params)
            if not ok:
                raise OutputError(f"cannot encode a face as {encoding}")
            chunks.append(buf.reshape(-1))
        offsets = np.cumsum([0] + [c.size for c in chunks]).astype(np.int64)
        return cls(shape, encoding, blob=np.concatenate(chunks), offsets=offsets)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"faces_shape": np.asarray(self.shape, dtype=np.int64), "faces_encoding": np.asarray(self.encoding)}
        if self.encoding == "raw":
            arrays["faces"] = self.faces
        else:
            arrays["faces_blob"] = self.blob
            arrays["faces_offsets"] = self.offsets
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any) -> FaceStore:
        encoding = str(arrays["faces_encoding"])
        shape = tuple(int(v) for v in arrays["faces_shape"])
        if encoding == "raw":
            return cls(shape, encoding, faces=arrays["faces"])
        return cls(shape, encoding, blob=arrays["faces_blob"], offsets=arrays["faces_offsets"])

    @property
    def nbytes(self) -> int:
        return int(self.faces.nbytes if self.encoding == "raw" else self.blob.nbytes + self.offsets.nbytes)


# ---------------------------------------------------------------------------------------------------------------
# Alignment onto the run-time template
# ---------------------------------------------------------------------------------------------------------------


def template_fingerprint() -> str:
    """A short hash of the run-time template (cache files record it; a changed template rebuilds them)."""
    from ofer_live.training.data.template import template_keypoints

    return hashlib.sha1(np.round(template_keypoints(), 5).tobytes()).hexdigest()[:12]


@dataclass
class AlignStats:
    total: int = 0
    detected: int = 0
    fallback: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "detected": self.detected, "fallback": self.fallback}


def plausible(kps: np.ndarray, median: np.ndarray, image_size: float) -> bool:
    """Keypoints (6, 2) close enough to the data set's median to trust (eye distance within 40 %, eye centre within
    20 % of the image size)."""
    d = np.linalg.norm(kps[1] - kps[0])
    dm = np.linalg.norm(median[1] - median[0])
    if not (0.6 * dm <= d <= 1.4 * dm):
        return False
    shift = np.linalg.norm((kps[0] + kps[1]) / 2 - (median[0] + median[1]) / 2)
    return bool(shift <= 0.2 * image_size)


def align_all(
    images: Callable[[int], np.ndarray],
    n: int,
    size: int,
    aligner: CropAligner,
    gray: bool,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray], np.ndarray, AlignStats]:
    """Detect every face, then warp each one (own keypoints if plausible, else the median keypoints).

    images(i) -> (H, W, 3) uint8 RGB; -> (aligned faces: (size, size) gray or (size, size, 3) RGB, aligned flags (n,)
    bool, stats). The median is taken over faces of the most common image size.
    """
    kps: list[np.ndarray | None] = []
    shapes = []
    for i in range(n):
        rgb = images(i)
        shapes.append(rgb.shape[:2])
        kps.append(aligner.keypoints(rgb))
        if progress:
            progress(1)
    found = [k for k in kps if k is not None]
    if not found:
        raise InputError("the face detector found no face in this data set; cannot align it")
    median = np.median(np.stack(found), axis=0).astype(np.float32)
    faces: list[np.ndarray] = []
    own = np.zeros(n, dtype=bool)
    stats = AlignStats(total=n)
    for i in range(n):
        rgb = images(i)
        k = kps[i]
        ok = k is not None and plausible(k, median, float(max(rgb.shape[:2])))
        if ok:
            stats.detected += 1
        else:
            stats.fallback += 1
            k = (
                median
                * np.array([rgb.shape[1], rgb.shape[0]], np.float32)
                / np.array([shapes[0][1], shapes[0][0]], np.float32)
                if rgb.shape[:2] != shapes[0]
                else median
            )
        own[i] = ok
        aligned = aligner.align(rgb, k, size)
        faces.append(cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY) if gray else aligned)
        if progress:
            progress(1)
    return faces, own, stats


ALIGN_MODES: tuple[str, ...] = ("detect", "none")


def _prepare_faces(
    images: Callable[[int], np.ndarray],
    n: int,
    size: int,
    gray: bool,
    align: str,
    desc: str,
    detect_size: int | None,
    pad: float,
) -> tuple[list[np.ndarray], np.ndarray, AlignStats]:
    """``align='detect'``: ``align_all`` with the run-time detector; ``'none'``: plain resize (faces already framed
    like the template, or synthetic test data)."""
    if align not in ALIGN_MODES:
        raise InputError(f"unknown align mode {align!r}; expected one of {', '.join(ALIGN_MODES)}")
    bar = _progress(2 * n if align == "detect" else n, desc)
    try:
        if align == "detect":
            with CropAligner(detect_size=detect_size, pad=pad) as aligner:
                return align_all(images, n, size, aligner, gray=gray, progress=bar.update)
        faces = []
        for i in range(n):
            rgb = images(i)
            interp = cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_CUBIC
            face = cv2.resize(rgb, (size, size), interpolation=interp)
            faces.append(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY) if gray else face)
            bar.update(1)
        return faces, np.zeros(n, dtype=bool), AlignStats(total=n, fallback=n)
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------------------------
# Cache files
# ---------------------------------------------------------------------------------------------------------------


def _tag(encoding: str, quality: int) -> str:
    return f"{encoding}{quality}" if encoding in ("jpeg", "webp") else encoding


def ferplus_cache_path(
    cache_dir: Path,
    split: str,
    size: int = FER_STORE_SIZE,
    encoding: str = DEFAULT_ENCODING,
    quality: int = DEFAULT_QUALITY,
) -> Path:
    return Path(cache_dir) / f"ferplus_{split}_{size}_{_tag(encoding, quality)}.npz"


def utkface_cache_path(
    cache_dir: Path, size: int, encoding: str = DEFAULT_ENCODING, quality: int = DEFAULT_QUALITY
) -> Path:
    return Path(cache_dir) / f"utkface_{size}_{_tag(encoding, quality)}.npz"


def occluders_cache_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / "occluders.npz"


def folder_cache_path(
    cache_dir: Path, source: Path, size: int, encoding: str = DEFAULT_ENCODING, quality: int = DEFAULT_QUALITY
) -> Path:
    digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:8]
    return Path(cache_dir) / f"folder_{Path(source).stem}_{digest}_{size}_{_tag(encoding, quality)}.npz"


def _write(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, meta=np.asarray(json.dumps(meta)), **arrays)
        tmp.replace(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write cache ({exc.strerror or exc})") from None
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a cache ``.npz`` (``meta`` included); InputError when the file cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable cache file ({exc})") from None


def read_meta(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def _base_meta(kind: str, source: str, size: int, encoding: str, quality: int) -> dict[str, Any]:
    return {
        "cache_version": CACHE_VERSION,
        "kind": kind,
        "source": source,
        "size": size,
        "encoding": encoding,
        "quality": quality,
        "template": template_fingerprint(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def is_current(path: Path, align: str | None = None) -> bool:
    """True when ``path`` exists and was built by this cache version with the current template (and, when given,
    the same ``align`` mode)."""
    if not Path(path).is_file():
        return False
    try:
        meta = read_meta(path)
    except (OSError, ValueError, KeyError):
        return False
    if align is not None and meta.get("align", align) != align:
        return False
    return meta.get("cache_version") == CACHE_VERSION and meta.get("template") == template_fingerprint()


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False, mininterval=2.0)


@dataclass
class FerPlusCache:
    """A cached FER+ split: faces aligned at ``store.size``; labels as in ``ferplus.FerPlusSplit``."""

    store: FaceStore
    labels: np.ndarray  # (N,) int64, -1 dropped
    soft: np.ndarray  # (N, 7) float32
    votes: np.ndarray  # (N, 10) uint8
    names: np.ndarray
    aligned: np.ndarray  # (N,) bool: own keypoints used
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.store)

    @property
    def is_face(self) -> np.ndarray:
        """(N,) bool: not voted "not a face" (NF) by the majority."""
        return self.votes[:, 9] * 2 < self.votes.sum(axis=1).clip(min=1)


def build_ferplus_cache(
    data_root: Path,
    split: str,
    cache_dir: Path,
    size: int = FER_STORE_SIZE,
    encoding: str = DEFAULT_ENCODING,
    quality: int = DEFAULT_QUALITY,
    align: str = "detect",
) -> Path:
    """Align a FER+ split and write its cache; returns the path."""
    t0 = time.time()
    data = load_ferplus(data_root, split)
    n = len(data)

    def image(i: int) -> np.ndarray:
        return np.repeat(data.images[i][..., None], 3, axis=2)

    faces, own, stats = _prepare_faces(image, n, size, True, align, f"cache FER+ {split}", FER_DETECT_SIZE, 0.0)
    store = FaceStore.encode(faces, encoding, quality)
    meta = _base_meta("ferplus", f"ferplus/{split}.npz", size, encoding, quality)
    meta.update(split=split, align=align, align_stats=stats.as_dict(), build_seconds=round(time.time() - t0, 1))
    arrays = dict(
        store.to_arrays(),
        labels=data.labels.astype(np.int8),
        soft=data.soft.astype(np.float16),
        votes=data.votes.astype(np.uint8),
        names=data.names.astype(str),
        aligned=own,
    )
    path = _write(ferplus_cache_path(cache_dir, split, size, encoding, quality), arrays, meta)
    log.info(
        "FER+ %s cache: %s (%d faces, %.1f MB, %.0f s)", split, path, n, path.stat().st_size / 1e6, time.time() - t0
    )
    return path


def load_ferplus_cache(path: Path) -> FerPlusCache:
    arrays = _read_arrays(path)
    return FerPlusCache(
        store=FaceStore.from_arrays(arrays),
        labels=arrays["labels"].astype(np.int64),
        soft=arrays["soft"].astype(np.float32),
        votes=arrays["votes"],
        names=arrays["names"],
        aligned=arrays["aligned"],
        meta=json.loads(str(arrays["meta"])),
    )


@dataclass
class UtkCache:
    store: FaceStore
    names: np.ndarray
    heldout: np.ndarray  # (N,) bool, fixed by file name (utkface.is_heldout)
    aligned: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.store)

    def indices(self, heldout: bool) -> np.ndarray:
        return np.flatnonzero(self.heldout == heldout)


def build_utkface_cache(
    data_root: Path,
    cache_dir: Path,
    size: int,
    encoding: str = DEFAULT_ENCODING,
    quality: int = DEFAULT_QUALITY,
    holdout_fraction: float = 0.1,
    align: str = "detect",
) -> Path:
    t0 = time.time()
    paths = list_utkface(data_root)
    cache: dict[int, np.ndarray] = {}

    def image(i: int) -> np.ndarray:  # read each file once per pass, keep only the current one
        if i not in cache:
            cache.clear()
            cache[i] = read_rgb(paths[i])
        return cache[i]

    faces, own, stats = _prepare_faces(image, len(paths), size, False, align, "cache UTKFace", None, 0.0)
    store = FaceStore.encode(faces, encoding, quality)
    meta = _base_meta("utkface", "utkface/", size, encoding, quality)
    meta.update(
        align=align,
        align_stats=stats.as_dict(),
        holdout_fraction=holdout_fraction,
        build_seconds=round(time.time() - t0, 1),
    )
    names = np.asarray([p.name for p in paths])
    held = np.asarray([is_heldout(p.name, holdout_fraction) for p in paths], dtype=bool)
    arrays = dict(store.to_arrays(), names=names, heldout=held, aligned=own)
    path = _write(utkface_cache_path(cache_dir, size, encoding, quality), arrays, meta)
    log.info(
        "UTKFace cache: %s (%d faces, %.1f MB, %.0f s)", path, len(paths), path.stat().st_size / 1e6, time.time() - t0
    )
    return path


def load_utkface_cache(path: Path) -> UtkCache:
    arrays = _read_arrays(path)
    return UtkCache(
        FaceStore.from_arrays(arrays),
        arrays["names"],
        arrays["heldout"],
        arrays["aligned"],
        json.loads(str(arrays["meta"])),
    )


@dataclass
class FolderCache:
    store: FaceStore
    labels: np.ndarray
    names: np.ndarray
    aligned: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.store)


def build_folder_cache(
    source: Path,
    cache_dir: Path,
    size: int,
    scheme: str = "fer2013",
    encoding: str = DEFAULT_ENCODING,
    quality: int = DEFAULT_QUALITY,
    align: str = "detect",
) -> Path:
    """Align a user data set (class folders or CSV, see ``folders``) and cache it."""
    t0 = time.time()
    data = load_folder_dataset(source, scheme)
    current: dict[int, np.ndarray] = {}

    def image(i: int) -> np.ndarray:
        if i not in current:
            current.clear()
            current[i] = read_rgb(data.paths[i])
        return current[i]

    faces, own, stats = _prepare_faces(image, len(data), size, False, align, f"cache {Path(source).name}", 128, 0.0)
    store = FaceStore.encode(faces, encoding, quality)
    meta = _base_meta("folder", str(source), size, encoding, quality)
    meta.update(scheme=scheme, align=align, align_stats=stats.as_dict(), build_seconds=round(time.time() - t0, 1))
    arrays = dict(
        store.to_arrays(),
        labels=np.asarray(data.labels, np.int8),
        names=np.asarray([str(p) for p in data.paths]),
        aligned=own,
    )
    return _write(folder_cache_path(cache_dir, Path(source), size, encoding, quality), arrays, meta)


def load_folder_cache(path: Path) -> FolderCache:
    arrays = _read_arrays(path)
    return FolderCache(
        FaceStore.from_arrays(arrays),
        arrays["labels"].astype(np.int64),
        arrays["names"],
        arrays["aligned"],
        json.loads(str(arrays["meta"])),
    )


def build_occluders_cache(data_root: Path, cache_dir: Path, max_side: int = 256) -> Path:
    bank = load_occluders(data_root, max_side=max_side)
    meta = _base_meta("occluders", "occluders/", max_side, "png", 0)
    meta.update(kinds={k: len(bank.by_kind(k)) for k in bank.kinds})
    return _write(occluders_cache_path(cache_dir), pack_occluders(bank), meta)


def load_occluders_cache(path: Path) -> OccluderBank:
    return unpack_occluders(_read_arrays(path))


# ---------------------------------------------------------------------------------------------------------------
# Get-or-build
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSettings:
    data_root: Path
    cache_dir: Path
    encoding: str = DEFAULT_ENCODING
    quality: int = DEFAULT_QUALITY
    fer_size: int = FER_STORE_SIZE
    utk_holdout: float = 0.1
    align: str = "detect"
    rebuild: bool = False
    pack_utk_size: int = 0  # > 0: cache_dir is a data pack (read-only; UTKFace stored at this size)


def _need(path: Path, settings: CacheSettings, what: str) -> bool:
    """True when ``path`` must be (re)built. A stale cache is rebuilt only when the source data is there; a data
    pack is never rebuilt."""
    if settings.pack_utk_size:
        if not Path(path).is_file():
            raise InputError(f"{path}: the data pack has no {what} file (rebuild it with 'ofer-live train pack')")
        return False
    if settings.rebuild or not Path(path).is_file():
        return True
    if is_current(path, settings.align):
        return False
    if Path(settings.data_root).is_dir():
        log.warning("%s cache %s is stale (other cache version, template or align mode): rebuilding", what, path)
        return True
    log.warning("%s cache %s is stale but the source data is not here: using it anyway", what, path)
    return False


def ferplus(settings: CacheSettings, split: str) -> FerPlusCache:
    """The FER+ ``split`` cache, built from ``settings.data_root`` when missing or stale."""
    path = ferplus_cache_path(settings.cache_dir, split, settings.fer_size, settings.encoding, settings.quality)
    if _need(path, settings, f"FER+ {split}"):
        build_ferplus_cache(
            settings.data_root,
            split,
            settings.cache_dir,
            settings.fer_size,
            settings.encoding,
            settings.quality,
            settings.align,
        )
    return load_ferplus_cache(path)


def utkface(settings: CacheSettings, size: int) -> UtkCache:
    """The UTKFace cache at ``size`` (a data pack holds one size; the datasets resize on the fly)."""
    size = settings.pack_utk_size or size
    path = utkface_cache_path(settings.cache_dir, size, settings.encoding, settings.quality)
    if _need(path, settings, "UTKFace"):
        build_utkface_cache(
            settings.data_root,
            settings.cache_dir,
            size,
            settings.encoding,
            settings.quality,
            settings.utk_holdout,
            settings.align,
        )
    return load_utkface_cache(path)


def occluders(settings: CacheSettings) -> OccluderBank:
    path = occluders_cache_path(settings.cache_dir)
    if _need(path, settings, "occluder"):
        build_occluders_cache(settings.data_root, settings.cache_dir)
    return load_occluders_cache(path)


def folder(settings: CacheSettings, source: Path, size: int, scheme: str = "fer2013") -> FolderCache:
    path = folder_cache_path(settings.cache_dir, source, size, settings.encoding, settings.quality)
    if _need(path, settings, str(source)):
        build_folder_cache(
            source, settings.cache_dir, size, scheme, settings.encoding, settings.quality, settings.align
        )
    return load_folder_cache(path)
