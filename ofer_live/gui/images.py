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
