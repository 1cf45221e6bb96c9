"""Similarity alignment to the canonical template and the face -> frame helpers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ofer_live.face import align
from ofer_live.face.align import (
    TEMPLATE,
    TEMPLATE_WEIGHTS,
    align_face,
    crop_to_face,
    face_quad,
    grid_cell_quads,
    invert_affine,
    similarity_from_keypoints,
    template_points,
    transform_points,
    warp_to_frame_roi,
)
from ofer_live.face.detector import FaceDetector

S = 112


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_template_is_public_symmetric_and_read_only():
    assert TEMPLATE.shape == (6, 2) and TEMPLATE_WEIGHTS.shape == (6,)
    assert not TEMPLATE.flags.writeable
    np.testing.assert_allclose(TEMPLATE[0, 0] + TEMPLATE[1, 0], 1.0)  # eyes mirror each other
    assert TEMPLATE[0, 1] == TEMPLATE[1, 1]
    assert TEMPLATE[0, 1] < TEMPLATE[2, 1] < TEMPLATE[3, 1]  # eyes above nose above mouth
    # FER2013-like framing: the eyes at 40 % height, the mouth at 78 %, interocular ~0.37 S.
    assert 0.35 < TEMPLATE[1, 0] - TEMPLATE[0, 0] < 0.40


def test_template_points_give_identity():
    m = similarity_from_keypoints(template_points(S), S)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


@pytest.mark.parametrize("scale,angle,tx,ty", [(2.0, 0.0, 100, 50), (0.5, 25.0, -10, 300), (3.3, -40.0, 640, 20)])
def test_recovers_a_known_similarity(scale, angle, tx, ty):
    face_to_frame = _similarity(scale, angle, tx, ty)
    keypoints = transform_points(template_points(S), face_to_frame)
    frame_to_face = similarity_from_keypoints(keypoints, S)
    np.testing.assert_allclose(frame_to_face, invert_affine(face_to_frame), atol=1e-4)


def test_degenerate_keypoints_raise():
    with pytest.raises(ValueError, match="degenerate"):
        similarity_from_keypoints(np.full((6, 2), 10.0), S)
    with pytest.raises(ValueError, match="NaN"):
        similarity_from_keypoints(np.full((6, 2), np.nan), S)


def test_align_face_on_the_astronaut(astronaut_bgr):
    with FaceDetector() as det:
        d = det.detect(astronaut_bgr)[0]
    crop, f2c, c2f = align_face(astronaut_bgr, d.keypoints, S)
    assert crop.shape == (S, S, 3) and crop.dtype == np.uint8
    assert f2c.shape == (2, 3) and f2c.dtype == np.float32 and c2f.dtype == np.float32
    # The eyes land on the template within a couple of pixels.
    eyes = transform_points(d.keypoints[:2], f2c)
    np.testing.assert_allclose(eyes, template_points(S)[:2], atol=3.0)
    # Round trip frame -> face -> frame.
    np.testing.assert_allclose(transform_points(transform_points(d.keypoints, f2c), c2f), d.keypoints, atol=1e-3)
    # RGB order: the crop equals the BGR warp with channels swapped.
    bgr = cv2.warpAffine(
        astronaut_bgr, f2c.astype(np.float64), (S, S), flags=cv2.INTER_LINEAR, borderMode=align.BORDER_MODE
    )
    assert np.abs(crop.astype(int) - bgr[:, :, ::-1]).max() <= 1  # f2c is float32: rounding only
    # The re-detected aligned face sits where the template says (the crop is FER-like, not a tiny face).
    with FaceDetector() as det:
        again = det.detect(cv2.cvtColor(cv2.resize(crop, (256, 256)), cv2.COLOR_RGB2BGR))
    assert again and again[0].box[2] > 0.6 * 256


def test_large_faces_are_shrunk_without_aliasing(astronaut_bgr):
    """A 4x bigger frame gives (almost) the same crop: the pre-shrink path agrees with the direct warp."""
    kps = np.array([[201.5, 104.9], [245.9, 109.1], [220.4, 127.3], [219.8, 148.6], [178.2, 115.7], [272.2, 123.9]])
    small, _, _ = align_face(astronaut_bgr, kps, S)
    big_frame = cv2.resize(astronaut_bgr, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    big, f2c, _ = align_face(big_frame, (kps + 0.5) * 4 - 0.5, S)
    assert np.sqrt(abs(np.linalg.det(f2c[:, :2]))) < 0.5  # the pre-shrink path was taken
    assert np.abs(big.astype(int) - small.astype(int)).mean() < 4.0


def test_gray_frames_align(astronaut_bgr):
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    crop, _, _ = align_face(gray, transform_points(template_points(S), _similarity(1.5, 0, 150, 60)), S)
    assert crop.shape == (S, S, 3)
    assert np.array_equal(crop[..., 0], crop[..., 1])


def test_crop_to_face():
    gray = (np.arange(48 * 48) % 256).astype(np.uint8).reshape(48, 48)
    out = crop_to_face(gray, S)
    assert out.shape == (S, S, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 2])
    bgr = np.zeros((10, 10, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    rgb = crop_to_face(bgr, 32)
    assert rgb[0, 0].tolist() == [0, 0, 255]
    assert crop_to_face(np.zeros((1, 1), np.uint8), 32).shape == (32, 32, 3)
    wide = np.zeros((40, 100, 3), np.uint8)
    wide[:, 30:70] = 200  # the centre square
    assert crop_to_face(wide, 40).min() == 200
    assert crop_to_face(np.zeros((5, 5, 1), np.uint8), 8).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="uint8"):
        crop_to_face(np.zeros((5, 5), np.uint16), 8)


def test_grid_cell_quads():
    g, s = 4, 32
    mask = np.zeros((g, g), bool)
    assert grid_cell_quads(mask, _similarity(1, 0, 0, 0), s).shape == (0, 4, 2)
    mask[1, 2] = True
    quads = grid_cell_quads(mask, _similarity(2.0, 0, 10, 20), s)
    assert quads.shape == (1, 4, 2)
    # cell (row 1, col 2) spans x in [15.5, 23.5], y in [7.5, 15.5] in face space
    np.testing.assert_allclose(quads[0, 0], [10 + 2 * 15.5, 20 + 2 * 7.5], atol=1e-4)
    np.testing.assert_allclose(quads[0, 2], [10 + 2 * 23.5, 20 + 2 * 15.5], atol=1e-4)
    full = grid_cell_quads(np.ones((g, g), bool), _similarity(1.3, 17, 5, 5), s)
    assert full.shape == (16, 4, 2)
    np.testing.assert_allclose(full.reshape(-1, 2).min(0), face_quad(_similarity(1.3, 17, 5, 5), s).min(0), atol=1e-4)


def _warp_full_frame(image, c2f, frame_shape, face_size=None):
    """warp_to_frame_roi pasted into a full frame -> (warped (H, W[, C]), coverage (H, W))."""
    patch, coverage, (x0, y0) = warp_to_frame_roi(image, c2f, frame_shape, face_size)
    h, w = frame_shape[:2]
    out = np.zeros((h, w) + image.shape[2:], image.dtype)
    cov = np.zeros((h, w), np.float32)
    ph, pw = coverage.shape
    out[y0 : y0 + ph, x0 : x0 + pw] = patch
    cov[y0 : y0 + ph, x0 : x0 + pw] = coverage
    return out, cov


def test_warp_to_frame_roi():
    face = np.full((32, 32, 3), 200, np.uint8)
    c2f = _similarity(2.0, 0, 50.5, 30.5)  # face pixel (0, 0) -> frame (50.5, 30.5)
    warped, coverage = _warp_full_frame(face, c2f, (240, 320, 3))
    assert warped.shape == (240, 320, 3) and coverage.shape == (240, 320)
    assert coverage[40:80, 60:110].min() > 0.99 and warped[40:80, 60:110].min() == 200
    assert coverage[:20].max() == 0.0 and coverage[:, 130:].max() == 0.0
    # A G x G map warps to the same place as the S x S face.
    grid = np.ones((4, 4), np.float32)
    _, cov_grid = _warp_full_frame(grid, c2f, (240, 320), face_size=32)
    assert np.abs(cov_grid - coverage).max() < 0.05
    # Entirely outside the frame: an empty, well-shaped patch.
    patch, cov, origin = warp_to_frame_roi(face, _similarity(1, 0, 1000, 1000), (240, 320, 3))
    assert patch.shape == (0, 0, 3) and cov.shape == (0, 0) and origin == (0, 0)
