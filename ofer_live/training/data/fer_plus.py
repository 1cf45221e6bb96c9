"""FER+ loader: FER2013 48x48 gray faces with the FER+ crowd votes.

File format (``<root>/ferplus/{train,valid}.npz``, see the data README):
``images`` uint8 (N, 48, 48), ``votes`` uint8 (N, 10) in the FER+ column order
``neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF``,
``fer2013_label`` uint8 (N,) in FER2013 order, ``names`` str (N,).

Labels are mapped onto the 7 FER2013 classes (``contracts.LABELS``):
- majority: the arg-max over all 10 vote columns; images whose majority is contempt, unknown or
  NF, or whose top vote is tied, get label -1 (dropped by the datasets);
- soft: the vote distribution over the 7 emotion columns (contempt/unknown/NF votes ignored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ofer_live.contracts import LABELS, NUM_CLASSES
from ofer_live.errors import InputError

log = logging.getLogger(__name__)

FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
# FER+ vote column -> FER2013 class index (contracts.LABELS); -1 = not one of the 7 classes.
FERPLUS_TO_FER2013: tuple[int, ...] = (
    LABELS.index("neutral"),
    LABELS.index("happy"),
    LABELS.index("surprise"),
    LABELS.index("sad"),
    LABELS.index("angry"),
    LABELS.index("disgust"),
    LABELS.index("fear"),
    -1,
    -1,
    -1,
)
SPLITS: tuple[str, ...] = ("train", "valid")
DROPPED = -1


@dataclass(frozen=True)
class FerPlusSplit:
    """One FER+ split. ``labels`` is -1 where the majority vote is dropped."""

    images: np.ndarray  # (N, 48, 48) uint8 gray
    votes: np.ndarray  # (N, 10) uint8
    labels: np.ndarray  # (N,) int64 in [-1, 7)
    soft: np.ndarray  # (N, 7) float32, rows sum to 1 (uniform where there are no emotion votes)
    fer2013_label: np.ndarray  # (N,) int64
    names: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool: images with a usable majority label."""
        return self.labels >= 0


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """votes: (N, 10) int -> (N,) int64 FER2013 class, -1 for contempt/unknown/NF majority or a tie."""
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] != len(FERPLUS_COLUMNS):
        raise InputError(f"FER+ votes must have shape (N, {len(FERPLUS_COLUMNS)}), got {votes.shape}")
    votes = votes.astype(np.int64)
    top = votes.max(axis=1)
    n_top = (votes == top[:, None]).sum(axis=1)
    column = votes.argmax(axis=1)
    mapping = np.asarray(FERPLUS_TO_FER2013, dtype=np.int64)
    labels = mapping[column]
    labels[(n_top > 1) | (top == 0)] = DROPPED
    return labels


def soft_labels(votes: np.ndarray) -> np.ndarray:
    """votes: (N, 10) int -> (N, 7) float32 distribution over the FER2013 classes.

    Uses only the 7 emotion columns; a row with no emotion votes becomes uniform.
    """
    votes = np.asarray(votes, dtype=np.float32)
    soft = np.zeros((votes.shape[0], NUM_CLASSES), dtype=np.float32)
    for column, cls in enumerate(FERPLUS_TO_FER2013):
        if cls >= 0:
            soft[:, cls] += votes[:, column]
    total = soft.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    soft[empty] = 1.0 / NUM_CLASSES
    total[empty] = 1.0
    return soft / total


def ferplus_path(root: str | Path, split: str) -> Path:
    """Where ``split`` lives under a data root (accepts the data root or its ``ferplus/`` folder)."""
    if split not in SPLITS:
        raise InputError(f"unknown FER+ split {split!r}; expected one of {', '.join(SPLITS)}")
    root = Path(root)
    for candidate in (root / "ferplus" / f"{split}.npz", root / f"{split}.npz"):
        if candidate.is_file():
            return candidate
    raise InputError(f"FER+ {split} split not found: expected {root / 'ferplus' / f'{split}.npz'}")


def load_ferplus(root: str | Path, split: str) -> FerPlusSplit:
    """Read ``<root>/ferplus/<split>.npz``; raise InputError naming the file and the bad field."""
    path = ferplus_path(root, split)
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    for name in ("images", "votes"):
        if name not in fields:
            raise InputError(f"{path}: array '{name}' is missing")
    images = fields["images"]
    votes = fields["votes"]
    if images.dtype != np.uint8 or images.ndim != 3:
        raise InputError(f"{path}: 'images' must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    if votes.shape != (images.shape[0], len(FERPLUS_COLUMNS)):
        raise InputError(f"{path}: 'votes' has shape {votes.shape}, expected ({images.shape[0]}, 10)")
    n = images.shape[0]
    fer = fields.get("fer2013_label", np.full(n, -1)).astype(np.int64)
    names = fields.get("names", np.asarray([f"{split}_{i:06d}" for i in range(n)]))
    labels = majority_labels(votes)
    log.debug("FER+ %s: %d faces, %d with a majority label", split, n, int((labels >= 0).sum()))
    return FerPlusSplit(
        images=images, votes=votes, labels=labels, soft=soft_labels(votes), fer2013_label=fer, names=names
    )
