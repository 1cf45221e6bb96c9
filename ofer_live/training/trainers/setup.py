"""Data set-up shared by the trainers and the evaluation: data root, caches, occluder split, validation sets."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ofer_live.errors import UserError
from ofer_live.training.data import cache
from ofer_live.training.data.occluders import OccluderBank
from ofer_live.training.data.pack import is_pack, pack_settings
from ofer_live.training.data.paths import resolve_data_root
from ofer_live.training.data.sources import FaceSource, subsample
from ofer_live.training.presets import DataConfig

log = logging.getLogger(__name__)

__all__ = ["FaceData", "Occluders", "cache_settings", "face_data", "occluder_split", "resolve_data_root"]


def cache_settings(data: DataConfig, rebuild: bool = False) -> cache.CacheSettings:
    """Where the caches are and how they are built; a data pack (``training.data.pack``) as the data root is read
    as it is, whatever the encoding settings say."""
    root = resolve_data_root(data.data_root)
    if is_pack(root):
        return pack_settings(root)
    return cache.CacheSettings(
        data_root=root,
        cache_dir=Path(data.cache_dir),
        encoding=data.encoding,
        quality=data.quality,
        fer_size=data.fer_size,
        utk_holdout=data.utk_holdout,
        align=data.align,
        rebuild=rebuild,
    )


@dataclass
class Occluders:
    all: OccluderBank
    train: OccluderBank
    heldout: OccluderBank
    heldout_kinds: tuple[str, ...]


def occluder_split(data: DataConfig, settings: cache.CacheSettings) -> Occluders:
    bank = cache.occluders(settings)
    if data.occluder_kinds:
        bank = bank.select(data.occluder_kinds)
    held = tuple(k for k in data.heldout_kinds if k)
    missing = sorted(set(held) - set(bank.kinds))
    if missing:
        raise UserError(f"held-out occluder kind(s) {', '.join(missing)} not found (have: {', '.join(bank.kinds)})")
    train, heldout = bank.split(held)
    if not len(train):
        raise UserError("every occluder kind is held out: nothing left to train on")
    return Occluders(bank, train, heldout, held)


@dataclass
class FaceData:
    """The face sources a trainer asked for, split into training and validation."""

    train: list[FaceSource]
    val: list[FaceSource]
    description: str


def face_data(
    data: DataConfig,
    settings: cache.CacheSettings,
    face_size: int,
    seed: int,
    *,
    labelled_only: bool,
    use_utkface: bool,
    val_max: int,
) -> FaceData:
    """FER+ train/valid (+ UTKFace train/held-out when ``use_utkface``) (+ user sets as training data).

    ``labelled_only`` keeps FER+ faces with a majority label (expression training); otherwise every FER+ face that
    the majority did not vote "not a face".
    """
    train: list[FaceSource] = []
    val: list[FaceSource] = []
    parts: list[str] = []
    cap = data.max_train or None
    if data.use_ferplus:
        tr = cache.ferplus(settings, "train")
        va = cache.ferplus(settings, "valid")
        keep_tr = tr.labels >= 0 if labelled_only else tr.is_face
        keep_va = va.labels >= 0 if labelled_only else va.is_face
        idx_tr = subsample(np.flatnonzero(keep_tr), cap, seed)
        idx_va = subsample(np.flatnonzero(keep_va), val_max, seed + 1)
        train.append(FaceSource("ferplus_train", tr.store, idx_tr, tr.labels, tr.soft))
        val.append(FaceSource("ferplus_valid", va.store, idx_va, va.labels, va.soft))
        parts.append(f"FER+ train ({len(idx_tr)} faces)")
    if use_utkface and data.use_utkface:
        utk = cache.utkface(settings, face_size)
        idx_tr = subsample(utk.indices(heldout=False), cap, seed)
        idx_va = subsample(utk.indices(heldout=True), val_max, seed + 2)
        train.append(FaceSource("utkface_train", utk.store, idx_tr))
        val.append(FaceSource("utkface_heldout", utk.store, idx_va))
        parts.append(f"UTKFace train ({len(idx_tr)} faces)")
    for source in data.extra_train:
        extra = cache.folder(settings, Path(source), face_size, data.extra_scheme)
        idx = subsample(np.arange(len(extra)), cap, seed)
        soft = np.eye(7, dtype=np.float32)[extra.labels]
        train.append(FaceSource(f"folder:{Path(source).name}", extra.store, idx, extra.labels, soft))
        parts.append(f"{Path(source).name} ({len(idx)} faces)")
    if not train:
        raise UserError("no training data: enable FER+ (data.use_ferplus) or give data.extra_train")
    return FaceData(train, val, " + ".join(parts))
