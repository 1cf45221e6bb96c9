"""Numpy metrics shared by training validation and ``ofer-live eval``: classification, patch detection, PSNR, SSIM.

Everything here is numpy + OpenCV, so it runs on ONNX Runtime outputs as well as on torch outputs.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ofer_live.contracts import LABELS, NUM_CLASSES

POSITIVE = 0.5  # a patch is occluded when at least half of it is covered
NEGATIVE = 0.05  # ... and clean when less than 5 % is covered ("strict" metrics ignore the band in between)


def classification_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """labels, predictions: (N,) int in [0, 7) -> accuracy, macro recall (over classes present), per-class recall,
    confusion matrix (rows true, columns predicted)."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    recall = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {
        "n": int(labels.size),
        "accuracy": float((labels == predictions).mean()) if labels.size else float("nan"),
        "macro_recall": float(np.nanmean(recall)) if (support > 0).any() else float("nan"),
        "per_class_recall": {LABELS[i]: (None if np.isnan(r) else float(r)) for i, r in enumerate(recall)},
        "confusion": confusion.tolist(),
    }


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged); NaN without both classes."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=bool).ravel()
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def detection_metrics(
    scores: np.ndarray,
    coverage: np.ndarray,
    threshold: float = 1.0,
    positive: float = POSITIVE,
    negative: float = NEGATIVE,
) -> dict[str, float]:
    """scores: (N, G, G) patch scores (> threshold = occluded), coverage: (N, G, G) true covered fractions.

    All patches: positive when coverage >= ``positive``, negative otherwise -> accuracy, precision, recall, f1,
    fpr, auroc. ``strict_*``: the same with partly covered patches (``negative`` <= coverage < ``positive``)
    left out. ``occluded_fraction``: mean fraction of positive patches; ``predicted_fraction``: of flagged ones.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    c = np.asarray(coverage, dtype=np.float64).ravel()
    pred = s > threshold
    out: dict[str, float] = {}
    for prefix, keep in (("", np.ones_like(c, dtype=bool)), ("strict_", (c >= positive) | (c < negative))):
        truth = c[keep] >= positive
        p = pred[keep]
        tp = float((p & truth).sum())
        fp = float((p & ~truth).sum())
        fn = float((~p & truth).sum())
        tn = float((~p & ~truth).sum())
        n = max(tp + fp + fn + tn, 1.0)
        precision = tp / (tp + fp) if tp + fp > 0 else float("nan")
        recall = tp / (tp + fn) if tp + fn > 0 else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if tp > 0 else 0.0
        out.update(
            {
                f"{prefix}accuracy": (tp + tn) / n,
                f"{prefix}precision": precision,
                f"{prefix}recall": recall,
                f"{prefix}f1": f1,
                f"{prefix}fpr": fp / (fp + tn) if fp + tn > 0 else float("nan"),
                f"{prefix}auroc": auroc(s[keep], truth),
            }
        )
    out["occluded_fraction"] = float((c >= positive).mean()) if c.size else float("nan")
    out["predicted_fraction"] = float(pred.mean()) if pred.size else float("nan")
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b: (N, S, S, 3) uint8 (or float in [0, 255]) -> (N,) float64 PSNR in dB (capped at 100 for equal images)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        value = 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))
    return np.minimum(value, 100.0)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b: (N, S, S, 3) uint8 -> (N,) float64 SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03), averaged over the RGB channels and the valid window positions."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = np.zeros(len(a), dtype=np.float64)
    for i in range(len(a)):
        x = np.asarray(a[i], dtype=np.float64)
        y = np.asarray(b[i], dtype=np.float64)

        def blur(z: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(z, (11, 11), 1.5)[5:-5, 5:-5]

        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out[i] = float(m.mean())
    return out
