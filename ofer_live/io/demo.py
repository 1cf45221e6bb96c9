"""A deterministic demo clip: the astronaut photo with slight head motion and sliding occluders.

The photo is ``ofer_live/assets/astronaut.png`` (Eileen Collins, NASA, public domain; the same
image as ``skimage.data.astronaut()``). Each frame is a pure function of (frame index, fps, size,
seed), so clips can be generated at any length, looped, or regenerated identically in tests.

Timeline (periodic, ``CYCLE`` of four occluders, order and timing jittered by the seed): a short
clean interval, then an occluder slides onto the face (0.5 s), stays (~1.2 s) and slides off
(0.5 s), then a clean interval, and so on. The occluders are drawn procedurally in face
coordinates, so they follow the head: a hand over the mouth (from below), sunglasses (from above),
a phone at the cheek (from the side) and a knitted scarf band over the mouth and nose (from below).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ofer_live.config import ASSETS_DIR
from ofer_live.errors import InputError

ASTRONAUT_PATH: Path = ASSETS_DIR / "astronaut.png"
# The detector's keypoints on astronaut.png (512x512), measured once with face/detector.py:
# right eye, left eye, nose tip, mouth, right ear, left ear.
ASTRONAUT_KEYPOINTS: np.ndarray = np.array(
    [[201.5, 104.9], [245.9, 109.1], [220.4, 127.3], [219.8, 148.6], [178.2, 115.7], [272.2, 123.9]],
    dtype=np.float64,
)
OCCLUDERS: tuple[str, ...] = ("hand", "sunglasses", "phone", "scarf")
# What the audience sees in each part of the clip (``ofer-live gui --demo-loop`` shows it as a caption).
CAPTIONS: dict[str | None, str] = {
    None: "clean face: no patch should be marked",
    "hand": "hand over the mouth: the detector marks it, the reconstructor fills the mouth in",
    "sunglasses": "sunglasses: the detector marks the eye region",
    "phone": "phone at the cheek: marked and reconstructed",
    "scarf": "scarf over mouth and nose: marked and reconstructed",
}
SLIDE_S = 0.5  # slide-in and slide-out duration
HOLD_S = 1.2  # time fully in place
GAP_S = 0.8  # clean interval between occluders
FIRST_GAP_S = 0.5  # clean interval at the start
_NOISE_PLANES = 4


@functools.lru_cache(maxsize=1)
def _astronaut_cached() -> np.ndarray:
    img = cv2.imread(str(ASTRONAUT_PATH), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"bundled demo image missing or unreadable: {ASTRONAUT_PATH}")
    img.setflags(write=False)
    return img


def astronaut_bgr() -> np.ndarray:
    """-> (512, 512, 3) uint8 BGR copy of the bundled public-domain astronaut photo."""
    return _astronaut_cached().copy()


@dataclass(frozen=True)
class _Event:
    name: str
    start: float  # seconds within the cycle when the slide-in starts
    direction: tuple[float, float]  # slide direction in face units (where it comes from)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class DemoClip:
    """Frame generator. ``clip.frame(i)`` -> (H, W, 3) BGR uint8; iterating yields ``n_frames`` frames."""

    def __init__(self, n_frames: int = 300, fps: float = 30.0, size: tuple[int, int] = (640, 480), seed: int = 0):
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        w, h = int(size[0]), int(size[1])
        if w < 64 or h < 64:
            raise ValueError(f"size must be at least 64x64, got {w}x{h}")
        self.n_frames = int(n_frames)
        self.fps = float(fps)
        self.size = (w, h)
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self._phases = rng.uniform(0, 2 * math.pi, size=6)
        order = [OCCLUDERS[i] for i in rng.permutation(len(OCCLUDERS))]
        directions = {"hand": (0.0, 1.0), "sunglasses": (0.0, -1.0), "phone": (1.0, 0.0), "scarf": (0.0, 1.0)}
        events = []
        t = FIRST_GAP_S
        for name in order:
            events.append(_Event(name, t, directions[name]))
            t += 2 * SLIDE_S + HOLD_S + GAP_S * float(rng.uniform(0.8, 1.25))
        self._events = tuple(events)
        self.cycle_s = t
        self._hand_tone = rng.uniform(-12, 12, size=3)
        self._scarf_colors = (
            tuple(int(c) for c in rng.integers(30, 200, size=3)),
            tuple(int(c) for c in rng.integers(120, 240, size=3)),
        )
        # Mild sensor noise (+-3 levels), as precomputed planes applied with saturating adds (fast).
        noise = np.random.default_rng(self.seed + 1).integers(-3, 4, size=(_NOISE_PLANES, h, w, 1), dtype=np.int16)
        noise = np.repeat(noise, 3, axis=3)
        self._noise_pos = np.clip(noise, 0, None).astype(np.uint8)
        self._noise_neg = np.clip(-noise, 0, None).astype(np.uint8)
        self._astro = _astronaut_cached()
        # Head-and-shoulders framing: the face sits in the upper part of the frame, like a webcam shot.
        # (The photo's face is near its top edge, so centring it would show the border.)
        self._base_scale = 1.5 * h / 480.0
        self._anchor = np.array([w * 0.52, h * 0.31])
        eyes = ASTRONAUT_KEYPOINTS[:2].mean(axis=0)
        self._src_center = np.array([eyes[0], eyes[1] + 20.0])

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.n_frames):
            yield self.frame(i)

    # -- geometry ---------------------------------------------------------------------------------
    def head_transform(self, index: int) -> np.ndarray:
        """index -> (2, 3) float64 map from astronaut.png pixels to frame pixels at that frame."""
        t = index / self.fps
        p = self._phases
        h = self.size[1]
        dx = (0.038 * math.sin(2 * math.pi * t / 7.3 + p[0]) + 0.012 * math.sin(2 * math.pi * t / 2.9 + p[1])) * h
        dy = 0.022 * math.sin(2 * math.pi * t / 5.1 + p[2]) * h
        angle = 6.0 * math.sin(2 * math.pi * t / 6.2 + p[3])
        scale = self._base_scale * (1.0 + 0.05 * math.sin(2 * math.pi * t / 8.7 + p[4]))
        a = math.radians(angle)
        c, s = scale * math.cos(a), scale * math.sin(a)
        rot = np.array([[c, -s], [s, c]])
        shift = self._anchor + (dx, dy) - rot @ self._src_center
        return np.hstack([rot, shift[:, None]])

    def face_keypoints(self, index: int) -> np.ndarray:
        """index -> (6, 2) float32 ground-truth keypoints in the frame (detector order)."""
        m = self.head_transform(index)
        return (ASTRONAUT_KEYPOINTS @ m[:, :2].T + m[:, 2]).astype(np.float32)

    def occluder_at(self, index: int) -> tuple[str | None, float]:
        """index -> (occluder name or None, how far it is in place: 0 = away, 1 = fully on the face)."""
        t = (index / self.fps) % self.cycle_s
        for ev in self._events:
            local = t - ev.start
            total = 2 * SLIDE_S + HOLD_S
            if 0.0 <= local < total:
                if local < SLIDE_S:
                    return ev.name, _smoothstep(local / SLIDE_S)
                if local < SLIDE_S + HOLD_S:
                    return ev.name, 1.0
                return ev.name, _smoothstep((total - local) / SLIDE_S)
        return None, 0.0

    def caption(self, index: int) -> str:
        """index -> what the audience sees in that frame (``CAPTIONS``): the occluder once it is half on."""
        name, progress = self.occluder_at(index)
        return CAPTIONS[name if progress >= 0.5 else None]

    def occluder_alpha(self, index: int) -> np.ndarray:
        """index -> (H, W) float32 in [0, 1]: how much of each pixel the occluder covers (exact, anti-aliased
        edges included; all zero in clean frames). The occluder is drawn on a black and on a white canvas: a pixel
        it covers fully comes out the same on both."""
        w, h = self.size
        name, amount = self.occluder_at(index)
        if name is None or amount <= 0.0:
            return np.zeros((h, w), np.float32)
        ev = next(e for e in self._events if e.name == name)
        kps = self.face_keypoints(index).astype(np.float64)
        black, white = np.zeros((h, w, 3), np.uint8), np.full((h, w, 3), 255, np.uint8)
        self._draw_occluder(black, name, amount, ev.direction, kps)
        self._draw_occluder(white, name, amount, ev.direction, kps)
        gap = np.abs(white.astype(np.int16) - black.astype(np.int16)).max(axis=2)
        return (1.0 - gap / 255.0).astype(np.float32)

    # -- drawing ----------------------------------------------------------------------------------
    def frame(self, index: int) -> np.ndarray:
        """index >= 0 -> (H, W, 3) BGR uint8 frame (deterministic)."""
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        w, h = self.size
        m = self.head_transform(index)
        img = cv2.warpAffine(self._astro, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        name, amount = self.occluder_at(index)
        if name is not None and amount > 0.0:
            ev = next(e for e in self._events if e.name == name)
            kps = self.face_keypoints(index).astype(np.float64)
            self._draw_occluder(img, name, amount, ev.direction, kps)
        k = index % _NOISE_PLANES
        cv2.add(img, self._noise_pos[k], dst=img)
        cv2.subtract(img, self._noise_neg[k], dst=img)
        return img

    def _draw_occluder(
        self, img: np.ndarray, name: str, amount: float, direction: tuple[float, float], kps: np.ndarray
    ) -> None:
        """Draw one occluder in place on img (H, W, 3) uint8; kps: (6, 2) frame keypoints."""
        right_eye, left_eye = kps[0], kps[1]
        origin = (right_eye + left_eye) / 2
        ex = left_eye - right_eye
        unit = float(np.linalg.norm(ex))
        ex = ex / max(unit, 1e-6)
        ey = np.array([-ex[1], ex[0]])
        off = (1.0 - amount) * 3.2
        offset = np.array(direction) * off

        def pts(coords: list[tuple[float, float]] | np.ndarray) -> np.ndarray:
            """coords: (N, 2) face units -> (N, 2) int32 frame points with 4 fractional bits."""
            c = np.asarray(coords, dtype=np.float64) + offset
            p = origin + (c[:, :1] * ex + c[:, 1:2] * ey) * unit
            return np.round(p * 16).astype(np.int32)  # 4 fractional bits for cv2 shift=4

        def ellipse(cx: float, cy: float, rx: float, ry: float, angle_deg: float = 0.0, n: int = 40) -> np.ndarray:
            """-> (n, 2) float64 face-unit polygon of a rotated ellipse."""
            t = np.linspace(0, 2 * np.pi, n, endpoint=False)
            a = math.radians(angle_deg)
            x, y = rx * np.cos(t), ry * np.sin(t)
            return np.stack([cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)], -1)

        def fill(poly: np.ndarray, color: tuple[float, ...]) -> None:
            """Fill a (N, 2) int32 polygon on img in place."""
            cv2.fillPoly(img, [poly], tuple(int(c) for c in color), cv2.LINE_AA, shift=4)

        def outline(poly: np.ndarray, color: tuple[float, ...], thickness: int = 1) -> None:
            """Outline a (N, 2) int32 polygon on img in place."""
            cv2.polylines(img, [poly], True, tuple(int(c) for c in color), thickness, cv2.LINE_AA, shift=4)

        def capsule(a: tuple[float, float], b: tuple[float, float], r: float, n: int = 12) -> np.ndarray:
            """-> (2n, 2) float64 face-unit polygon of a rounded bar from a to b with radius r."""
            (ax, ay), (bx, by) = a, b
            ang = math.atan2(by - ay, bx - ax)
            t1 = np.linspace(ang + np.pi / 2, ang + 3 * np.pi / 2, n)
            t2 = np.linspace(ang - np.pi / 2, ang + np.pi / 2, n)
            p1 = np.stack([ax + r * np.cos(t1), ay + r * np.sin(t1)], -1)
            p2 = np.stack([bx + r * np.cos(t2), by + r * np.sin(t2)], -1)
            return np.vstack([p1, p2])

        if name == "hand":
            skin = np.array([105, 140, 190]) + self._hand_tone
            dark = skin * 0.7
            palm = ellipse(0.15, 1.55, 0.85, 0.62, -10)
            fingers = [
                capsule((-0.45, 1.25), (-0.95, 0.55), 0.17),
                capsule((-0.1, 1.15), (-0.45, 0.52), 0.18),
                capsule((0.25, 1.15), (0.05, 0.5), 0.18),
                capsule((0.6, 1.2), (0.5, 0.62), 0.16),
            ]
            thumb = capsule((0.8, 1.6), (1.05, 1.05), 0.19)
            for poly in [palm, *fingers, thumb]:
                fill(pts(poly), skin)
            for poly in [*fingers, thumb]:
                outline(pts(poly), dark)
            for poly in fingers:  # knuckle creases
                mid = poly.mean(axis=0)
                cv2.line(
                    img,
                    tuple(pts([mid + (-0.1, 0)])[0]),
                    tuple(pts([mid + (0.1, 0)])[0]),
                    tuple(int(c) for c in dark),
                    1,
                    cv2.LINE_AA,
                    shift=4,
                )
        elif name == "sunglasses":
            frame_color, lens = (25, 25, 25), (45, 35, 30)
            for cx in (-0.5, 0.5):
                lens_poly = ellipse(cx, 0.05, 0.36, 0.25)
                fill(pts(lens_poly), lens)
                outline(pts(lens_poly), frame_color, 3)
                glare = ellipse(cx - 0.12, -0.04, 0.1, 0.04, -20, 16)
                fill(pts(glare), (110, 105, 100))
            cv2.polylines(
                img, [pts([(-0.15, 0.0), (0.0, -0.05), (0.15, 0.0)])], False, frame_color, 3, cv2.LINE_AA, shift=4
            )
            for side in (-1, 1):
                cv2.polylines(
                    img, [pts([(side * 0.86, 0.0), (side * 1.25, 0.08)])], False, frame_color, 3, cv2.LINE_AA, shift=4
                )
        elif name == "phone":
            body = capsule((1.05, 0.05), (1.05, 1.35), 0.42, 6)
            fill(pts(body), (35, 32, 30))
            screen = np.array([(0.74, -0.05), (1.36, -0.05), (1.36, 1.45), (0.74, 1.45)])
            fill(pts(screen), (90, 60, 40))
            fill(pts(np.array([(0.78, 0.0), (1.32, 0.0), (1.32, 0.35), (0.78, 0.35)])), (150, 120, 90))
            fill(pts(ellipse(1.05, -0.25, 0.05, 0.05, 0, 12)), (10, 10, 10))
            fingers = [capsule((1.55, 0.35 + 0.3 * k), (1.3, 0.4 + 0.3 * k), 0.12) for k in range(3)]
            for poly in fingers:
                fill(pts(poly), np.array([105, 140, 190]) + self._hand_tone)
        elif name == "scarf":
            xs = np.linspace(-1.45, 1.45, 30)
            top = 0.62 + 0.05 * np.sin(xs * 7.0)
            band = np.vstack([np.stack([xs, top], -1), [(1.45, 2.3), (-1.45, 2.3)]])
            c1, c2 = self._scarf_colors
            fill(pts(band), c1)
            for k in range(4):  # knitted stripes
                y0 = 0.85 + 0.32 * k
                stripe = np.vstack(
                    [
                        np.stack([xs, y0 + 0.04 * np.sin(xs * 7.0)], -1),
                        np.stack([xs[::-1], y0 + 0.12 + 0.04 * np.sin(xs[::-1] * 7.0)], -1),
                    ]
                )
                fill(pts(stripe), c2)
            outline(pts(band), tuple(0.6 * c for c in c1), 2)


def write_demo_masks(
    path: str | Path, n_frames: int, fps: float = 30.0, size: tuple[int, int] = (640, 480), seed: int = 0
) -> Path:
    """Write the known occluder of every demo frame to ``path`` (.npz): ``alpha`` uint8 (N, H, W) (0-255 coverage),
    ``occluder`` (N,) names ('' for clean frames), ``amount`` (N,) float32 (1 = fully on the face), ``fps``."""
    clip = DemoClip(n_frames=n_frames, fps=fps, size=size, seed=seed)
    alpha = np.stack([np.round(clip.occluder_alpha(i) * 255).astype(np.uint8) for i in range(n_frames)])
    events = [clip.occluder_at(i) for i in range(n_frames)]
    path = Path(path)
    np.savez_compressed(
        path,
        alpha=alpha,
        occluder=np.array([name or "" for name, _ in events]),
        amount=np.array([amount for _, amount in events], np.float32),
        fps=np.float32(fps),
    )
    return path


def write_demo_clip(
    path: str | Path,
    n_frames: int = 300,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Path:
    """Write the demo clip to ``path`` (.avi: crash-safe MJPEG, .mp4/.mkv: through FFmpeg) -> the path."""
    from ofer_live.io.recorder import VideoRecorder

    clip = DemoClip(n_frames=n_frames, fps=fps, size=size, seed=seed)
    path = Path(path)
    with VideoRecorder(path, fps=fps, size=clip.size) as rec:
        for frame in clip:
            rec.write(frame)
    return path
