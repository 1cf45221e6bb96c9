"""numpy -> QImage conversion. Call on the GUI thread only; every QImage returned owns its pixels (.copy())."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """image: (H, W, 3) uint8 BGR (or (H, W) uint8 gray) -> QImage that owns a copy of the pixels."""
    image = np.ascontiguousarray(image)
    if image.ndim == 2:
        h, w = image.shape
        return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_Grayscale8).copy()
    h, w = image.shape[:2]
    return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_BGR888).copy()


def rgb_to_qimage(image: np.ndarray) -> QImage:
    """image: (H, W, 3) uint8 RGB -> QImage that owns a copy of the pixels."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_RGB888).copy()


def qimage_to_bgr(image: QImage) -> np.ndarray:
    """QImage -> (H, W, 3) uint8 BGR copy (for tests and snapshots of widgets)."""
    image = image.convertToFormat(QImage.Format.Format_BGR888)
    h, w = image.height(), image.width()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buffer.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


def cam_heatmap(face_rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """face_rgb: (S, S, 3) uint8 RGB, cam: (G, G) float32 in [0, 1] -> (S, S, 3) uint8 RGB, jet heat-map blended."""
    import cv2

    s = face_rgb.shape[0]
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0)
    cam = np.clip(cam, 0.0, 1.0)
    up = cv2.resize(cam, (s, s), interpolation=cv2.INTER_CUBIC)
    colored = cv2.applyColorMap(np.clip(up * 255.0, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(face_rgb, 1.0 - alpha, colored, alpha, 0.0)


def mask_overlay(face_rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """face_rgb: (S, S, 3) uint8 RGB, mask: (G, G) bool (True = occluded) -> (S, S, 3) uint8 RGB with red patches."""
    import cv2

    s = face_rgb.shape[0]
    up = cv2.resize(np.asarray(mask, dtype=np.uint8), (s, s), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = face_rgb.copy()
    red = np.array([230, 40, 40], dtype=np.float32)
    out[up] = (out[up].astype(np.float32) * (1 - alpha) + red * alpha).astype(np.uint8)
    return out
