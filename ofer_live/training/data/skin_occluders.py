"""Occluders that look like skin, for the detector: real occluders in a meeting are mostly hands, arms and other
faces, which the cut-out bank barely has.

- ``hand_alpha``: a procedural hand silhouette (palm, four fingers at random spread and bend, a thumb, often a
  forearm to the edge) with soft edges;
- ``skin_hand``: that silhouette filled with skin cut from a donor face (another face of the batch, or the face
  itself), brightness matched to the target face, shaded (a light direction, darker towards the silhouette's
  edges and along the finger creases), sometimes motion-blurred;
- ``cutpaste``: a soft-edged region cut from a donor face, or from the same face elsewhere (CutPaste, Li et al.,
  CVPR 2021): texture that is face-like but in the wrong place.

Each returns an ``Occluder`` (RGBA) that ``occlusion_synth.paste_occluder`` places like any cut-out ("anywhere":
over the mouth, a cheek, an eye), so coverage and patch labels stay exact.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ofer_live.training.data.occluders import Occluder

HAND_KIND = "hands_synth"
HAND_SIZE = (0.5, 0.95)  # the hand's longer side / face size when pasted (a hand over a mouth or a cheek)
CUTPASTE_KIND = "cutpaste"
# Skin regions of an aligned face (unit coordinates of the run-time template): cheeks and forehead.
SKIN_REGIONS: tuple[tuple[float, float, float, float], ...] = (
    (0.24, 0.50, 0.40, 0.66),  # x0, y0, x1, y1: image-left cheek
    (0.60, 0.50, 0.76, 0.66),  # image-right cheek
    (0.36, 0.14, 0.64, 0.28),  # forehead
)


def _capsule(mask: np.ndarray, p0: np.ndarray, p1: np.ndarray, width: float, value: int = 255) -> None:
    """Draw a filled capsule (a thick segment with round ends) into ``mask`` in place."""
    r = max(1, int(round(width / 2)))
    a, b = tuple(int(round(v)) for v in p0), tuple(int(round(v)) for v in p1)
    cv2.line(mask, a, b, value, 2 * r, cv2.LINE_AA)
    cv2.circle(mask, a, r, value, -1, cv2.LINE_AA)
    cv2.circle(mask, b, r, value, -1, cv2.LINE_AA)


def hand_alpha(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """-> (alpha (size, size) float32 in [0, 1] of a hand, creases (size, size) float32: finger outlines inside
    the hand, for shading). Palm low in the canvas, fingers up, random spread, lengths and bends, optional arm."""
    s = float(size)
    mask = np.zeros((size, size), np.uint8)
    creases = np.zeros((size, size), np.uint8)
    palm_c = np.array([0.5, 0.62]) * s + rng.normal(0, 0.02 * s, 2)
    palm_w, palm_h = rng.uniform(0.18, 0.23) * s, rng.uniform(0.2, 0.26) * s
    cv2.ellipse(mask, tuple(int(v) for v in palm_c), (int(palm_w), int(palm_h)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    spread = rng.uniform(4, 16)
    finger_w = rng.uniform(0.07, 0.09) * s
    for i in range(4):
        angle = math.radians(-90 + (i - 1.5) * spread + rng.normal(0, 3))
        base = palm_c + np.array([(i - 1.5) * palm_w * 0.55, -palm_h * 0.75])
        length = rng.uniform(0.22, 0.36) * s * (0.8 if i in (0, 3) else 1.0)
        if rng.random() < 0.2:  # a curled finger
            length *= 0.45
        tip = base + length * np.array([math.cos(angle), math.sin(angle)])
        _capsule(mask, base, tip, finger_w)
        _capsule(creases, base, tip, finger_w)
        cv2.circle(creases, tuple(int(v) for v in tip), 1, 0, -1)
    side = -1 if rng.random() < 0.5 else 1
    thumb_base = palm_c + np.array([side * palm_w * 0.85, -palm_h * 0.1])
    t_angle = math.radians(-90 + side * rng.uniform(35, 75))
    thumb_tip = thumb_base + rng.uniform(0.18, 0.26) * s * np.array([math.cos(t_angle), math.sin(t_angle)])
    _capsule(mask, thumb_base, thumb_tip, finger_w * 1.15)
    if rng.random() < 0.6:  # a forearm to the bottom edge
        _capsule(
            mask,
            palm_c + np.array([0, palm_h * 0.5]),
            np.array([palm_c[0] + rng.normal(0, 0.1 * s), 1.2 * s]),
            palm_w * rng.uniform(1.3, 1.7),
        )
    edges = cv2.morphologyEx(creases, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    angle = float(rng.uniform(-50, 50))
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, 1.0)
    mask = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR)
    edges = cv2.warpAffine(edges, m, (size, size), flags=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(0.6, s / 160))
    crease = (edges.astype(np.float32) / 255.0) * (alpha > 0.9)
    return np.clip(alpha, 0, 1).astype(np.float32), crease.astype(np.float32)


def skin_patch(face: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """face: (S, S, 3) uint8 aligned -> (size, size, 3) uint8 skin texture cut from a cheek or the forehead."""
    s = face.shape[0]
    x0, y0, x1, y1 = SKIN_REGIONS[int(rng.integers(len(SKIN_REGIONS)))]
    side = int(max(4, rng.uniform(0.08, 0.14) * s))
    x = int(rng.uniform(x0 * s, max(x0 * s + 1, x1 * s - side)))
    y = int(rng.uniform(y0 * s, max(y0 * s + 1, y1 * s - side)))
    patch = face[y : y + side, x : x + side]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=cv2.INTER_CUBIC)


def _mean_skin(face: np.ndarray) -> np.ndarray:
    s = face.shape[0]
    x0, y0, x1, y1 = SKIN_REGIONS[0]
    left = face[int(y0 * s) : int(y1 * s), int(x0 * s) : int(x1 * s)]
    x0, y0, x1, y1 = SKIN_REGIONS[1]
    right = face[int(y0 * s) : int(y1 * s), int(x0 * s) : int(x1 * s)]
    return np.concatenate([left.reshape(-1, 3), right.reshape(-1, 3)]).mean(axis=0)


def _motion_blur(rgba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    length = int(rng.integers(3, 9))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0 / length
    m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, m, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(rgba, -1, kernel)


def skin_hand(
    face: np.ndarray, donor: np.ndarray, rng: np.random.Generator, size: int = 128, motion_blur_p: float = 0.25
) -> Occluder:
    """A hand filled with the donor's skin, brightness matched to ``face`` (both (S, S, 3) uint8 aligned faces;
    a donor of the other colour type is replaced by the face itself) -> Occluder (kind ``hands_synth``)."""
    from ofer_live.training.data.occlusion_synth import is_gray

    if is_gray(donor) != is_gray(face):
        donor = face
    alpha, crease = hand_alpha(rng, size)
    skin = skin_patch(donor, rng, size).astype(np.float32)
    skin *= (_mean_skin(face) * rng.uniform(0.85, 1.15)) / np.maximum(skin.reshape(-1, 3).mean(axis=0), 1.0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    light = rng.uniform(0, 2 * math.pi)
    shade = 1.0 + rng.uniform(0.08, 0.2) * ((xx - 0.5) * math.cos(light) + (yy - 0.5) * math.sin(light)) * 2
    inside = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    shade *= 0.78 + 0.22 * np.clip(inside / (0.06 * size), 0, 1)
    shade *= 1.0 - 0.15 * cv2.GaussianBlur(crease, (0, 0), 1.5)
    rgb = np.clip(skin * shade[..., None] + rng.normal(0, 2.5, skin.shape), 0, 255).astype(np.uint8)
    if is_gray(face):
        rgb = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    rgba = np.dstack([rgb, (alpha * 255 + 0.5).astype(np.uint8)])
    if rng.random() < motion_blur_p:
        rgba = _motion_blur(rgba, rng)
    return Occluder(kind=HAND_KIND, name="hand_synth", rgba=rgba)


def cutpaste(face: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> Occluder:
    """A soft-edged region cut from ``donor`` (or ``face`` itself) -> Occluder (kind ``cutpaste``), placed
    elsewhere on ``face`` by ``paste_occluder``."""
    from ofer_live.training.data.occlusion_synth import is_gray

    source = face if rng.random() < 0.5 or is_gray(donor) != is_gray(face) else donor
    s = source.shape[0]
    w, h = (int(rng.uniform(0.18, 0.4) * s) for _ in range(2))
    x, y = int(rng.uniform(0.1 * s, 0.9 * s - w)), int(rng.uniform(0.1 * s, 0.9 * s - h))
    region = np.ascontiguousarray(source[y : y + h, x : x + w])
    mask = np.zeros((h, w), np.uint8)
    if rng.random() < 0.5:
        cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 2 - 1), max(1, h // 2 - 1)), 0, 0, 360, 255, -1)
    else:
        pts = np.stack([rng.uniform(0, w, 7), rng.uniform(0, h, 7)], axis=1).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(pts)], 255)
    alpha = cv2.GaussianBlur(mask, (0, 0), max(0.8, min(w, h) / 30))
    return Occluder(kind=CUTPASTE_KIND, name="cutpaste", rgba=np.dstack([region, alpha]))
