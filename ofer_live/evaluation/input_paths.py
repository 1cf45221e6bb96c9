"""`ofer-live eval --input-paths`: what the app's ways in do to accuracy, measured through ``FramePipeline`` (the
code the app, ``video`` and ``images`` run) on the exported models.

- **crop path** (``images --aligned``): every majority-labelled FER+ valid face, upscaled 48 -> 112 px as a user's
  crop would be, keypoints found inside the crop (``face.crops.CropAligner``) and aligned to the template; the
  faces where no face is found fall back to the centre crop and are counted;
- **detection path** (``images``): the same 112 px images through detection and alignment (``process``);
- the two compared on the faces that both find (the crop path should score as the detection path does);
- **colour against gray**: held-out UTKFace colour faces (already aligned by the cache) and their gray copies
  (OpenCV's RGB2GRAY, replicated): the share of faces whose predicted class is the same.

Results go to ``input_paths.json`` and ``input_paths.md`` in the report folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

CROP_SIZE = 112


def _metrics(labels: np.ndarray, preds: np.ndarray) -> dict[str, Any]:
    """labels, preds: (N,) class indices -> n, accuracy, macro recall, per-class recall (None when N = 0)."""
    from ofer_live.training.metrics import classification_metrics

    if len(labels) == 0:
        return {"n": 0, "accuracy": None, "macro_recall": None}
    m = classification_metrics(labels, preds)
    return {k: m[k] for k in ("n", "accuracy", "macro_recall", "per_class_recall")}


def measure_input_paths(
    pipeline,
    images_gray: np.ndarray,
    labels: np.ndarray,
    colour_faces: np.ndarray,
    batch: int = 64,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """images_gray: (N, h, w) uint8 labelled face crops, labels: (N,), colour_faces: (M, S, S, 3) uint8 RGB
    aligned colour faces -> the report dict (see module docstring)."""
    from ofer_live.face.crops import CropAligner

    say = progress or (lambda message: None)
    t0 = time.time()
    n = len(images_gray)
    crops = [cv2.resize(img, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC) for img in images_gray]
    size = pipeline.face_size
    crop_pred = np.full(n, -1)
    found = np.zeros(n, bool)
    say(f"crop path: {n} faces")
    with CropAligner() as aligner:
        for start in range(0, n, batch):
            faces = []
            for i in range(start, min(n, start + batch)):
                face, found[i] = aligner.align_crop(crops[i], size)
                faces.append(face)
            results = pipeline.process_aligned(np.stack(faces))
            crop_pred[start : start + len(faces)] = [r.label_index for r in results]
    say(f"detection path: {n} faces")
    det_pred = np.full(n, -1)
    for i, crop in enumerate(crops):
        frame = pipeline.process(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), i, 0.0)
        if frame.faces:
            largest = max(frame.faces, key=lambda r: r.face.box[2] * r.face.box[3])
            det_pred[i] = largest.label_index
    detected = det_pred >= 0
    both = detected & found
    say(f"colour against gray: {len(colour_faces)} faces")
    colour_pred, gray_pred = [], []
    for start in range(0, len(colour_faces), batch):
        part = colour_faces[start : start + batch]
        gray = np.stack([cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for f in part])
        colour_pred += [r.label_index for r in pipeline.process_aligned(part)]
        gray_pred += [r.label_index for r in pipeline.process_aligned(gray)]
    agree = float(np.mean(np.array(colour_pred) == np.array(gray_pred))) if colour_pred else None
    return {
        "faces": n,
        "crop_path": {
            **_metrics(labels, crop_pred),
            "aligned": int(found.sum()),
            "centre_cropped": int((~found).sum()),
        },
        "detection_path": {**_metrics(labels[detected], det_pred[detected]), "found": int(detected.sum())},
        "on_faces_both_find": {
            "n": int(both.sum()),
            "crop_accuracy": _metrics(labels[both], crop_pred[both])["accuracy"],
            "detection_accuracy": _metrics(labels[both], det_pred[both])["accuracy"],
        },
        "colour_vs_gray": {"faces": len(colour_pred), "same_class": agree},
        "seconds": round(time.time() - t0, 1),
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def write_input_paths(report: dict[str, Any], out: Path) -> Path:
    """report -> out/input_paths.json and out/input_paths.md; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "input_paths.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    crop, det, both, colour = (
        report[k] for k in ("crop_path", "detection_path", "on_faces_both_find", "colour_vs_gray")
    )
    lines = [
        "# Input paths",
        "",
        f"FER+ valid, {report['faces']} majority-labelled faces upscaled to {CROP_SIZE} px; models: "
        f"{report.get('models_dir', '?')}.",
        "",
        "| path | faces | accuracy | macro recall |",
        "|---|---|---|---|",
        f"| crop (`images --aligned`): {crop['aligned']} aligned, {crop['centre_cropped']} centre-cropped "
        f"| {crop['n']} | {_pct(crop['accuracy'])} | {_pct(crop['macro_recall'])} |",
        f"| detection (`images`) | {det['n']} found | {_pct(det['accuracy'])} | {_pct(det['macro_recall'])} |",
        f"| crop, on the faces both find | {both['n']} | {_pct(both['crop_accuracy'])} | |",
        f"| detection, on the faces both find | {both['n']} | {_pct(both['detection_accuracy'])} | |",
        "",
        f"Colour against gray: the predicted class is the same for {_pct(colour['same_class'])} of "
        f"{colour['faces']} held-out UTKFace colour faces and their gray copies.",
        "",
    ]
    path = out / "input_paths.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
