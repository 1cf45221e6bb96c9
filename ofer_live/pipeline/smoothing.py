"""Temporal smoothing of expression probabilities, one exponential moving average per face track."""

from __future__ import annotations

import numpy as np


class ProbabilitySmoother:
    """Per-track EMA: ``p_t = alpha * probs + (1 - alpha) * p_{t-1}``.

    alpha: weight of the newest frame in (0, 1]; 1 disables smoothing.
    max_age: a track not seen for this many ``tick()`` calls (frames) is forgotten.
    Track ids < 0 (still images, pre-cropped faces) are never smoothed.
    """

    def __init__(self, alpha: float = 0.4, max_age: int = 30) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)
        self.max_age = int(max_age)
        self._state: dict[int, np.ndarray] = {}
        self._last_seen: dict[int, int] = {}
        self._step = 0

    def apply(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        """probs: (K,) float -> (K,) float32 smoothed probabilities (still sum to 1)."""
        probs = np.asarray(probs, dtype=np.float32)
        if track_id < 0:
            return probs
        previous = self._state.get(track_id)
        if previous is None or previous.shape != probs.shape:
            smoothed = probs.copy()
        else:
            smoothed = (self.alpha * probs + (1.0 - self.alpha) * previous).astype(np.float32)
        self._state[track_id] = smoothed
        self._last_seen[track_id] = self._step
        return smoothed.copy()

    def tick(self) -> None:
        """Advance one frame and forget tracks unseen for more than ``max_age`` frames."""
        self._step += 1
        stale = [t for t, seen in self._last_seen.items() if self._step - seen > self.max_age]
        for track_id in stale:
            self._state.pop(track_id, None)
            self._last_seen.pop(track_id, None)

    def reset(self) -> None:
        self._state.clear()
        self._last_seen.clear()

    def __len__(self) -> int:
        return len(self._state)
