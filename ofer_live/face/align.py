"""Keypoint alignment: a similarity warp from the detector's keypoints to a canonical S x S face.

Template framing (FER2013-like)
-------------------------------
The models are trained on FER2013/FER+ crops (48x48, the face fills the crop from the forehead to
the chin). To make run-time crops look like those, the template was measured, not guessed: we ran
this detector (BlazeFace short-range) on 1,455 FER+ validation faces (upscaled 4x, padded) and took
the median keypoint positions, as fractions of the crop side:

    right eye (0.324, 0.396)   left eye (0.691, 0.398)   nose tip (0.507, 0.612)   mouth (0.506, 0.782)

``TEMPLATE`` is that median made left/right symmetric: eyes at y = 0.40 and x = 0.5 -/+ 0.185
(interocular distance 0.37 S), nose tip at (0.5, 0.61), mouth centre at (0.5, 0.78). The crop then
runs from about the hairline to just below the chin, with the cheeks and a little background at the
sides, like FER2013. The ear points are listed for reference but carry no weight.

The similarity (rotation + uniform scale + translation) is the weighted least-squares fit
(closed form, Umeyama in 2-D) of the eye, nose and mouth points to the template, with weights
``TEMPLATE_WEIGHTS``: the eyes count double, because the nose and mouth move with expression and
head pitch (an open mouth would otherwise shrink the face).

Training-data preparation imports ``TEMPLATE``, ``TEMPLATE_WEIGHTS``, ``similarity_from_keypoints``
and ``align_face`` from here, so train-time and run-time crops match. Pixels outside the frame are
filled by edge replication (``BORDER_MODE``).
"""

from __future__ import annotations

import cv2
import numpy as np

# (6, 2) keypoint positions as fractions of the crop side S, in the detector's keypoint order
# (right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion). Subject's right eye = image left.
TEMPLATE: np.ndarray = np.array(
    [
        [0.315, 0.400],
        [0.685, 0.400],
        [0.500, 0.610],
        [0.500, 0.780],
        [0.140, 0.455],
        [0.860, 0.455],
    ],
    dtype=np.float64,
)
TEMPLATE.setflags(write=False)
# Least-squares weight of each keypoint in the fit (ears unused: unreliable in profile).
TEMPLATE_WEIGHTS: np.ndarray = np.array([1.0, 1.0, 0.5, 0.5, 0.0, 0.0], dtype=np.float64)
TEMPLATE_WEIGHTS.setflags(write=False)
BORDER_MODE = cv2.BORDER_REPLICATE
# Below this scale (frame -> face) the region is first shrunk with INTER_AREA to avoid aliasing.
_PRESHRINK_BELOW = 0.5


def template_points(size: int) -> np.ndarray:
    """size S -> (6, 2) float64 template keypoints in S x S crop pixels (pixel centres at integers)."""
    return TEMPLATE * size - 0.5


def similarity_from_keypoints(keypoints: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """keypoints: (K, 2) frame pixels (K = 6 detector points, or 4 without ears) -> (2, 3) float64 frame -> face.

    Weighted least-squares similarity (closed form). Raises ValueError for degenerate keypoints.
    """
    pts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    k = len(pts)
    if k < 2:
        raise ValueError(f"need at least 2 keypoints, got {k}")
    dst = template_points(size)[:k]
    w = np.asarray(TEMPLATE_WEIGHTS[:k] if weights is None else weights, dtype=np.float64)
    if not np.all(np.isfinite(pts)):
        raise ValueError("keypoints contain NaN or inf")
    # Complex form: q = a * p + b with a = s * exp(i theta).
    p = pts[:, 0] + 1j * pts[:, 1]
    q = dst[:, 0] + 1j * dst[:, 1]
    wsum = w.sum()
    pm, qm = (w * p).sum() / wsum, (w * q).sum() / wsum
    pc, qc = p - pm, q - qm
    denom = (w * np.abs(pc) ** 2).sum()
    if denom < 1e-9:
        raise ValueError("keypoints are degenerate (all at one point)")
    a = (w * np.conj(pc) * qc).sum() / denom
    b = qm - a * pm
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """matrix: (2, 3) affine -> (2, 3) float64 inverse affine."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """points: (..., 2), matrix: (2, 3) -> (..., 2) float32 transformed points."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    out = pts @ m[:, :2].T + m[:, 2]
    return out.astype(np.float32)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """outer: (2, 3), inner: (2, 3) -> (2, 3) float64 affine applying ``inner`` first, then ``outer``."""
    a = np.vstack([np.asarray(outer, dtype=np.float64), [0, 0, 1]])
    b = np.vstack([np.asarray(inner, dtype=np.float64), [0, 0, 1]])
    return (a @ b)[:2]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """image: (H, W) gray, (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA uint8 -> (H, W, 3) RGB uint8."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"expected a gray, BGR or BGRA image, got shape {image.shape}")


def warp_face(frame: np.ndarray, frame_to_face: np.ndarray, size: int) -> np.ndarray:
    """frame: (H, W[, C]) uint8, frame_to_face: (2, 3) -> (S, S[, C]) uint8 crop (same channel order).

    Shrinks the face region with INTER_AREA first when the face is more than 2x larger than S,
    so large faces (1080p close-ups) are not aliased.
    """
    m = np.asarray(frame_to_face, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    h, w = frame.shape[:2]
    if scale < _PRESHRINK_BELOW and h > 1 and w > 1:
        corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
        quad = transform_points(corners, invert_affine(m))
        x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            sub = frame[y0:y1, x0:x1]
            sw, sh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = cv2.resize(sub, (sw, sh), interpolation=cv2.INTER_AREA)
            kx, ky = sw / (x1 - x0), sh / (y1 - y0)
            # p_frame = (q_small + 0.5) / k - 0.5 + origin (pixel-centre convention)
            small_to_frame = np.array([[1 / kx, 0, 0.5 / kx - 0.5 + x0], [0, 1 / ky, 0.5 / ky - 0.5 + y0]])
            m = compose_affine(m, small_to_frame)
            frame = small
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDER_MODE)


def align_face(frame_bgr: np.ndarray, keypoints: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frame_bgr: (H, W, 3) BGR or (H, W) gray uint8, keypoints: (6, 2) frame pixels, size S
    -> (aligned (S, S, 3) uint8 RGB, frame_to_face (2, 3) float32, face_to_frame (2, 3) float32).
    """
    m = similarity_from_keypoints(keypoints, size)
    crop = warp_face(frame_bgr, m, size)
    return to_rgb(crop), m.astype(np.float32), invert_affine(m).astype(np.float32)


def crop_to_face(image: np.ndarray, size: int) -> np.ndarray:
    """image: (H, W) / (H, W, 1) gray, (H, W, 3) BGR or (H, W, 4) BGRA uint8 -> (S, S, 3) uint8 RGB.

    For images that already are face crops (``--aligned``, FER2013-style data): a non-square image
    is centre-cropped to a square, then resized to S (INTER_AREA when shrinking, INTER_LINEAR when
    enlarging); gray is replicated to RGB.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim < 2 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be at least 1x1, got shape {image.shape}")
    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    square = image[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    resized = cv2.resize(square, (size, size), interpolation=interp)
    return to_rgb(resized)


def face_quad(face_to_frame: np.ndarray, size: int) -> np.ndarray:
    """face_to_frame: (2, 3), size S -> (4, 2) float32 frame corners of the crop (TL, TR, BR, BL)."""
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    return transform_points(corners, face_to_frame)


def grid_cell_quads(mask: np.ndarray, face_to_frame: np.ndarray, size: int) -> np.ndarray:
    """mask: (G, G) bool, face_to_frame: (2, 3), size S -> (K, 4, 2) float32 frame quads of the True cells.

    Cells are row-major; K = mask.sum(). An all-False mask gives shape (0, 4, 2).
    """
    mask = np.asarray(mask, dtype=bool)
    g = mask.shape[0]
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return np.zeros((0, 4, 2), dtype=np.float32)
    p = size / g
    x0, y0 = cols * p - 0.5, rows * p - 0.5
    x1, y1 = x0 + p, y0 + p
    quads = np.stack(
        [np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1), np.stack([x0, y1], -1)], axis=1
    )
    return transform_points(quads, face_to_frame)


def _image_to_frame_matrix(face_to_frame: np.ndarray, image_size: int, face_size: int) -> np.ndarray:
    """(2, 3) map from an n x n face-space image (e.g. a G x G map) to the frame, pixel-centre correct."""
    k = face_size / image_size
    image_to_face = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5]], dtype=np.float64)
    return compose_affine(face_to_frame, image_to_face)


def warp_to_frame_roi(
    face_image: np.ndarray,
    face_to_frame: np.ndarray,
    frame_shape: tuple[int, ...],
    face_size: int | None = None,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Warp a face-space image into the frame's region of interest only.

    face_image: (n, n[, C]) in face space (n = S for crops, n = G for patch maps);
    face_to_frame: (2, 3); frame_shape: (H, W, ...); face_size: S (default n)
    -> (patch (h, w[, C]) same dtype, coverage (h, w) float32 in [0, 1], (x0, y0) patch origin in the frame).
    A face entirely outside the frame gives a (0, 0[, C]) patch.
    """
    n = face_image.shape[0]
    s = n if face_size is None else face_size
    m = _image_to_frame_matrix(face_to_frame, n, s)
    h, w = frame_shape[:2]
    quad = face_quad(face_to_frame, s)
    x0 = int(max(0, np.floor(quad[:, 0].min())))
    y0 = int(max(0, np.floor(quad[:, 1].min())))
    x1 = int(min(w, np.ceil(quad[:, 0].max()) + 1))
    y1 = int(min(h, np.ceil(quad[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        empty_shape = (0, 0) + tuple(face_image.shape[2:])
        return np.zeros(empty_shape, face_image.dtype), np.zeros((0, 0), np.float32), (0, 0)
    m_roi = m.copy()
    m_roi[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    patch = cv2.warpAffine(face_image, m_roi, size, flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    # Coverage at face resolution, so a coarse G x G map still gets crisp, 1-pixel soft edges.
    m_cov = compose_affine(face_to_frame, np.eye(2, 3))
    m_cov[:, 2] -= (x0, y0)
    ones = np.ones((s, s), dtype=np.float32)
    coverage = cv2.warpAffine(ones, m_cov, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return patch, coverage, (x0, y0)
