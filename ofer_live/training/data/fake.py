"""Generated stand-in data in the layout of ../shared/data, for tests and smoke runs (no real images).

``write_fake_data(root)`` writes ``ferplus/{train,valid}.npz``, ``utkface/*.jpg``, ``occluders/<kind>/*`` (RGBA
PNGs, RGB JPEGs on white, ``face_masks`` with a ``masks.cfg``) under ``root``. Faces are drawn cartoons (an oval,
two eyes, a mouth whose shape follows the expression label) placed roughly where the alignment template puts
the facial parts, so synthetic occluders land on them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ofer_live.training.data.fer_plus import FERPLUS_TO_FER2013

_MOUTH_CURVE = (-0.6, -0.3, 0.0, 0.9, -0.8, 0.0, 0.1)  # per FER2013 class: smile > 0, frown < 0


def draw_face(size: int, label: int, rng: np.random.Generator, color: bool = False) -> np.ndarray:
    """A cartoon face -> (size, size, 3) uint8 RGB (gray if not ``color``)."""
    bg = rng.integers(40, 220, size=3) if color else np.full(3, rng.integers(40, 220))
    img = np.broadcast_to(bg.astype(np.uint8), (size, size, 3)).copy()
    skin = rng.integers(120, 240, size=3) if color else np.full(3, rng.integers(120, 240))
    c = (size / 2 + rng.normal(0, size * 0.02), size * 0.55 + rng.normal(0, size * 0.02))
    s = size / 48.0
    cv2.ellipse(img, (int(c[0]), int(c[1])), (int(17 * s), int(22 * s)), 0, 0, 360, tuple(int(v) for v in skin), -1)
    for ex in (-0.185, 0.185):
        cv2.circle(img, (int(size * (0.5 + ex)), int(size * 0.40)), max(1, int(2.5 * s)), (20, 20, 20), -1)
    curve = _MOUTH_CURVE[label % 7]
    mx, my = size * 0.5, size * 0.78
    pts = np.array([[mx - 7 * s, my], [mx, my + curve * 5 * s], [mx + 7 * s, my]], np.int32)
    cv2.polylines(img, [pts], False, (60, 20, 20), max(1, int(1.5 * s)))
    if label == 5:  # surprise: open mouth
        cv2.circle(img, (int(mx), int(my)), max(1, int(3 * s)), (30, 10, 10), -1)
    noise = rng.normal(0, 6, size=img.shape)
    out = np.clip(img + noise, 0, 255).astype(np.uint8)
    if not color:
        out[..., 1] = out[..., 0]
        out[..., 2] = out[..., 0]
    return out


def fake_votes(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FER2013 labels (N,) -> FER+ votes (N, 10) with that majority (label -1: a contempt majority)."""
    to_column = {cls: col for col, cls in enumerate(FERPLUS_TO_FER2013) if cls >= 0}
    votes = np.zeros((len(labels), 10), dtype=np.uint8)
    for i, label in enumerate(labels):
        col = 7 if label < 0 else to_column[int(label)]
        votes[i, col] = 6
        votes[i, rng.integers(0, 7)] += 2
        votes[i, rng.integers(0, 10)] += 1
        if votes[i].argmax() != col or (votes[i] == votes[i].max()).sum() > 1:
            votes[i, col] = votes[i].max() + 1
    return votes


def write_fake_ferplus(root: Path, n_train: int = 48, n_valid: int = 24, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder = Path(root) / "ferplus"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        labels = rng.integers(0, 7, size=n)
        labels[:2] = -1  # two contempt majorities, dropped
        images = np.stack([draw_face(48, int(max(lab, 0)), rng)[..., 0] for lab in labels])
        votes = fake_votes(labels, rng)
        votes[2] = [3, 3, 0, 0, 0, 0, 0, 0, 1, 0]  # a tie: dropped
        np.savez(
            folder / f"{split}.npz",
            images=images,
            votes=votes,
            fer2013_label=np.clip(labels, 0, 6).astype(np.uint8),
            names=np.asarray([f"fer{i:07d}.png" for i in range(n)]),
        )


def write_fake_utkface(root: Path, n: int = 24, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    folder = Path(root) / "utkface"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        face = draw_face(200, int(rng.integers(0, 7)), rng, color=True)
        name = f"{rng.integers(1, 90)}_{rng.integers(0, 2)}_{rng.integers(0, 5)}_2017010{i:09d}.jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))


def _shape_rgba(h: int, w: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    rgba = np.zeros((h, w, 4), np.uint8)
    color = [int(v) for v in rng.integers(0, 256, size=3)]
    if kind in ("sunglasses", "eyeglasses"):
        for cx in (w // 4, 3 * w // 4):
            cv2.ellipse(rgba, (cx, h // 2), (w // 5, h // 3), 0, 0, 360, color + [255], -1)
        cv2.line(rgba, (w // 4, h // 2), (3 * w // 4, h // 2), color + [255], max(1, h // 8))
    else:
        cv2.ellipse(rgba, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, color + [255], -1)
    return rgba


def write_fake_occluders(root: Path, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    base = Path(root) / "occluders"
    for kind, count, (h, w) in (
        ("sunglasses", 3, (20, 60)),
        ("eyeglasses", 2, (20, 60)),
        ("scarves", 2, (60, 50)),
        ("objects", 3, (30, 20)),
    ):
        folder = base / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(
                str(folder / f"{kind}_{i:03d}.png"), cv2.cvtColor(_shape_rgba(h, w, rng, kind), cv2.COLOR_RGBA2BGRA)
            )
    # masks/: an RGB JPEG on a white background (alpha recovered by background removal)
    folder = base / "masks"
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((40, 70, 3), 255, np.uint8)
    cv2.rectangle(img, (8, 6), (62, 34), (200, 120, 40), -1)
    cv2.imwrite(str(folder / "masks_000.jpg"), img)
    # face_masks/ with MaskTheFace-style anchors; the files follow the sorted template names.
    folder = base / "face_masks"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = []
    for i, template in enumerate(("cloth", "surgical")):
        rgba = np.zeros((60, 100, 4), np.uint8)
        cv2.ellipse(rgba, (50, 30), (48, 28), 0, 0, 360, (90, 160, 220, 255), -1)
        cv2.imwrite(str(folder / f"face_masks_{i:03d}.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        cfg.append(
            f"[{template}]\ntemplate: masks/templates/{template}.png\nmask_a: 4, 10\nmask_b: 50, 2\n"
            "mask_c: 96, 10\nmask_d: 10, 45\nmask_e: 50, 58\nmask_f: 90, 45\n"
        )
    (folder / "masks.cfg").write_text("\n".join(cfg), encoding="utf-8")


def write_fake_data(root: Path, n_train: int = 48, n_valid: int = 24, n_utk: int = 24, seed: int = 0) -> Path:
    """Write a complete fake data root (FER+, UTKFace, occluders); returns ``root``."""
    root = Path(root)
    write_fake_ferplus(root, n_train, n_valid, seed)
    write_fake_utkface(root, n_utk, seed + 1)
    write_fake_occluders(root, seed + 2)
    return root
