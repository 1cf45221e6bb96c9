"""Overlays: ``draw(frame, result, options)`` paints the pipeline's findings on a copy of the frame.

Elements (each switched by ``config.RenderOptions``):
- boxes: the face box in the colour of the predicted expression (small faces: a thin grey box);
- grid: occluded patches as a translucent red grid, warped onto the face with ``face_to_frame``
  (so it follows head roll and scale exactly like the model saw it);
- cam: the FER network's attention map as a heat-map on the face;
- reconstruction: the reconstructed face as an inset beside the box;
- label: "happy 87%" (with the track id) above the box;
- occluded_percent: "occluded 23%" below the box;
- bars: the 7 class probabilities of the selected face (default: the largest) in a corner panel;
- fps: the display rate in the top-right corner.

Text size follows the frame height (``text_scale``), so it reads the same at 480p and 1080p;
``large_text`` (presentation mode) makes everything 1.6x larger. The helpers below
(``colorize_heatmap``, ``heatmap_on_face``, ``grid_on_face``, ``render_probability_bars``) return
new images, used by the GUI side panel and by ``render.strip`` (the virtual camera's side strip) too.
``draw_caption`` puts the demo loop's captions on a frame. Nothing here modifies its inputs.
"""

from __future__ import annotations

import cv2
import numpy as np

from ofer_live.config import RenderOptions
from ofer_live.contracts import LABELS
from ofer_live.face.align import grid_cell_quads, warp_to_frame_roi
from ofer_live.types import FaceResult, FrameResult

# One colour per class (BGR), chosen to stay distinguishable and readable on dark panels.
LABEL_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "angry": (60, 60, 230),
    "disgust": (60, 170, 60),
    "fear": (200, 90, 190),
    "happy": (40, 200, 250),
    "sad": (220, 140, 40),
    "surprise": (230, 220, 60),
    "neutral": (200, 200, 200),
}
OCCLUDED_BGR: tuple[int, int, int] = (40, 40, 235)
SMALL_FACE_BGR: tuple[int, int, int] = (160, 160, 160)
GRID_ALPHA = 0.38
CAM_ALPHA = 0.45
PANEL_ALPHA = 0.6
FONT = cv2.FONT_HERSHEY_SIMPLEX
_LARGE_FACTOR = 1.6


def text_scale(frame_height: int, large: bool = False) -> float:
    """Frame height -> OpenCV font scale (0.6 at 480p, 1.35 at 1080p; x1.6 for presentation mode)."""
    scale = max(0.45, frame_height / 800.0)
    return scale * (_LARGE_FACTOR if large else 1.0)


def _thickness(scale: float) -> int:
    return max(1, round(scale * 1.6))


def _put_text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    color: tuple[int, int, int] = (255, 255, 255),
    background: bool = True,
) -> None:
    """Draw text in place; org is the baseline-left point. ``background`` puts a translucent dark box
    behind it for contrast (an outline stroke does not line up with OpenCV 5's TrueType text)."""
    if background:
        tw, th, tb = _text_size(text, scale)
        pad = max(1, round(3 * scale))
        _blend_rect(
            img, org[0] - pad, org[1] - th - pad, org[0] + tw + pad, org[1] + tb + pad, (15, 15, 15), PANEL_ALPHA
        )
    cv2.putText(img, text, org, FONT, scale, color, _thickness(scale), cv2.LINE_AA)


def _text_size(text: str, scale: float) -> tuple[int, int, int]:
    """-> (width, height above baseline, baseline) in pixels."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, _thickness(scale))
    return w, h, base


def _blend_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int], alpha: float) -> None:
    """Blend a filled rectangle into img (H, W, 3) uint8 in place, clipped to the image."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    fill = np.empty_like(roi)
    fill[:] = color
    cv2.addWeighted(fill, alpha, roi, 1 - alpha, 0, dst=roi)


def _blend_patch(img: np.ndarray, patch: np.ndarray, weight: np.ndarray, origin: tuple[int, int]) -> None:
    """img (H, W, 3) uint8 <- blend patch (h, w, 3) with per-pixel weight (h, w) in [0, 1] at origin, in place."""
    ph, pw = weight.shape
    if ph == 0 or pw == 0:
        return
    x0, y0 = origin
    roi = img[y0 : y0 + ph, x0 : x0 + pw]
    wgt = weight[: roi.shape[0], : roi.shape[1], None]
    mixed = roi.astype(np.float32) * (1 - wgt) + patch[: roi.shape[0], : roi.shape[1]].astype(np.float32) * wgt
    roi[:] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------------------
# Helpers shared with the GUI side panel (all return new images).


def colorize_heatmap(values: np.ndarray, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """values: (h, w) float in [0, 1] -> (h, w, 3) uint8 BGR colour map."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    return cv2.applyColorMap((v * 255 + 0.5).astype(np.uint8), colormap)


def heatmap_on_face(face_rgb: np.ndarray, cam: np.ndarray, alpha: float = CAM_ALPHA) -> np.ndarray:
    """face_rgb: (S, S, 3) uint8 RGB, cam: (G, G) in [0, 1] -> (S, S, 3) uint8 RGB with the heat-map blended in."""
    s = face_rgb.shape[0]
    up = cv2.resize(np.asarray(cam, dtype=np.float32), (s, s), interpolation=cv2.INTER_LINEAR)
    heat = cv2.cvtColor(colorize_heatmap(up), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(heat, alpha, face_rgb, 1 - alpha, 0)


def grid_on_face(face_rgb: np.ndarray, mask: np.ndarray, alpha: float = GRID_ALPHA) -> np.ndarray:
    """face_rgb: (S, S, 3) uint8 RGB, mask: (G, G) bool -> (S, S, 3) uint8 RGB with occluded cells tinted red."""
    s, g = face_rgb.shape[0], mask.shape[0]
    cells = cv2.resize(np.asarray(mask, dtype=np.uint8), (s, s), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = face_rgb.copy()
    red = np.array(OCCLUDED_BGR[::-1], dtype=np.float32)
    out[cells] = (face_rgb[cells].astype(np.float32) * (1 - alpha) + red * alpha + 0.5).astype(np.uint8)
    step = s / g
    for k in range(1, g):
        p = round(k * step)
        out[p, :] = out[p, :] // 2 + 40
        out[:, p] = out[:, p] // 2 + 40
    return out


def render_probability_bars(
    probs: np.ndarray, size: tuple[int, int], labels: tuple[str, ...] = LABELS, title: str | None = None
) -> np.ndarray:
    """probs: (7,) -> (h, w, 3) uint8 BGR image of labelled horizontal bars on a dark background (size = (w, h))."""
    w, h = size
    img = np.full((h, w, 3), 30, dtype=np.uint8)
    rows = len(labels) + (1 if title else 0)
    scale = max(0.3, min(h / rows / 34.0, w / 330.0))
    _draw_bars(img, np.asarray(probs, dtype=np.float32), (0, 0, w, h), scale, labels, background=False, title=title)
    return img


def bars_panel_size(scale: float, n_labels: int = len(LABELS), title: bool = True) -> tuple[int, int]:
    """Text scale -> (w, h) of the probability panel that ``draw`` puts in a corner."""
    row_h = round(30 * scale)
    return round(310 * scale), row_h * (n_labels + (1 if title else 0)) + round(8 * scale)


def _draw_bars(
    img: np.ndarray,
    probs: np.ndarray,
    rect: tuple[int, int, int, int],
    scale: float,
    labels: tuple[str, ...],
    background: bool = True,
    title: str | None = None,
) -> None:
    """Draw labelled probability bars in place into rect (x, y, w, h) of img; text at ``scale * 0.8``."""
    x, y, w, h = rect
    rows = len(labels) + (1 if title else 0)
    row_h = h / rows
    ts = scale * 0.8
    if background:
        _blend_rect(img, x, y, x + w, y + h, (20, 20, 20), PANEL_ALPHA)
    pad = max(2, round(5 * scale))
    label_w = _text_size("surprise", ts)[0] + 2 * pad
    pct_w = _text_size("100%", ts)[0] + 2 * pad
    bar_x0, bar_x1 = x + label_w, x + w - pct_w
    top = y
    if title:
        cv2.putText(
            img, title, (x + pad, int(top + row_h * 0.72)), FONT, ts, (255, 255, 255), _thickness(ts), cv2.LINE_AA
        )
        top += row_h
    best = int(np.argmax(probs)) if probs.size else -1
    for i, name in enumerate(labels):
        ry = top + i * row_h
        color = LABEL_COLORS_BGR.get(name, (200, 200, 200))
        p = float(probs[i]) if i < probs.size else 0.0
        text_color = (255, 255, 255) if i == best else (190, 190, 190)
        baseline = int(ry + row_h * 0.72)
        cv2.putText(img, name, (x + pad, baseline), FONT, ts, text_color, _thickness(ts), cv2.LINE_AA)
        by0, by1 = int(ry + row_h * 0.22), int(ry + row_h * 0.78)
        cv2.rectangle(img, (bar_x0, by0), (bar_x1, by1), (70, 70, 70), -1)
        fill_x = bar_x0 + round((bar_x1 - bar_x0) * min(max(p, 0.0), 1.0))
        if fill_x > bar_x0:
            cv2.rectangle(img, (bar_x0, by0), (fill_x, by1), color, -1)
        cv2.putText(
            img, f"{round(p * 100):d}%", (bar_x1 + pad, baseline), FONT, ts, text_color, _thickness(ts), cv2.LINE_AA
        )


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Overlap area of two (x, y, w, h) rectangles."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy


def _panel_corner(
    frame_wh: tuple[int, int],
    panel_wh: tuple[int, int],
    margin: int,
    top_reserved: int,
    avoid: list[tuple[int, int, int, int]],
) -> tuple[int, int]:
    """Pick the corner (TL, BL, TR, BR) whose panel rectangle overlaps the ``avoid`` boxes least."""
    w, h = frame_wh
    pw, ph = panel_wh
    corners = [
        (margin, margin),
        (margin, h - ph - margin),
        (w - pw - margin, margin + top_reserved),
        (w - pw - margin, h - ph - margin),
    ]
    costs = [sum(_overlap((cx, cy, pw, ph), box) for box in avoid) for cx, cy in corners]
    best = int(np.argmin(costs))
    cx, cy = corners[best]
    return max(0, cx), max(0, cy)


# -------------------------------------------------------------------------------------------------
# The frame overlay.


def _draw_grid(img: np.ndarray, face: FaceResult) -> None:
    """img: (H, W, 3) uint8 BGR, drawn in place: the occluded cells of face.mask (G, G) as red quads."""
    mask = np.asarray(face.mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        return
    quads = grid_cell_quads(mask, face.face.face_to_frame, face.face.size)
    pts = np.round(quads * 16).astype(np.int32)
    h, w = img.shape[:2]
    x0 = int(max(0, np.floor(quads[..., 0].min()) - 2))
    y0 = int(max(0, np.floor(quads[..., 1].min()) - 2))
    x1 = int(min(w, np.ceil(quads[..., 0].max()) + 3))
    y1 = int(min(h, np.ceil(quads[..., 1].max()) + 3))
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    shift = np.array([x0 * 16, y0 * 16], dtype=np.int32)
    local = [q - shift for q in pts]
    cv2.fillPoly(layer, local, OCCLUDED_BGR, cv2.LINE_AA, shift=4)
    cv2.addWeighted(layer, GRID_ALPHA, roi, 1 - GRID_ALPHA, 0, dst=roi)
    cv2.polylines(roi, local, True, (30, 30, 170), 1, cv2.LINE_AA, shift=4)


def _draw_cam(img: np.ndarray, face: FaceResult) -> None:
    """Blend the CAM heat-map onto the face; weight grows with attention, so cold areas stay untinted."""
    cam = np.asarray(face.cam, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0:
        return
    values, coverage, origin = warp_to_frame_roi(
        np.clip(cam, 0.0, 1.0), face.face.face_to_frame, img.shape, face_size=face.face.size
    )
    if values.size == 0:
        return
    _blend_patch(img, colorize_heatmap(values), coverage * CAM_ALPHA * np.sqrt(np.clip(values, 0, 1)), origin)


def _place_inset(box: tuple[int, int, int, int], inset: int, frame_w: int, frame_h: int, gap: int) -> tuple[int, int]:
    """Top-left corner for a square inset beside the box: right of it, else left, else inside the frame."""
    x, y, w, h = box
    ix = x + w + gap
    if ix + inset > frame_w:
        ix = x - gap - inset
    if ix < 0:
        ix = max(0, min(frame_w - inset, x + w - inset))
    iy = int(np.clip(y, 0, max(0, frame_h - inset)))
    return ix, iy


def _draw_inset(img: np.ndarray, face: FaceResult, scale: float) -> None:
    """img: (H, W, 3) uint8 BGR, drawn in place: the reconstruction (S, S, 3) RGB as an inset beside the box."""
    rec = face.reconstruction
    if rec.ndim != 3 or rec.shape[0] == 0:
        return
    h, w = img.shape[:2]
    box = face.face.box
    inset = int(np.clip(box[3] * 0.8, 48 * scale / 0.6, h / 3))
    inset = min(inset, w, h)
    if inset < 8:
        return
    gap = max(4, round(6 * scale))
    ix, iy = _place_inset(box, inset, w, h, gap)
    small = cv2.resize(cv2.cvtColor(rec, cv2.COLOR_RGB2BGR), (inset, inset), interpolation=cv2.INTER_AREA)
    img[iy : iy + inset, ix : ix + inset] = small
    cv2.rectangle(img, (ix, iy), (ix + inset - 1, iy + inset - 1), (255, 255, 255), 1, cv2.LINE_AA)
    title_scale = scale * 0.6
    _, th, tb = _text_size("reconstructed", title_scale)
    pad = max(1, round(3 * title_scale))
    _put_text(img, "reconstructed", (ix + pad + 1, iy + inset - tb - pad - 1), title_scale)


def _draw_face_labels(img: np.ndarray, face: FaceResult, options: RenderOptions, scale: float) -> None:
    """img: (H, W, 3) uint8 BGR, drawn in place: the label chip above the box and the occluded % below."""
    x, y, w, h = face.face.box
    color = LABEL_COLORS_BGR.get(face.label, (255, 255, 255))
    frame_h, frame_w = img.shape[:2]
    pad = max(2, round(4 * scale))
    if options.label:
        tid = face.face.track_id
        text = f"{face.label} {round(face.confidence * 100):d}%" + (f"  #{tid}" if tid >= 0 else "")
        tw, th, tb = _text_size(text, scale)
        cx = int(np.clip(x, 0, max(0, frame_w - tw - 2 * pad)))
        cy = y - pad if y - th - tb - 2 * pad >= 0 else min(frame_h - 1, y + h + th + tb + 2 * pad)
        _blend_rect(img, cx, cy - th - tb - pad, cx + tw + 2 * pad, cy + pad, (20, 20, 20), PANEL_ALPHA)
        cv2.rectangle(img, (cx, cy - th - tb - pad), (cx + 3, cy + pad), color, -1)
        cv2.putText(img, text, (cx + pad, cy - tb), FONT, scale, (255, 255, 255), _thickness(scale), cv2.LINE_AA)
    if options.occluded_percent:
        text = f"occluded {round(face.occluded_fraction * 100):d}%"
        s2 = scale * 0.85
        tw, th, tb = _text_size(text, s2)
        cx = int(np.clip(x, 0, max(0, frame_w - tw - 2 * pad)))
        cy = y + h + th + pad * 2
        if cy + tb > frame_h:
            cy = y + h - pad
        _put_text(img, text, (cx + pad, cy), s2, (150, 150, 255) if face.occluded_fraction > 0 else (220, 220, 220))


def _expand(box: tuple[int, int, int, int], scale: float, options: RenderOptions) -> tuple[int, int, int, int]:
    """The area a face's box, label and inset take, to keep the bars panel off it."""
    x, y, w, h = box
    extra_top = round(40 * scale) if options.label else 0
    extra_right = int(h * 0.8) + round(10 * scale) if options.reconstruction else 0
    extra_bottom = round(30 * scale) if options.occluded_percent else 0
    return x, y - extra_top, w + extra_right, h + extra_top + extra_bottom


def draw_caption(frame_bgr: np.ndarray, text: str, large_text: bool = False) -> np.ndarray:
    """frame_bgr: (H, W, 3) uint8 -> a copy with ``text`` on a dark band along the bottom edge (demo captions);
    the text shrinks to fit the width."""
    img = frame_bgr.copy()
    h, w = img.shape[:2]
    scale = text_scale(h, large_text) * 0.9
    margin = max(4, round(8 * scale))
    tw, th, _ = _text_size(text, scale)
    if tw > w - 2 * margin:
        scale *= (w - 2 * margin) / tw
        tw, th, _ = _text_size(text, scale)
    band = th + 2 * margin
    _blend_rect(img, 0, h - band, w, h, (15, 15, 15), 0.7)
    _put_text(img, text, ((w - tw) // 2, h - margin), scale, (255, 255, 255))
    return img


def draw(
    frame_bgr: np.ndarray,
    result: FrameResult | None,
    options: RenderOptions | None = None,
    fps: float | None = None,
    *,
    selected_track_id: int | None = None,
) -> np.ndarray:
    """frame_bgr: (H, W, 3) BGR uint8, result for this frame (or None) -> new (H, W, 3) BGR uint8 with overlays.

    Never modifies ``frame_bgr``. ``selected_track_id`` picks the face whose bars are shown
    (default: the largest face).
    """
    options = options or RenderOptions()
    img = frame_bgr.copy()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    scale = text_scale(h, options.large_text)
    if result is not None:
        faces = list(result.faces)
        for face in faces:
            if options.cam:
                _draw_cam(img, face)
            if options.grid:
                _draw_grid(img, face)
        if options.boxes:
            lw = max(1, round(scale * 2.2))
            for bx, by, bw, bh in result.small_faces:
                cv2.rectangle(img, (bx, by), (bx + bw, by + bh), SMALL_FACE_BGR, max(1, lw // 2), cv2.LINE_AA)
                _put_text(img, "small", (bx, max(0, by - 3)), scale * 0.6, SMALL_FACE_BGR)
            for face in faces:
                x, y, bw, bh = face.face.box
                cv2.rectangle(
                    img, (x, y), (x + bw, y + bh), LABEL_COLORS_BGR.get(face.label, (255, 255, 255)), lw, cv2.LINE_AA
                )
        if options.reconstruction:
            for face in faces:
                _draw_inset(img, face, scale)
        if options.bars and faces:
            chosen = max(faces, key=lambda f: f.face.box[2] * f.face.box[3])
            if selected_track_id is not None:
                chosen = next((f for f in faces if f.face.track_id == selected_track_id), chosen)
            tid = chosen.face.track_id
            title = "expression" + (f"  #{tid}" if tid >= 0 and len(faces) > 1 else "")
            pw, ph = bars_panel_size(scale)
            pw, ph = min(pw, w), min(ph, h)
            margin = max(4, round(8 * scale))
            fps_h = _text_size("0 FPS", scale)[1] + 2 * margin if options.fps and fps is not None else 0
            avoid = [_expand(f.face.box, scale, options) for f in faces]
            px, py = _panel_corner((w, h), (pw, ph), margin, fps_h, avoid)
            _draw_bars(img, np.asarray(chosen.probs, np.float32), (px, py, pw, ph), scale, LABELS, title=title)
    if result is not None:
        for face in result.faces:
            _draw_face_labels(img, face, options, scale)
    if options.fps and fps is not None and np.isfinite(fps):
        text = f"{fps:.1f} FPS"
        tw, th, tb = _text_size(text, scale)
        margin = max(4, round(8 * scale))
        _put_text(img, text, (w - tw - margin, margin + th), scale, (120, 255, 120))
    return img
