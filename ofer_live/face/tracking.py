"""Stable face ids across frames by greedy IoU matching (no motion model).

At webcam rates a face moves little between frames, so the box of the previous frame overlaps the
new one well; greedy matching on IoU (best pairs first) is enough and has no dependencies. A track
that finds no match for more than ``max_missed`` consecutive updates is dropped; its id is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a: (M, 4), b: (K, 4) boxes (x, y, w, h) -> (M, K) float32 intersection over union."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # (4,) float32 (x, y, w, h), last matched box
    missed: int = 0
    hits: int = 1


class IouTracker:
    """Greedy IoU tracker with stable ids (starting at 1)."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The live tracks (including those currently missed)."""
        return tuple(self._tracks)

    def reset(self) -> None:
        """Forget all tracks (new source). Ids keep increasing, so old ids are never reused."""
        self._tracks.clear()

    def update(self, boxes: np.ndarray) -> list[int]:
        """boxes: (K, 4) (x, y, w, h) of this frame's faces -> K track ids, in the order of ``boxes``."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        ids = [-1] * len(boxes)
        iou = iou_matrix(np.array([t.box for t in self._tracks], dtype=np.float32).reshape(-1, 4), boxes)
        matched_tracks: set[int] = set()
        if iou.size:
            order = np.argsort(-iou, axis=None, kind="stable")
            for flat in order:
                ti, bi = divmod(int(flat), len(boxes))
                if iou[ti, bi] < self.iou_threshold:
                    break
                if ti in matched_tracks or ids[bi] != -1:
                    continue
                track = self._tracks[ti]
                track.box, track.missed, track.hits = boxes[bi].copy(), 0, track.hits + 1
                ids[bi] = track.track_id
                matched_tracks.add(ti)
        survivors = []
        for ti, track in enumerate(self._tracks):
            if ti not in matched_tracks:
                track.missed += 1
                if track.missed > self.max_missed:
                    continue
            survivors.append(track)
        self._tracks = survivors
        for bi, box in enumerate(boxes):
            if ids[bi] == -1:
                track = Track(track_id=self._next_id, box=box.copy())
                self._next_id += 1
                self._tracks.append(track)
                ids[bi] = track.track_id
        return ids
