"""Face-space -> frame-space mapping for overlays (render/ may not import face/: see pyproject layers).

Same pixel-centre convention as ``face.align`` (pixel centres at integer coordinates, the S x S crop
covers [-0.5, S - 0.5]); tests/render check that both agree.
"""

from __future__ import annotations

import cv2
import numpy as np


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points: (..., 2), matrix: (2, 3) affine -> (..., 2) float32."""
    m = np.asarray(matrix, dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)


def face_quad(face_to_frame: np.ndarray, size: int) -> np.ndarray:
    """face_to_frame: (2, 3), size S -> (4, 2) float32 frame corners of the crop (TL, TR, BR, BL)."""
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    return transform_points(corners, face_to_frame)


def grid_cell_quads(mask: np.ndarray, face_to_frame: np.ndarray, size: int) -> np.ndarray:
    """mask: (G, G) bool, face_to_frame: (2, 3), size S -> (K, 4, 2) float32 frame quads of True cells, row-major."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return np.zeros((0, 4, 2), dtype=np.float32)
    p = size / mask.shape[0]
    x0, y0 = cols * p - 0.5, rows * p - 0.5
    x1, y1 = x0 + p, y0 + p
    quads = np.stack(
        [np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1), np.stack([x0, y1], -1)], axis=1
    )
    return transform_points(quads, face_to_frame)


def warp_to_frame_roi(
    face_image: np.ndarray,
    face_to_frame: np.ndarray,
    frame_shape: tuple[int, ...],
    face_size: int | None = None,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """face_image: (n, n[, C]) in face space (n = S, or G for patch maps), face_to_frame: (2, 3),
    frame_shape: (H, W, ...), face_size: S (default n)
    -> (patch (h, w[, C]) same dtype, coverage (h, w) float32 in [0, 1], (x0, y0) origin in the frame).
    A face entirely outside the frame gives a (0, 0[, C]) patch.
    """
    n = face_image.shape[0]
    s = n if face_size is None else face_size
    k = s / n
    m = np.vstack([np.asarray(face_to_frame, dtype=np.float64), [0, 0, 1]])
    image_to_face = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])
    m = (m @ image_to_face)[:2]
    h, w = frame_shape[:2]
    quad = face_quad(face_to_frame, s)
    x0 = int(max(0, np.floor(quad[:, 0].min())))
    y0 = int(max(0, np.floor(quad[:, 1].min())))
    x1 = int(min(w, np.ceil(quad[:, 0].max()) + 1))
    y1 = int(min(h, np.ceil(quad[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0) + tuple(face_image.shape[2:]), face_image.dtype), np.zeros((0, 0), np.float32), (0, 0)
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    patch = cv2.warpAffine(face_image, m, size, flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    # Coverage at face resolution, so a coarse G x G map still gets crisp, 1-pixel soft edges.
    m_cov = np.asarray(face_to_frame, dtype=np.float64).copy()
    m_cov[:, 2] -= (x0, y0)
    coverage = cv2.warpAffine(np.ones((s, s), np.float32), m_cov, size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
    return patch, coverage, (x0, y0)
