"""render.draw on hand-built results (a fake face with a G=4 mask)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ofer_live.config import RenderOptions
from ofer_live.face import align
from ofer_live.render.overlay import (
    OCCLUDED_BGR,
    colorize_heatmap,
    draw,
    grid_on_face,
    heatmap_on_face,
    render_probability_bars,
    text_scale,
)
from ofer_live.types import Face, FaceResult, FrameResult

G, S = 4, 32
ALL_OFF = RenderOptions(
    boxes=False, grid=False, reconstruction=False, cam=False, label=False, bars=False, occluded_percent=False, fps=False
)


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]], dtype=np.float32)


def make_result(frame_shape=(480, 640), scale=4.0, tx=250.0, ty=120.0, angle=0.0, track_id=1, small=()):
    c2f = similarity(scale, angle, tx, ty)
    f2c = align.invert_affine(c2f).astype(np.float32)
    quad = align.face_quad(c2f, S)
    x0, y0 = np.floor(quad.min(0)).astype(int)
    x1, y1 = np.ceil(quad.max(0)).astype(int)
    mask = np.zeros((G, G), bool)
    mask[2:, 1:3] = True  # the lower middle (mouth) is occluded
    face = Face(
        box=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
        keypoints=np.zeros((6, 2), np.float32),
        score=0.9,
        track_id=track_id,
        aligned=np.full((S, S, 3), 128, np.uint8),
        frame_to_face=f2c,
        face_to_frame=c2f,
    )
    cam = np.zeros((G, G), np.float32)
    cam[1, 1] = 1.0
    rec = np.zeros((S, S, 3), np.uint8)
    rec[..., 1] = 255  # pure green (RGB), easy to find in the BGR frame
    fr = FaceResult(
        face=face,
        patch_score=mask * 2.0,
        mask=mask,
        cam=cam,
        reconstruction=rec,
        probs=np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.05, 0.05], np.float32),
    )
    return FrameResult(frame_index=0, time_s=0.0, frame_shape=frame_shape, faces=(fr,), small_faces=tuple(small))


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(60, 200, (480, 640, 3), dtype=np.uint8)


def test_draw_never_modifies_its_input(frame):
    before = frame.copy()
    out = draw(frame, make_result(), RenderOptions(cam=True), fps=30.0)
    assert np.array_equal(frame, before)
    assert out.shape == frame.shape and out.dtype == np.uint8 and out is not frame
    assert not np.array_equal(out, frame)


def test_nothing_to_draw_returns_an_equal_copy(frame):
    assert np.array_equal(draw(frame, None, RenderOptions(), fps=None), frame)
    assert np.array_equal(draw(frame, make_result(), ALL_OFF, fps=12.0), frame)


def test_occluded_cells_are_tinted_red_on_the_face(frame):
    result = make_result()
    out = draw(
        frame,
        result,
        RenderOptions(
            grid=True,
            **{k: False for k in ("boxes", "reconstruction", "cam", "label", "bars", "occluded_percent", "fps")},
        ),
    )
    c2f = result.faces[0].face.face_to_frame
    occluded_centre = align.transform_points(np.array([[12.0, 28.0]]), c2f)[0]  # cell (3, 1)
    clear_centre = align.transform_points(np.array([[28.0, 4.0]]), c2f)[0]  # cell (0, 3)
    ox, oy = np.round(occluded_centre).astype(int)
    cx, cy = np.round(clear_centre).astype(int)
    diff = out[oy, ox].astype(int) - frame[oy, ox]
    red_channel = int(np.argmax(OCCLUDED_BGR))
    assert diff[red_channel] > 10 and diff[0] < 0  # redder, less blue
    assert np.array_equal(out[cy, cx], frame[cy, cx])


def test_grid_follows_head_roll(frame):
    """With the face rotated, the tinted region rotates too (the grid is warped, not axis-aligned)."""
    base = RenderOptions(
        **{k: False for k in ("boxes", "reconstruction", "cam", "label", "bars", "occluded_percent", "fps")}
    )
    straight = draw(frame, make_result(angle=0.0), base) != frame
    rolled = draw(frame, make_result(angle=30.0), base) != frame
    assert straight.any() and rolled.any() and not np.array_equal(straight, rolled)


@pytest.mark.parametrize(
    "element", ["boxes", "grid", "reconstruction", "cam", "label", "bars", "occluded_percent", "fps"]
)
def test_each_element_can_be_switched(frame, element):
    only = ALL_OFF.__class__(**{**ALL_OFF.__dict__, element: True})
    out = draw(frame, make_result(), only, fps=25.0)
    assert not np.array_equal(out, frame), element


def test_reconstruction_inset_is_shown(frame):
    opts = RenderOptions(**{k: False for k in ("boxes", "grid", "cam", "label", "bars", "occluded_percent", "fps")})
    out = draw(frame, make_result(), opts)
    green = (out[..., 1] == 255) & (out[..., 0] == 0) & (out[..., 2] == 0)
    assert green.sum() > 40 * 40


def test_text_scales_with_frame_height_and_presentation_mode():
    assert text_scale(1080) > 2 * text_scale(480) * 0.9
    assert text_scale(1080, large=True) == pytest.approx(1.6 * text_scale(1080))
    assert text_scale(120) >= 0.45


@pytest.mark.parametrize("shape", [(480, 640), (1080, 1920), (120, 160)])
def test_draws_at_any_size_and_with_faces_at_the_border(shape):
    h, w = shape
    img = np.zeros((h, w, 3), np.uint8)
    for tx, ty in [(-60.0, -40.0), (w - 40.0, h - 40.0), (w / 2, h / 2)]:
        result = make_result(frame_shape=shape, scale=3.0, tx=tx, ty=ty, small=((5, 5, 20, 20),))
        out = draw(img, result, RenderOptions(cam=True, large_text=True), fps=9.5)
        assert out.shape == (h, w, 3)


def test_selected_track_changes_the_bars(frame):
    a = make_result(track_id=1)
    b = make_result(tx=450.0, track_id=2)
    b_face = b.faces[0]
    b_face = FaceResult(
        face=b_face.face,
        patch_score=b_face.patch_score,
        mask=b_face.mask,
        cam=b_face.cam,
        reconstruction=b_face.reconstruction,
        probs=np.eye(7, dtype=np.float32)[0],
    )
    both = FrameResult(frame_index=0, time_s=0.0, frame_shape=(480, 640), faces=(a.faces[0], b_face))
    opts = RenderOptions(
        bars=True, **{k: False for k in ("boxes", "grid", "reconstruction", "cam", "label", "occluded_percent", "fps")}
    )
    assert not np.array_equal(
        draw(frame, both, opts, selected_track_id=1), draw(frame, both, opts, selected_track_id=2)
    )


def test_panel_helpers():
    heat = colorize_heatmap(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4))
    assert heat.shape == (4, 4, 3) and heat.dtype == np.uint8
    face = np.full((S, S, 3), 100, np.uint8)
    assert heatmap_on_face(face, np.ones((G, G), np.float32)).shape == (S, S, 3)
    mask = np.zeros((G, G), bool)
    mask[0, 0] = True
    tinted = grid_on_face(face, mask)
    assert tinted[2, 2, 0] > face[2, 2, 0] and tinted[2, 2, 2] < face[2, 2, 2]  # RGB: red up, blue down
    assert np.array_equal(face, np.full((S, S, 3), 100, np.uint8))
    bars = render_probability_bars(np.full(7, 1 / 7, np.float32), (300, 200), title="expression")
    assert bars.shape == (200, 300, 3) and bars.std() > 0
