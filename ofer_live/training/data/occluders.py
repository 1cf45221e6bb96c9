"""Occluder cut-outs (RGBA) for synthetic occlusion, grouped by kind.

Folder layout (``<root>/occluders/<kind>/*.png|jpg``, see the data README). Each kind has a
placement rule used by ``occlusion_synth.paste_occluder``:

| kind        | placement                                                        |
|-------------|------------------------------------------------------------------|
| sunglasses, eyeglasses | ``eyes``: centred on the eyes, rotated with the eye line |
| scarves, masks | ``lower``: top edge between nose and mouth, over the lower face  |
| face_masks  | ``face_mask``: MaskTheFace templates warped by their 6 anchors (masks.cfg) |
| objects, misc, anything else | ``anywhere``: hands, phones, cups, hats... near the face |

RGB files without alpha (some of ``masks/`` are JPEGs on white) get an alpha channel by removing
the near-white background connected to the image border. Large cut-outs are downscaled to
``max_side`` at load, which is plenty for faces of up to 224 px.

``OccluderBank.split(heldout_kinds)`` separates training kinds from held-out kinds, for the
leave-one-kind-out generalisation numbers. ``pack``/``unpack`` store a bank in one ``.npz`` (PNG
bytes + metadata, no pickles) so a training run can carry its occluders to another machine.
"""

from __future__ import annotations

import configparser
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ofer_live.errors import InputError

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("sunglasses", "eyeglasses", "scarves", "objects", "masks", "face_masks", "misc")
PLACEMENTS: dict[str, str] = {
    "sunglasses": "eyes",
    "eyeglasses": "eyes",
    "scarves": "lower",
    "masks": "lower",
    "face_masks": "face_mask",
    "objects": "anywhere",
    "misc": "anywhere",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_MAX_SIDE = 256
# MaskTheFace anchor names in masks.cfg; in the face: a/c face sides at nose-bridge height,
# b nose bridge, d/f jaw sides, e chin (image left to right: a b c over d e f).
ANCHOR_NAMES: tuple[str, ...] = ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f")
_NON_MASK_TEMPLATES = ("empty", "inpaint")


@dataclass(frozen=True)
class Occluder:
    """One cut-out. ``rgba`` (h, w, 4) uint8 RGB + alpha; ``anchors`` (6, 2) float32 pixel (x, y) or None."""

    kind: str
    name: str
    rgba: np.ndarray
    anchors: np.ndarray | None = None

    @property
    def placement(self) -> str:
        if self.kind == "face_masks" and self.anchors is None:
            return "lower"
        return PLACEMENTS.get(self.kind, "anywhere")

    @property
    def coverage(self) -> float:
        """Fraction of the cut-out's box that is opaque."""
        return float(self.rgba[..., 3].mean() / 255.0)


@dataclass
class OccluderBank:
    """A list of occluders with kind look-ups."""

    occluders: list[Occluder] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.occluders)

    def __iter__(self):
        return iter(self.occluders)

    def __getitem__(self, index: int) -> Occluder:
        return self.occluders[index]

    @property
    def kinds(self) -> tuple[str, ...]:
        seen: list[str] = []
        for occ in self.occluders:
            if occ.kind not in seen:
                seen.append(occ.kind)
        return tuple(seen)

    def by_kind(self, kind: str) -> list[Occluder]:
        return [o for o in self.occluders if o.kind == kind]

    def select(self, kinds: tuple[str, ...] | list[str]) -> OccluderBank:
        unknown = sorted(set(kinds) - set(self.kinds))
        if unknown:
            raise InputError(f"occluder kind(s) not found: {', '.join(unknown)} (have: {', '.join(self.kinds)})")
        return OccluderBank([o for o in self.occluders if o.kind in kinds])

    def split(self, heldout_kinds: tuple[str, ...] | list[str]) -> tuple[OccluderBank, OccluderBank]:
        """-> (training kinds, held-out kinds). Unknown held-out kinds raise InputError."""
        unknown = sorted(set(heldout_kinds) - set(self.kinds))
        if unknown:
            raise InputError(f"held-out occluder kind(s) not found: {', '.join(unknown)}")
        train = OccluderBank([o for o in self.occluders if o.kind not in heldout_kinds])
        held = OccluderBank([o for o in self.occluders if o.kind in heldout_kinds])
        return train, held

    def sample(self, rng: np.random.Generator, balance_kinds: bool = True) -> Occluder:
        """One occluder; with ``balance_kinds`` every kind is equally likely (kinds differ 5x in size)."""
        if not self.occluders:
            raise InputError("no occluders to sample from")
        if balance_kinds:
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            pool = self.by_kind(kind)
            return pool[int(rng.integers(len(pool)))]
        return self.occluders[int(rng.integers(len(self.occluders)))]


def occluders_dir(root: str | Path) -> Path:
    root = Path(root)
    for candidate in (root / "occluders", root):
        if candidate.is_dir() and any(p.is_dir() for p in candidate.iterdir()):
            return candidate
    raise InputError(f"occluder folder not found: expected kind sub-folders in {root / 'occluders'}")


def remove_white_background(rgb: np.ndarray, tolerance: int = 18) -> np.ndarray:
    """rgb (h, w, 3) uint8 -> rgba (h, w, 4): near-white pixels connected to the border become transparent."""
    h, w = rgb.shape[:2]
    near_white = (rgb.min(axis=2) >= 255 - tolerance).astype(np.uint8)
    n, labels = cv2.connectedComponents(near_white, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, border[border > 0]) & (near_white > 0)
    alpha = np.where(background, 0, 255).astype(np.uint8)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0) if min(h, w) > 8 else alpha
    return np.dstack([rgb, alpha])


def read_rgba(path: str | Path) -> np.ndarray:
    """Read a cut-out as RGBA uint8 (h, w, 4); RGB files get an alpha from their white background."""
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"{path}: not a readable image")
    if image.dtype != np.uint8:
        image = (image.astype(np.float32) / np.iinfo(image.dtype).max * 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        rgba = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        if rgba[..., 3].min() == 255:  # an RGBA file with no transparency: treat like RGB on white
            return remove_white_background(rgba[..., :3])
        return rgba
    return remove_white_background(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def trim_transparent(rgba: np.ndarray, anchors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop fully transparent borders; shift anchors with the crop."""
    ys, xs = np.nonzero(rgba[..., 3] > 8)
    if ys.size == 0:
        return rgba, anchors
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if anchors is not None:
        anchors = anchors - np.array([x0, y0], dtype=np.float32)
    return rgba[y0:y1, x0:x1].copy(), anchors


def _resize_max_side(rgba: np.ndarray, anchors: np.ndarray | None, max_side: int):
    h, w = rgba.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgba, anchors
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Premultiply so that transparent pixels' colours do not bleed into edges.
    premul = rgba.astype(np.float32)
    premul[..., :3] *= premul[..., 3:4] / 255.0
    small = cv2.resize(premul, size, interpolation=cv2.INTER_AREA)
    alpha = np.clip(small[..., 3:4], 1e-3, None)
    rgb = np.where(small[..., 3:4] > 0.5, small[..., :3] * 255.0 / alpha, 0)
    out = np.dstack([np.clip(rgb, 0, 255), np.clip(small[..., 3], 0, 255)]).round().astype(np.uint8)
    if anchors is not None:
        anchors = anchors * np.array([size[0] / w, size[1] / h], dtype=np.float32)
    return out, anchors


def read_mask_anchors(cfg_path: Path, files: list[Path]) -> dict[str, np.ndarray]:
    """Map MaskTheFace ``masks.cfg`` anchors onto the renamed template files.

    The cut-outs in ``face_masks/`` are the cfg's templates renamed to ``face_masks_NNN.png`` in
    the sorted order of their template file names (the ``empty``/``inpaint`` helper entries have
    no file). The mapping is used only when the counts agree and every anchor set fits its image
    (within 20 % of its size); otherwise those masks fall back to the ``lower`` placement.
    Returns file name -> (6, 2) float32.
    """
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), comment_prefixes=(";", "#"))
    try:
        parser.read(cfg_path, encoding="utf-8")
    except configparser.Error as exc:
        log.warning("%s: unreadable (%s); face masks placed without anchors", cfg_path, exc)
        return {}
    entries: list[tuple[str, np.ndarray]] = []
    for section in parser.sections():
        items = parser[section]
        template = Path(items.get("template", section)).stem
        if template.split("_")[0] in _NON_MASK_TEMPLATES:
            continue
        try:
            pts = np.array([[float(v) for v in items[name].split(",")] for name in ANCHOR_NAMES], dtype=np.float32)
        except (KeyError, ValueError):
            continue
        entries.append((template, pts))
    entries.sort(key=lambda e: e[0])
    files = sorted(files, key=lambda p: p.name)
    if len(entries) != len(files):
        log.warning(
            "%s: %d anchor sets for %d files; face masks placed without anchors", cfg_path, len(entries), len(files)
        )
        return {}
    result: dict[str, np.ndarray] = {}
    for (template, pts), file in zip(entries, files, strict=False):
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            continue
        h, w = image.shape[:2]
        inside = (pts[:, 0] >= -0.2 * w) & (pts[:, 0] <= 1.2 * w) & (pts[:, 1] >= -0.2 * h) & (pts[:, 1] <= 1.2 * h)
        if not inside.all():
            log.warning("%s: anchors of %s do not fit %s; placed without anchors", cfg_path, template, file.name)
            continue
        result[file.name] = pts
    return result


def load_occluders(
    root: str | Path, kinds: tuple[str, ...] | list[str] | None = None, max_side: int = DEFAULT_MAX_SIDE
) -> OccluderBank:
    """Read every cut-out under ``<root>/occluders/<kind>/`` (all kinds found when ``kinds`` is None)."""
    folder = occluders_dir(root)
    available = sorted(p.name for p in folder.iterdir() if p.is_dir())
    wanted = list(kinds) if kinds is not None else available
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise InputError(f"{folder}: occluder kind folder(s) missing: {', '.join(missing)}")
    bank = OccluderBank()
    for kind in wanted:
        files = sorted(p for p in (folder / kind).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        anchors = {}
        cfg = folder / kind / "masks.cfg"
        if cfg.is_file():
            anchors = read_mask_anchors(cfg, [f for f in files if f.suffix.lower() == ".png"])
        for file in files:
            rgba = read_rgba(file)
            pts = anchors.get(file.name)
            rgba, pts = trim_transparent(rgba, pts)
            rgba, pts = _resize_max_side(rgba, pts, max_side)
            if rgba[..., 3].max() == 0:
                log.warning("%s: fully transparent, skipped", file)
                continue
            bank.occluders.append(Occluder(kind=kind, name=file.name, rgba=rgba, anchors=pts))
    if not bank.occluders:
        raise InputError(f"{folder}: no occluder images found")
    log.debug("occluders: %s", {k: len(bank.by_kind(k)) for k in bank.kinds})
    return bank


def pack_occluders(bank: OccluderBank) -> dict[str, np.ndarray]:
    """bank -> arrays for ``np.savez`` (PNG bytes concatenated + offsets; anchors NaN where absent)."""
    blobs = []
    for occ in bank:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(occ.rgba, cv2.COLOR_RGBA2BGRA))
        if not ok:
            raise InputError(f"cannot encode occluder {occ.name}")
        blobs.append(buf.reshape(-1))
    offsets = np.cumsum([0] + [b.size for b in blobs]).astype(np.int64)
    anchors = np.full((len(bank), 6, 2), np.nan, dtype=np.float32)
    for i, occ in enumerate(bank):
        if occ.anchors is not None:
            anchors[i] = occ.anchors
    return {
        "occluder_png": np.concatenate(blobs) if blobs else np.zeros(0, np.uint8),
        "occluder_offsets": offsets,
        "occluder_kinds": np.asarray([o.kind for o in bank]),
        "occluder_names": np.asarray([o.name for o in bank]),
        "occluder_anchors": anchors,
    }


def unpack_occluders(arrays) -> OccluderBank:
    """Inverse of ``pack_occluders`` (``arrays``: a mapping such as an open ``np.load`` result)."""
    png = arrays["occluder_png"]
    offsets = arrays["occluder_offsets"]
    bank = OccluderBank()
    for i, (kind, name) in enumerate(zip(arrays["occluder_kinds"], arrays["occluder_names"], strict=False)):
        bgra = cv2.imdecode(png[offsets[i] : offsets[i + 1]], cv2.IMREAD_UNCHANGED)
        pts = arrays["occluder_anchors"][i]
        bank.occluders.append(
            Occluder(
                str(kind),
                str(name),
                cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA),
                None if np.isnan(pts).any() else pts.astype(np.float32),
            )
        )
    return bank
