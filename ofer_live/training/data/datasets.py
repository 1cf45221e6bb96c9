"""Torch datasets over the caches: faces resized to the training size, augmented and synthetically occluded.

Every random draw of an item comes from ``np.random.default_rng([seed, epoch, index])``, so an item is the same
whichever worker loads it and a resumed run sees exactly the data it would have seen. ``fixed=True`` (validation)
ignores the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ofer_live.contracts import NUM_CLASSES
from ofer_live.training.data.occlusion_synth import OcclusionSynth, patch_coverage
from ofer_live.training.data.sources import FaceSource, item_rng, subsample

__all__ = ["AugmentConfig", "FaceSource", "OccludedFaces", "augment_face", "item_rng", "subsample"]


@dataclass(frozen=True)
class AugmentConfig:
    """Photometric and small geometric jitter of an aligned face (keeps the template framing roughly intact)."""

    flip_p: float = 0.5
    rotation_deg: float = 8.0
    scale: float = 0.06
    shift: float = 0.04
    brightness: float = 0.2
    contrast: float = 0.2
    grayscale_p: float = 0.2  # colour faces only (gray faces stay gray)
    blur_p: float = 0.1


def augment_face(face: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """face: (S, S, 3) uint8 -> augmented (S, S, 3) uint8 (border pixels replicated)."""
    size = face.shape[0]
    out = face
    if rng.random() < cfg.flip_p:
        out = out[:, ::-1]
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    shift = rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    if abs(angle) > 1e-3 or abs(scale - 1) > 1e-3 or np.abs(shift).max() > 1e-3:
        m = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), angle, scale)
        m[:, 2] += shift
        out = cv2.warpAffine(
            np.ascontiguousarray(out), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    img = out.astype(np.float32)
    if cfg.contrast > 0 or cfg.brightness > 0:
        mean = img.mean()
        img = (img - mean) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
        img = img * (1 + rng.uniform(-cfg.brightness, cfg.brightness))
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < cfg.blur_p:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.3, 1.2))
    if rng.random() < cfg.grayscale_p:
        g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        out = np.repeat(g[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


class OccludedFaces(Dataset):
    """Items are dicts of numpy arrays (the default collate makes tensors):

    - ``face`` (S, S, 3) uint8: the (augmented, possibly occluded) face given to the model;
    - ``clean`` (S, S, 3) uint8: the same face before occlusion (the reconstruction target);
    - ``coverage`` (G, G) float32: exact covered fraction of each patch (0 for clean faces);
    - ``label`` int64 (-1 if unlabelled), ``soft`` (7,) float32 (zeros if unlabelled);
    - ``source`` int64: index of the FaceSource;
    - ``alpha`` (S, S) float32: the occluder's pixel coverage (only with ``with_alpha``).
    """

    def __init__(
        self,
        sources: Sequence[FaceSource],
        size: int,
        grid: int,
        synth: OcclusionSynth | None = None,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        fixed: bool = False,
        occlusion_kind: str | None = None,
        with_alpha: bool = False,
    ) -> None:
        self.sources = list(sources)
        self.size = size
        self.grid = grid
        self.synth = synth
        self.augment = augment
        self.seed = seed
        self.fixed = fixed
        self.occlusion_kind = occlusion_kind
        self.with_alpha = with_alpha
        self.epoch = 0
        self._offsets = np.cumsum([0] + [len(s) for s in self.sources])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """dataset index -> (source number, store row)."""
        src = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return src, int(self.sources[src].indices[index - self._offsets[src]])

    def _donor_face(self, rng: np.random.Generator) -> np.ndarray:
        """Another face of the dataset (skin and regions for synthetic hands and CutPaste): (S, S, 3) uint8."""
        src, row = self.locate(int(rng.integers(len(self))))
        return self.sources[src].store.get(row, self.size)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        src, row = self.locate(index)
        source = self.sources[src]
        rng = item_rng(self.seed, 0 if self.fixed else self.epoch, index)
        face = source.store.get(row, self.size)
        if self.augment is not None:
            face = augment_face(face, rng, self.augment)
        if self.synth is not None:
            occ = self.synth.sample(face, rng, self.occlusion_kind, donor=lambda: self._donor_face(rng))
            image, coverage, alpha = occ.image, occ.coverage, occ.alpha
        else:
            alpha = np.zeros((self.size, self.size), np.float32)
            image, coverage = face, patch_coverage(alpha, self.grid)
        label = int(source.labels[row]) if source.labels is not None else -1
        soft = source.soft[row].astype(np.float32) if source.soft is not None else np.zeros(NUM_CLASSES, np.float32)
        item = {
            "face": np.ascontiguousarray(image),
            "clean": np.ascontiguousarray(face),
            "coverage": coverage.astype(np.float32),
            "label": np.int64(label),
            "soft": soft,
            "source": np.int64(src),
        }
        if self.with_alpha:
            item["alpha"] = alpha.astype(np.float32)
        return item


def to_device_batch(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def epoch_steps(n_items: int, batch_size: int, drop_last: bool = True) -> int:
    return n_items // batch_size if drop_last else math.ceil(n_items / batch_size)
