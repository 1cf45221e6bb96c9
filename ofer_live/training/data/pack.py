"""A compact data pack: everything training and validation read, in one folder that travels with a run.

``ofer-live train pack --data ../shared/data --out pack/`` writes::

    pack/pack.json                     what is inside (settings, files, sizes, sha256, data terms)
    pack/ferplus_train_64_webp85.npz   the caches of ``training.data.cache``, built at the pack's encoding
    pack/ferplus_valid_64_webp85.npz
    pack/utkface_112_webp85.npz
    pack/occluders.npz
    pack/teachers/fer_mini_xception/   the MIT-licensed teacher (``sc_teacher = auto``), when the data has it

WebP at quality 85 keeps the faces within about 2 grey levels of the source and the pack of the real data under
60 MB. ``--data pack/`` is accepted wherever ``--data`` is: ``training.trainers.setup.cache_settings`` reads the
caches straight from the pack (never rebuilt, never written). The pack holds research data: never commit it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from ofer_live.errors import InputError, OutputError
from ofer_live.runtime.manifest import sha256_file
from ofer_live.training.data import cache

PACK_FILE = "pack.json"
PACK_VERSION = 1
DEFAULT_ENCODING = "webp"
DEFAULT_QUALITY = 85
MAX_PACK_MB = 60.0
TERMS = (
    "FER+ labels (c) Microsoft, MIT; FER2013 pixels: ICML 2013 challenge data, research use; UTKFace: "
    "non-commercial research only; occluder cut-outs: research only. Never commit this pack."
)


def is_pack(root: str | Path) -> bool:
    return (Path(root) / PACK_FILE).is_file()


def read_pack(root: str | Path) -> dict[str, Any]:
    """pack.json of a pack folder; InputError when it is missing or unreadable."""
    path = Path(root) / PACK_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable data pack ({exc})") from None
    if info.get("pack_version") != PACK_VERSION:
        raise InputError(f"{path}: pack version {info.get('pack_version')} (this version reads {PACK_VERSION})")
    return info


def pack_settings(root: str | Path) -> cache.CacheSettings:
    """Cache settings that read the caches of the pack at ``root`` (read-only)."""
    info = read_pack(root)
    root = Path(root)
    return cache.CacheSettings(
        data_root=root,
        cache_dir=root,
        encoding=str(info["encoding"]),
        quality=int(info["quality"]),
        fer_size=int(info["fer_size"]),
        utk_holdout=float(info["utk_holdout"]),
        align=str(info["align"]),
        pack_utk_size=int(info["utk_size"]),
    )


def write_pack(
    data_root: str | Path,
    out: str | Path,
    *,
    face_size: int = 112,
    fer_size: int = cache.FER_STORE_SIZE,
    encoding: str = DEFAULT_ENCODING,
    quality: int = DEFAULT_QUALITY,
    utk_holdout: float = 0.1,
    align: str = "detect",
) -> dict[str, Any]:
    """Build the caches of ``data_root`` (a ../shared/data-style folder) into ``out`` and describe them in
    pack.json; returns its contents. ``out`` must be empty or an earlier pack (rebuilt in place)."""
    data_root, out = Path(data_root), Path(out)
    if not data_root.is_dir():
        raise InputError(f"{data_root}: data folder not found")
    if is_pack(data_root):
        raise InputError(f"{data_root} is already a data pack")
    if out.exists() and any(out.iterdir()) and not is_pack(out):
        raise OutputError(f"{out}: not empty and not a data pack; choose an empty folder")
    t0 = time.time()
    settings = cache.CacheSettings(
        data_root=data_root,
        cache_dir=out,
        encoding=encoding,
        quality=quality,
        fer_size=fer_size,
        utk_holdout=utk_holdout,
        align=align,
        rebuild=True,
    )
    files = []
    for split in ("train", "valid"):
        cache.ferplus(settings, split)
        files.append(cache.ferplus_cache_path(out, split, fer_size, encoding, quality))
    cache.utkface(settings, face_size)
    files.append(cache.utkface_cache_path(out, face_size, encoding, quality))
    cache.occluders(settings)
    files.append(cache.occluders_cache_path(out))
    teacher = data_root / "teachers" / "fer_mini_xception"
    if teacher.is_dir():
        target = out / "teachers" / "fer_mini_xception"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for item in sorted(teacher.glob("*.hdf5")):  # the Keras weights are all the teacher loader reads
            shutil.copy2(item, target / item.name)
            files.append(target / item.name)
    entries = {str(f.relative_to(out)): {"bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files}
    info = {
        "pack_version": PACK_VERSION,
        "encoding": encoding,
        "quality": quality,
        "fer_size": fer_size,
        "utk_size": face_size,
        "utk_holdout": utk_holdout,
        "align": align,
        "source": str(data_root),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "build_seconds": round(time.time() - t0, 1),
        "total_bytes": sum(e["bytes"] for e in entries.values()),
        "total_mb": round(sum(e["bytes"] for e in entries.values()) / 1e6, 2),
        "files": entries,
        "terms": TERMS,
    }
    (out / PACK_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
