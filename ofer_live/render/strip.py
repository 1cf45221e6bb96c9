"""The frame with a slim side strip: the selected face's reconstruction above its probability bars, for the
virtual camera's "with side strip" mode (the meeting sees what the side panel shows, without the window)."""

from __future__ import annotations

import cv2
import numpy as np

from ofer_live.render.overlay import render_probability_bars, text_scale
from ofer_live.types import FaceResult, FrameResult

STRIP_FRACTION = 0.3  # strip width / frame height


def selected_face(result: FrameResult | None, track_id: int | None = None) -> FaceResult | None:
    """The face with ``track_id``, else the largest face, else None."""
    if result is None or not result.faces:
        return None
    largest = max(result.faces, key=lambda f: f.face.box[2] * f.face.box[3])
    if track_id is None:
        return largest
    return next((f for f in result.faces if f.face.track_id == track_id), largest)


def with_side_strip(
    frame_bgr: np.ndarray, result: FrameResult | None, selected_track_id: int | None = None
) -> np.ndarray:
    """frame_bgr: (H, W, 3) uint8 -> (H, W + w, 3) uint8: the frame, then a dark strip w = 0.3 H wide with the
    reconstruction (square, full strip width) and the 7 probability bars below it; "no face" when there is none."""
    h = frame_bgr.shape[0]
    w = max(64, round(STRIP_FRACTION * h)) & ~1
    strip = np.full((h, w, 3), 24, np.uint8)
    face = selected_face(result, selected_track_id)
    if face is None:
        scale = text_scale(h) * 0.8
        cv2.putText(
            strip,
            "no face",
            (8, h // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (200, 200, 200),
            max(1, round(scale * 2)),
            cv2.LINE_AA,
        )
    else:
        side = min(w, h // 2)
        recon = cv2.cvtColor(np.asarray(face.reconstruction), cv2.COLOR_RGB2BGR)
        strip[:side, (w - side) // 2 : (w - side) // 2 + side] = cv2.resize(
            recon, (side, side), interpolation=cv2.INTER_LINEAR
        )
        bars_h = min(h - side, round(w * 0.9))
        if bars_h > 20:
            strip[side : side + bars_h] = render_probability_bars(face.probs, (w, bars_h), title=face.label)
    return np.concatenate([frame_bgr, strip], axis=1)
