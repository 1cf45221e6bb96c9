"""Torch-free pieces of the datasets: face sources, fixed subsets, per-item generators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ofer_live.training.data.cache import FaceStore


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


@dataclass(frozen=True)
class FaceSource:
    """Faces of one data set: ``store`` rows ``indices``; ``labels`` / ``soft`` are indexed like the store (None for
    unlabelled sets such as UTKFace)."""

    name: str
    store: FaceStore
    indices: np.ndarray
    labels: np.ndarray | None = None
    soft: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.indices))


def subsample(indices: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A fixed random subset of at most ``n`` indices (all when n is None), in sorted order."""
    indices = np.asarray(indices)
    if n is None or n >= len(indices):
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=n, replace=False))
