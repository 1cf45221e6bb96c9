"""Synthetic occlusion with exact per-patch ground truth (seeded: every function takes a numpy Generator).

Every occluder is composited through a pixel alpha map ``alpha`` (S, S) float32 in [0, 1]; the ground truth on
the G x G patch grid is the exact fraction of each patch it covers (``patch_coverage``), and a patch counts as
occluded when that fraction reaches ``POSITIVE_COVERAGE`` (``patch_labels``).

Kinds of occlusion:
- ``random_patch_mask``: exactly round(p * G^2) whole patches (the paper's Figure 1, "random sampling");
- ``cam_patch_mask``: the round(p * G^2) patches with the highest CAM value (Figure 1, "Grad-CAM occlusion");
  ``CamOcclusion`` wraps any callable ``faces -> (N, g, g) CAM``;
- ``irregular_mask``: free-form brush strokes (the irregular masks of Liu et al. 2018 / DeepFill v2);
- ``paste_occluder``: a real RGBA cut-out placed by the face template's keypoints (sunglasses on the eyes,
  scarves/face masks on the lower face, objects/hands anywhere near the face), with random scale, rotation,
  flip and colour jitter; ``paste_to_coverage`` aims at a target occluded fraction (e.g. 25 %);
- ``procedural_occluder``: random polygons / blobs / bars with solid, gradient, stripe, checker or noise
  textures, so the detector does not learn only the look of the training cut-outs.

``OcclusionSynth`` mixes these for training (see ``SynthConfig``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ofer_live.training.data.occluders import Occluder, OccluderBank

POSITIVE_COVERAGE = 0.5  # a patch is "occluded" when at least this fraction of it is covered
FILL_MODES: tuple[str, ...] = ("black", "gray", "noise", "color", "blur")


# ---------------------------------------------------------------------------------------------------------------
# Face layout: where the facial parts are in the aligned face
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceLayout:
    """Keypoints of the aligned face in unit coordinates (x, y in [0, 1] of the face crop), image-left first.

    ``keypoints`` (6, 2): eye (image left), eye (image right), nose tip, mouth centre, ear/tragion (image left),
    ear/tragion (image right): the order of MediaPipe's face detector. Derived points follow fixed facial
    proportions relative to the eyes, nose and mouth.
    """

    keypoints: np.ndarray

    @property
    def eye_left(self) -> np.ndarray:
        return self.keypoints[0]

    @property
    def eye_right(self) -> np.ndarray:
        return self.keypoints[1]

    @property
    def nose(self) -> np.ndarray:
        return self.keypoints[2]

    @property
    def mouth(self) -> np.ndarray:
        return self.keypoints[3]

    @property
    def eye_center(self) -> np.ndarray:
        return (self.eye_left + self.eye_right) / 2

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.eye_right - self.eye_left))

    @property
    def eye_angle_deg(self) -> float:
        d = self.eye_right - self.eye_left
        return float(math.degrees(math.atan2(d[1], d[0])))

    @property
    def face_half_width(self) -> float:
        """Half the cheek-to-cheek width (about 85 % of the tragion distance)."""
        return 0.85 * float(np.linalg.norm(self.keypoints[5] - self.keypoints[4])) / 2

    @property
    def chin(self) -> np.ndarray:
        return self.mouth + (self.mouth - self.nose) * 1.6

    @property
    def nose_bridge(self) -> np.ndarray:
        return self.eye_center + (self.nose - self.eye_center) * 0.35

    def mask_points(self) -> np.ndarray:
        """(6, 2) unit points matching MaskTheFace's anchors a..f: cheeks at nose-bridge height (a, c), nose bridge
        (b), jaw sides (d, f) and chin (e)."""
        cx = self.eye_center[0]
        hw = self.face_half_width
        bridge = self.nose_bridge
        jaw_y = self.mouth[1] + 0.55 * (self.chin[1] - self.mouth[1])
        return np.array(
            [
                [cx - hw, bridge[1] + 0.02],
                bridge,
                [cx + hw, bridge[1] + 0.02],
                [cx - 0.8 * hw, jaw_y],
                self.chin,
                [cx + 0.8 * hw, jaw_y],
            ],
            dtype=np.float32,
        )


def template_layout() -> FaceLayout:
    """The layout of the run-time alignment template (``ofer_live.face.align``), so that train-time occluders sit
    where run-time faces have their eyes and mouth."""
    from ofer_live.training.data.template import template_keypoints

    return FaceLayout(template_keypoints())


# ---------------------------------------------------------------------------------------------------------------
# Patch-grid helpers
# ---------------------------------------------------------------------------------------------------------------


def patch_coverage(alpha: np.ndarray, grid: int) -> np.ndarray:
    """alpha: (S, S) or (N, S, S) float in [0, 1] -> (G, G) or (N, G, G) float32, the exact covered fraction of each
    patch. S must be a multiple of G."""
    alpha = np.asarray(alpha, dtype=np.float32)
    size = alpha.shape[-1]
    if alpha.shape[-2] != size or size % grid:
        raise ValueError(f"alpha must be square with a side divisible by {grid}, got {alpha.shape}")
    p = size // grid
    shaped = alpha.reshape(*alpha.shape[:-2], grid, p, grid, p)
    return shaped.mean(axis=(-3, -1)).astype(np.float32)


def patch_labels(coverage: np.ndarray, positive: float = POSITIVE_COVERAGE) -> np.ndarray:
    """coverage: (..., G, G) float -> (..., G, G) float32 in {0, 1} (1 = occluded)."""
    return (np.asarray(coverage) >= positive - 1e-6).astype(np.float32)


def patch_mask_to_pixels(mask: np.ndarray, size: int) -> np.ndarray:
    """mask: (G, G) or (N, G, G) -> (S, S) or (N, S, S) float32, each patch value repeated over its pixels."""
    mask = np.asarray(mask, dtype=np.float32)
    grid = mask.shape[-1]
    if size % grid:
        raise ValueError(f"face size {size} is not a multiple of the patch grid {grid}")
    p = size // grid
    return np.repeat(np.repeat(mask, p, axis=-2), p, axis=-1)


def random_patch_mask(grid: int, proportion: float, rng: np.random.Generator) -> np.ndarray:
    """-> (G, G) float32 with exactly round(proportion * G^2) ones at random patches."""
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"proportion must be in [0, 1], got {proportion}")
    n = grid * grid
    k = int(round(proportion * n))
    mask = np.zeros(n, dtype=np.float32)
    mask[rng.choice(n, size=k, replace=False)] = 1.0
    return mask.reshape(grid, grid)


def resize_map(values: np.ndarray, grid: int) -> np.ndarray:
    """values: (g, g) float -> (G, G) float32 (area average when shrinking, bilinear when growing)."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape == (grid, grid):
        return values
    interp = cv2.INTER_AREA if values.shape[0] > grid else cv2.INTER_LINEAR
    return cv2.resize(values, (grid, grid), interpolation=interp)


def cam_patch_mask(cam: np.ndarray, grid: int, proportion: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """cam: (g, g) importance map -> (G, G) float32 with ones at the round(proportion * G^2) most important patches.
    Ties are broken at random with ``rng`` (in index order when None)."""
    values = resize_map(cam, grid).reshape(-1).astype(np.float64)
    k = int(round(proportion * grid * grid))
    order_key = rng.random(values.size) if rng is not None else -np.arange(values.size, dtype=np.float64)
    order = np.lexsort((order_key, -values))  # by value descending, then the tie-break key ascending
    mask = np.zeros(values.size, dtype=np.float32)
    mask[order[:k]] = 1.0
    return mask.reshape(grid, grid)


class CamOcclusion:
    """Grad-CAM occlusion: hide the patches that matter most to a FER model.

    ``cam_fn(faces (N, S, S, 3) uint8) -> (N, g, g) float`` (any positive importance map, e.g. Grad-CAM of a torch
    FER net or the ``cam`` output of expression.onnx). ``__call__(faces, proportion) -> (N, G, G) float32`` masks.
    """

    def __init__(self, cam_fn: Callable[[np.ndarray], np.ndarray], grid: int) -> None:
        self.cam_fn = cam_fn
        self.grid = grid

    def __call__(self, faces: np.ndarray, proportion: float, rng: np.random.Generator | None = None) -> np.ndarray:
        cams = np.asarray(self.cam_fn(faces), dtype=np.float32)
        if cams.ndim != 3 or cams.shape[0] != faces.shape[0]:
            raise ValueError(f"cam_fn must return (N, g, g), got {cams.shape} for {faces.shape[0]} faces")
        return (
            np.stack([cam_patch_mask(c, self.grid, proportion, rng) for c in cams])
            if len(cams)
            else (np.zeros((0, self.grid, self.grid), np.float32))
        )


# ---------------------------------------------------------------------------------------------------------------
# Pixel masks and fills
# ---------------------------------------------------------------------------------------------------------------


def irregular_mask(
    size: int, rng: np.random.Generator, coverage: tuple[float, float] = (0.15, 0.35), max_strokes: int = 12
) -> np.ndarray:
    """Free-form brush-stroke mask -> (S, S) float32 in {0, 1} whose covered fraction is usually in ``coverage``.

    Strokes are random walks with a random brush width and round joints (DeepFill v2 style); strokes are added until
    the lower bound is reached, and a stroke that overshoots the upper bound is dropped.
    """
    lo, hi = coverage
    mask = np.zeros((size, size), dtype=np.uint8)
    for _attempt in range(max_strokes * 3):
        if mask.mean() >= lo:
            break
        trial = mask.copy()
        n_vertex = int(rng.integers(3, 9))
        width = max(2, int(round(size * rng.uniform(0.04, 0.12))))
        x, y = rng.uniform(0.1, 0.9, size=2) * size
        angle = rng.uniform(0, 2 * math.pi)
        for _vertex in range(n_vertex):
            angle += rng.uniform(-0.9, 0.9) + (math.pi if rng.random() < 0.15 else 0.0)
            length = rng.uniform(0.08, 0.3) * size
            nx = float(np.clip(x + length * math.cos(angle), 0, size - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, size - 1))
            cv2.line(trial, (int(x), int(y)), (int(nx), int(ny)), 1, width)
            cv2.circle(trial, (int(nx), int(ny)), width // 2, 1, -1)
            x, y = nx, ny
        if trial.mean() <= hi or not mask.any():
            mask = trial
    return mask.astype(np.float32)


def fill_pixels(face: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, mode: str = "noise") -> np.ndarray:
    """face (S, S, 3) uint8, alpha (S, S) float -> new face with the covered pixels replaced by ``mode`` content:
    ``black``, ``gray`` (128), ``noise`` (uniform noise), ``color`` (one random colour), ``blur`` (strong blur)."""
    if mode not in FILL_MODES:
        raise ValueError(f"unknown fill mode {mode!r}; expected one of {', '.join(FILL_MODES)}")
    h, w = face.shape[:2]
    if mode == "black":
        fill = np.zeros_like(face)
    elif mode == "gray":
        fill = np.full_like(face, 128)
    elif mode == "noise":
        fill = rng.integers(0, 256, size=face.shape, dtype=np.uint8)
    elif mode == "color":
        fill = np.broadcast_to(rng.integers(0, 256, size=3, dtype=np.uint8), face.shape).copy()
    else:
        k = max(3, (min(h, w) // 6) | 1)
        fill = cv2.GaussianBlur(face, (k, k), 0)
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    return (face.astype(np.float32) * (1 - a) + fill.astype(np.float32) * a).round().astype(np.uint8)


def composite(face: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """face (S, S, 3) uint8, rgb (S, S, 3), alpha (S, S) float in [0, 1] -> alpha-blended (S, S, 3) uint8."""
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    out = face.astype(np.float32) * (1 - a) + rgb.astype(np.float32) * a
    return np.clip(out.round(), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Cut-out pasting
# ---------------------------------------------------------------------------------------------------------------


def is_gray(face: np.ndarray) -> bool:
    """True when the three channels of an RGB face are (nearly) equal."""
    f = face.astype(np.int16)
    return bool(np.abs(f[..., 0] - f[..., 1]).max() <= 2 and np.abs(f[..., 1] - f[..., 2]).max() <= 2)


def color_jitter(rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0, gray: bool = False) -> np.ndarray:
    """rgb (h, w, 3) uint8 -> jittered copy: brightness, contrast, saturation and a small hue shift; ``gray`` turns
    the result gray (for gray faces)."""
    img = rgb.astype(np.float32)
    if strength > 0:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8) * strength) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength), 0, 255)
        img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - 0.25 * strength, 1 + 0.25 * strength) + mean
        img = img * rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if gray:
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        img = np.repeat(g[..., None], 3, axis=2)
    return img


def _flip(occ_rgba: np.ndarray, anchors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    out = occ_rgba[:, ::-1].copy()
    if anchors is None:
        return out, None
    w = occ_rgba.shape[1]
    flipped = anchors.copy()
    flipped[:, 0] = w - 1 - flipped[:, 0]
    return out, flipped[[2, 1, 0, 5, 4, 3]]  # a<->c, d<->f


def _similarity(src_center, dst_center, scale: float, angle_deg: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D((float(src_center[0]), float(src_center[1])), -angle_deg, scale)
    m[:, 2] += np.asarray(dst_center, dtype=np.float64) - np.asarray(src_center, dtype=np.float64)
    return m


def _warp(rgba: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Warp an RGBA cut-out into the face frame -> (rgb (S, S, 3) float32, alpha (S, S) float32 in [0, 1])."""
    premul = rgba.astype(np.float32)
    premul[..., :3] *= premul[..., 3:4] / 255.0
    if matrix.shape == (3, 3):
        warped = cv2.warpPerspective(
            premul, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    else:
        warped = cv2.warpAffine(
            premul, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    alpha = np.clip(warped[..., 3] / 255.0, 0.0, 1.0)
    rgb = np.where(alpha[..., None] > 1e-4, warped[..., :3] / np.maximum(alpha[..., None], 1e-4), 0.0)
    alpha[alpha < 0.02] = 0.0
    return np.clip(rgb, 0, 255), alpha.astype(np.float32)


@dataclass(frozen=True)
class PasteConfig:
    """Random ranges of ``paste_occluder``. Scales are relative to the natural size of each placement."""

    scale: tuple[float, float] = (0.85, 1.2)
    anywhere_size: tuple[float, float] = (0.25, 0.6)  # object's longer side / face size
    # where an "anywhere" object's centre lands, as fractions of the face crop (x from the left, y from the top)
    anywhere_center_x: tuple[float, float] = (0.2, 0.8)
    anywhere_center_y: tuple[float, float] = (0.3, 0.9)
    rotation_deg: float = 8.0  # +- for eyes / lower / face masks
    anywhere_rotation_deg: float = 40.0
    shift: float = 0.04  # +- position jitter / face size
    flip_p: float = 0.5
    color_strength: float = 1.0
    gray_on_gray_face_p: float = 0.9


def paste_occluder(
    face: np.ndarray,
    occluder: Occluder,
    layout: FaceLayout,
    rng: np.random.Generator,
    config: PasteConfig = PasteConfig(),
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Place one cut-out on an aligned face.

    face: (S, S, 3) uint8 RGB -> (occluded face (S, S, 3) uint8, alpha (S, S) float32 in [0, 1]). ``scale`` fixes the
    size factor (otherwise drawn from ``config.scale``). Gray faces get gray occluders (``gray_on_gray_face_p``).
    """
    size = face.shape[0]
    rgba = occluder.rgba
    anchors = occluder.anchors
    if rng.random() < config.flip_p:
        rgba, anchors = _flip(rgba, anchors)
    s = float(scale if scale is not None else rng.uniform(*config.scale))
    shift = rng.uniform(-config.shift, config.shift, size=2) * size
    h, w = rgba.shape[:2]
    placement = occluder.placement
    if placement == "face_mask" and anchors is not None:
        dst = layout.mask_points() * size
        center = dst.mean(axis=0)
        dst = (dst - center) * s + center + shift
        dst = dst + rng.normal(0, 0.01 * size, size=dst.shape)
        matrix, _ = cv2.findHomography(anchors.astype(np.float32), dst.astype(np.float32), 0)
        if matrix is None:  # degenerate: fall back to the lower-face placement
            placement = "lower"
    if placement == "eyes":
        width = layout.eye_distance * size * rng.uniform(2.0, 2.4) * s
        center = layout.eye_center * size + np.array([0.0, 0.03 * size]) + shift * 0.5
        angle = layout.eye_angle_deg + rng.uniform(-config.rotation_deg, config.rotation_deg)
        matrix = _similarity((w / 2, h / 2), center, width / w, angle)
    elif placement == "lower":
        width = 2 * layout.face_half_width * size * rng.uniform(1.0, 1.25) * s
        scale_px = width / w
        top = layout.nose[1] + rng.uniform(-0.15, 0.5) * (layout.mouth[1] - layout.nose[1])
        center = np.array([layout.eye_center[0] * size, top * size + h * scale_px / 2]) + shift
        angle = layout.eye_angle_deg + rng.uniform(-config.rotation_deg, config.rotation_deg)
        matrix = _similarity((w / 2, h / 2), center, scale_px, angle)
    elif placement == "anywhere":
        longer = size * rng.uniform(*config.anywhere_size) * s
        center = np.array([rng.uniform(*config.anywhere_center_x), rng.uniform(*config.anywhere_center_y)]) * size
        angle = rng.uniform(-config.anywhere_rotation_deg, config.anywhere_rotation_deg)
        matrix = _similarity((w / 2, h / 2), center, longer / max(h, w), angle)
    rgb_small = color_jitter(
        rgba[..., :3], rng, config.color_strength, gray=is_gray(face) and rng.random() < config.gray_on_gray_face_p
    )
    rgb, alpha = _warp(np.dstack([rgb_small, rgba[..., 3]]), matrix, size)
    return composite(face, rgb, alpha), alpha


def paste_to_coverage(
    face: np.ndarray,
    bank: OccluderBank,
    layout: FaceLayout,
    rng: np.random.Generator,
    target: float = 0.25,
    tolerance: float = 0.05,
    max_items: int = 3,
    tries: int = 6,
    config: PasteConfig = PasteConfig(),
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Paste cut-outs until about ``target`` of the face area is covered.

    face (S, S, 3) uint8 -> (occluded face, alpha (S, S) float32, names of the pasted occluders). For each item
    ``tries`` random placements are drawn and the one whose total coverage is closest to the target is kept; items
    are added (at most ``max_items``) while the coverage is below ``target - tolerance``. The result's covered
    fraction is ``alpha.mean()``.
    """
    out = face
    alpha = np.zeros(face.shape[:2], dtype=np.float32)
    names: list[str] = []
    for _ in range(max_items):
        best = None
        for _t in range(tries):
            occ = bank.sample(rng)
            sub = np.random.default_rng(rng.integers(2**63))
            candidate, a = paste_occluder(out, occ, layout, sub, config, scale=float(rng.uniform(0.7, 1.5)))
            total = 1 - (1 - alpha) * (1 - a)
            err = abs(float(total.mean()) - target)
            if best is None or err < best[0]:
                best = (err, candidate, total, occ.name)
        assert best is not None
        _, out, alpha, name = best
        names.append(name)
        if alpha.mean() >= target - tolerance:
            break
    return out, alpha.astype(np.float32), names


# ---------------------------------------------------------------------------------------------------------------
# Procedural occluders
# ---------------------------------------------------------------------------------------------------------------


def _texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(5))
    c1 = rng.integers(0, 256, size=3).astype(np.float32)
    c2 = rng.integers(0, 256, size=3).astype(np.float32)
    if kind == 0:  # solid
        tex = np.broadcast_to(c1, (h, w, 3)).copy()
    elif kind == 1:  # linear gradient
        t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
        tex = np.broadcast_to(c1 * (1 - t) + c2 * t, (h, w, 3)).copy()
    elif kind == 2:  # stripes
        period = rng.uniform(3, 12)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0)[..., None]
        tex = np.where(t, c1, c2)
    elif kind == 3:  # checker
        cell = int(rng.integers(3, 10))
        yy, xx = np.mgrid[0:h, 0:w]
        t = (((yy // cell) + (xx // cell)) % 2 == 0)[..., None]
        tex = np.where(t, c1, c2)
    else:  # smooth noise
        small = rng.uniform(0, 255, size=(max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
        tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    tex = tex + rng.normal(0, rng.uniform(0, 12), size=tex.shape)
    return np.clip(tex, 0, 255).astype(np.uint8)


def procedural_occluder(rng: np.random.Generator, size: int = 96) -> Occluder:
    """A random RGBA shape (polygon, blob, ellipse or bar) with a random texture, as an ``Occluder`` of kind
    ``procedural`` (placed ``anywhere``)."""
    h = w = size
    alpha = np.zeros((h, w), dtype=np.uint8)
    shape = int(rng.integers(4))
    c = np.array([w / 2, h / 2])
    if shape == 0:  # polygon
        n = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = rng.uniform(0.25, 0.5, n) * size
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(alpha, [pts], 255)
    elif shape == 1:  # blob: smooth random radius
        ang = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        rad = (
            0.35
            * size
            * (1 + sum(rng.uniform(-0.25, 0.25) * np.sin(k * ang + rng.uniform(0, 6.3)) for k in range(1, 5)))
        )
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(alpha, [pts], 255)
    elif shape == 2:  # ellipse
        axes = (int(rng.uniform(0.2, 0.5) * size), int(rng.uniform(0.15, 0.45) * size))
        cv2.ellipse(alpha, (int(c[0]), int(c[1])), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:  # bar
        thick = int(rng.uniform(0.12, 0.35) * size)
        cv2.rectangle(alpha, (0, size // 2 - thick // 2), (size - 1, size // 2 + thick // 2), 255, -1)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    rgba = np.dstack([_texture(h, w, rng), alpha])
    return Occluder(kind="procedural", name=f"procedural_{shape}", rgba=rgba)


# ---------------------------------------------------------------------------------------------------------------
# Training mixture
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthConfig:
    """Probabilities of each occlusion type in ``OcclusionSynth.sample`` (normalised; ``clean`` = no occlusion)."""

    clean: float = 0.2
    cutout: float = 0.45
    procedural: float = 0.15
    irregular: float = 0.1
    random_patches: float = 0.1
    hands: float = 0.0  # skin-filled hand silhouettes (training.data.skin_occluders)
    cutpaste: float = 0.0  # soft regions cut from another face or the same face elsewhere
    random_proportion: tuple[float, float] = (0.05, 0.5)
    irregular_coverage: tuple[float, float] = (0.1, 0.4)
    second_cutout_p: float = 0.2
    fill_modes: tuple[str, ...] = ("noise", "color", "black", "gray", "blur")
    paste: PasteConfig = field(default_factory=PasteConfig)


@dataclass(frozen=True)
class Occluded:
    """One synthetic occlusion. ``alpha`` (S, S) float32; ``coverage`` (G, G) float32 exact covered fraction."""

    image: np.ndarray
    alpha: np.ndarray
    coverage: np.ndarray
    kind: str

    @property
    def labels(self) -> np.ndarray:
        return patch_labels(self.coverage)


class OcclusionSynth:
    """Draws a training occlusion for an aligned face (seeded through the ``rng`` argument of ``sample``)."""

    TYPES: tuple[str, ...] = ("clean", "cutout", "procedural", "irregular", "random_patches", "hands", "cutpaste")

    def __init__(
        self,
        grid: int,
        bank: OccluderBank | None,
        layout: FaceLayout,
        config: SynthConfig = SynthConfig(),
        types: Sequence[str] | None = None,
    ) -> None:
        self.grid = grid
        self.bank = bank if bank is not None and len(bank) else None
        self.layout = layout
        self.config = config
        allowed = set(types) if types is not None else set(self.TYPES)
        weights = {t: getattr(config, t) if t in allowed else 0.0 for t in self.TYPES}
        if self.bank is None:
            weights["cutout"] = 0.0
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("OcclusionSynth: every occlusion type has probability 0")
        self.types = tuple(self.TYPES)
        self.probs = np.array([weights[t] / total for t in self.TYPES])

    def sample(
        self,
        face: np.ndarray,
        rng: np.random.Generator,
        kind: str | None = None,
        donor: Callable[[], np.ndarray] | None = None,
    ) -> Occluded:
        """face: (S, S, 3) uint8 -> Occluded (the face itself with zero alpha for ``clean``). ``donor()`` gives
        another aligned face (skin for hands, regions for CutPaste); without it the face itself is used."""
        cfg = self.config
        kind = kind or self.types[int(rng.choice(len(self.types), p=self.probs))]
        size = face.shape[0]
        if kind == "clean":
            alpha = np.zeros((size, size), np.float32)
            image = face
        elif kind == "cutout":
            assert self.bank is not None
            image, alpha = paste_occluder(face, self.bank.sample(rng), self.layout, rng, cfg.paste)
            if rng.random() < cfg.second_cutout_p:
                image, a2 = paste_occluder(image, self.bank.sample(rng), self.layout, rng, cfg.paste)
                alpha = 1 - (1 - alpha) * (1 - a2)
        elif kind == "procedural":
            occ = procedural_occluder(rng)
            image, alpha = paste_occluder(face, occ, self.layout, rng, cfg.paste)
        elif kind in ("hands", "cutpaste"):
            from ofer_live.training.data.skin_occluders import HAND_SIZE, cutpaste, skin_hand

            other = donor() if donor is not None else face
            if kind == "hands":
                paste = dataclasses.replace(cfg.paste, anywhere_size=HAND_SIZE, color_strength=0.3)
                image, alpha = paste_occluder(face, skin_hand(face, other, rng), self.layout, rng, paste)
            else:
                image, alpha = paste_occluder(face, cutpaste(face, other, rng), self.layout, rng, cfg.paste)
        elif kind == "irregular":
            alpha = irregular_mask(size, rng, cfg.irregular_coverage)
            image = fill_pixels(face, alpha, rng, cfg.fill_modes[int(rng.integers(len(cfg.fill_modes)))])
        elif kind == "random_patches":
            mask = random_patch_mask(self.grid, float(rng.uniform(*cfg.random_proportion)), rng)
            alpha = patch_mask_to_pixels(mask, size)
            image = fill_pixels(face, alpha, rng, cfg.fill_modes[int(rng.integers(len(cfg.fill_modes)))])
        else:
            raise ValueError(f"unknown occlusion type {kind!r}")
        alpha = alpha.astype(np.float32)
        return Occluded(image=image, alpha=alpha, coverage=patch_coverage(alpha, self.grid), kind=kind)
