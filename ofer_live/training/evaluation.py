"""``ofer-live eval``: the paper's measurements on our data, run on the EXPORTED models (callables, numpy in/out).

This module never imports the runtime: ``commands/eval.py`` loads the ONNX files with
``runtime.loader.load_models`` and passes their callables in a :class:`Pipeline`; baselines (e.g. the two teacher
models) come as a list of :class:`Baseline` callables. Everything is seeded (one generator per image and
condition), so two runs with the same seed give the same report.

Measurements (FER+ valid, majority labels, 7 classes; held-out UTKFace for reconstruction):
- ``clean``: accuracy, macro recall, per-class recall and confusion matrix of the full pipeline
  (detector -> mask -> reconstructor -> FER net), of the FER net fed the face directly ("no reconstruction",
  as ``PipelineConfig.use_reconstruction = False``: the face as it is, latents of the unmasked face) and of the
  baselines;
- ``curves`` (paper Figure 1): accuracy against the occluded proportion 0-50 % for random patches and Grad-CAM
  patches (the patches with the highest CAM of the FER net on the clean face; ``cam_fn`` may be replaced), filled
  black;
- ``pasted``: accuracy with about 25 % of the face covered by pasted cut-outs, all kinds and seen / held-out kinds,
  with and without reconstruction and with the true mask ("oracle"), plus baselines;
- ``detection`` (Table 1): patch accuracy / precision / recall / F1 / AUROC on pasted occluders, seen and held-out
  kinds separately (a patch is occluded when >= 50 % covered), and the flagged fraction on clean faces;
- ``reconstruction`` (Table 8): PSNR / SSIM of the reconstructor under 20-30 % irregular masks on held-out UTKFace
  (the mask is every patch a stroke touches);
- ``ablation`` (Table 10): clean and pasted accuracy with / without reconstruction for the shipped FER net and any
  extra FER-net variants (e.g. trained with ``latent_mode = "none"`` or ``"all"``).

``write_report`` writes ``report.json``, ``report.md`` and PNG plots (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ofer_live.contracts import LABELS, NUM_CLASSES
from ofer_live.errors import OutputError
from ofer_live.training.data.occluders import OccluderBank
from ofer_live.training.data.occlusion_synth import (
    FaceLayout,
    cam_patch_mask,
    fill_pixels,
    irregular_mask,
    paste_to_coverage,
    patch_coverage,
    patch_mask_to_pixels,
    random_patch_mask,
)
from ofer_live.training.metrics import POSITIVE, classification_metrics, detection_metrics, psnr, ssim

log = logging.getLogger(__name__)

Faces = np.ndarray  # (N, S, S, 3) uint8 RGB


@dataclass
class Pipeline:
    """The three exported models as numpy callables (shapes as in ``contracts``)."""

    face_size: int
    patch_grid: int
    latent_dim: int
    threshold: float
    occlusion: Callable[[Faces], np.ndarray]
    reconstructor: Callable[[Faces, np.ndarray], tuple[np.ndarray, np.ndarray]]
    expression: Callable[[Faces, np.ndarray], tuple[np.ndarray, np.ndarray]]
    name: str = "Latent-OFER"


@dataclass
class Baseline:
    """A reference FER model: ``predict(faces (N, S, S, 3) uint8 RGB) -> (N, 7)`` scores, FER2013 order."""

    name: str
    predict: Callable[[Faces], np.ndarray]


@dataclass
class EvalData:
    faces: np.ndarray  # (N, S, S, 3) uint8: FER+ valid faces with a majority label
    labels: np.ndarray  # (N,) int64
    utk_faces: np.ndarray  # (M, S, S, 3) uint8: held-out UTKFace
    seen: OccluderBank
    heldout: OccluderBank
    layout: FaceLayout
    description: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSettings:
    seed: int = 0
    batch_size: int = 64
    proportions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    fill: str = "black"
    pasted_coverage: float = 0.25
    irregular_coverage: tuple[float, float] = (0.2, 0.3)
    curve_images: int = 1000  # faces per point of the Figure 1 curves (0 = all): 30 pipeline passes


# ---------------------------------------------------------------------------------------------------------------
# Running the models
# ---------------------------------------------------------------------------------------------------------------


def _batched(fn: Callable[..., Any], n: int, batch: int, *arrays: np.ndarray) -> list[Any]:
    return [fn(*(a[i : i + batch] for a in arrays)) for i in range(0, n, batch)]


def run_pipeline(
    pipe: Pipeline,
    faces: Faces,
    mode: str = "full",
    true_mask: np.ndarray | None = None,
    batch: int = 64,
    expression: Callable[[Faces, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """faces (N, S, S, 3) -> {"logits" (N, 7), "cam" (N, G, G), "scores" (N, G, G), "mask" (N, G, G)}.

    mode: ``full`` (detector mask -> reconstruction), ``no_reconstruction`` (face as it is + latents of the
    unmasked face), ``oracle`` (``true_mask`` -> reconstruction). ``expression`` replaces the FER net (ablation).
    """
    fer = expression or pipe.expression
    g = pipe.patch_grid
    out: dict[str, list[np.ndarray]] = {"logits": [], "cam": [], "scores": [], "mask": []}
    for i in range(0, len(faces), batch):
        f = faces[i : i + batch]
        if mode == "oracle":
            assert true_mask is not None
            mask = true_mask[i : i + batch].astype(np.float32)
            scores = np.zeros((len(f), g, g), np.float32)
        else:
            scores = pipe.occlusion(f)
            mask = (scores > pipe.threshold).astype(np.float32)
        if mode == "no_reconstruction":
            _, latents = pipe.reconstructor(f, np.zeros_like(mask))
            image = f
        else:
            image, latents = pipe.reconstructor(f, mask)
        logits, cam = fer(image, latents)
        for k, v in (("logits", logits), ("cam", cam), ("scores", scores), ("mask", mask)):
            out[k].append(np.asarray(v))
    if not len(faces):
        return {
            "logits": np.zeros((0, NUM_CLASSES), np.float32),
            "cam": np.zeros((0, g, g), np.float32),
            "scores": np.zeros((0, g, g), np.float32),
            "mask": np.zeros((0, g, g), np.float32),
        }
    return {k: np.concatenate(v) for k, v in out.items()}


def predict_baseline(baseline: Baseline, faces: Faces, batch: int = 64) -> np.ndarray:
    """-> (N,) predicted classes."""
    parts = _batched(baseline.predict, len(faces), batch, faces)
    scores = np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES))
    return np.asarray(scores).argmax(axis=1)


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("n", "accuracy", "macro_recall", "per_class_recall", "confusion")}


# ---------------------------------------------------------------------------------------------------------------
# Synthetic conditions (seeded per image)
# ---------------------------------------------------------------------------------------------------------------


def _rng(seed: int, tag: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, tag, index])


def occlude_patches(faces: Faces, masks: np.ndarray, fill: str, seed: int, tag: int) -> Faces:
    """faces (N, S, S, 3), masks (N, G, G) -> faces with the masked patches filled (``fill_pixels`` mode)."""
    size = faces.shape[1]
    out = np.empty_like(faces)
    for i, (face, mask) in enumerate(zip(faces, masks, strict=False)):
        out[i] = fill_pixels(face, patch_mask_to_pixels(mask, size), _rng(seed, tag, i), fill)
    return out


def pasted_condition(
    faces: Faces, bank: OccluderBank, layout: FaceLayout, target: float, grid: int, seed: int, tag: int
) -> tuple[Faces, np.ndarray]:
    """faces -> (faces with cut-outs covering about ``target`` of the area, coverage (N, G, G))."""
    out = np.empty_like(faces)
    cov = np.zeros((len(faces), grid, grid), np.float32)
    for i, face in enumerate(faces):
        image, alpha, _ = paste_to_coverage(face, bank, layout, _rng(seed, tag, i), target)
        out[i] = image
        cov[i] = patch_coverage(alpha, grid)
    return out, cov


# ---------------------------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------------------------


def evaluate(
    pipe: Pipeline,
    data: EvalData,
    settings: EvalSettings = EvalSettings(),
    baselines: Sequence[Baseline] = (),
    variants: dict[str, Callable[[Faces, np.ndarray], tuple[np.ndarray, np.ndarray]]] | None = None,
    cam_fn: Callable[[Faces], np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every measurement (see module docstring) -> a JSON-serialisable report dict."""
    t0 = time.time()
    say = progress or (lambda msg: log.info("%s", msg))
    s, g, bs = settings.seed, pipe.patch_grid, settings.batch_size
    faces, labels = data.faces, data.labels
    report: dict[str, Any] = {
        "meta": {
            "seed": s,
            "n_faces": int(len(faces)),
            "n_utkface": int(len(data.utk_faces)),
            "face_size": pipe.face_size,
            "patch_grid": g,
            "latent_dim": pipe.latent_dim,
            "threshold": pipe.threshold,
            "seen_kinds": list(data.seen.kinds),
            "heldout_kinds": list(data.heldout.kinds),
            "baselines": [b.name for b in baselines],
            "variants": sorted(variants or {}),
            "settings": {
                "proportions": list(settings.proportions),
                "fill": settings.fill,
                "curve_images": settings.curve_images,
                "pasted_coverage": settings.pasted_coverage,
                "irregular_coverage": list(settings.irregular_coverage),
            },
            **data.description,
        }
    }

    def accuracy_of(logits: np.ndarray) -> dict[str, Any]:
        return _summary(classification_metrics(labels, np.asarray(logits).argmax(axis=1)))

    # -- clean ------------------------------------------------------------------------------------------------
    say("clean faces")
    clean_full = run_pipeline(pipe, faces, "full", batch=bs)
    clean_direct = run_pipeline(pipe, faces, "no_reconstruction", batch=bs)
    clean: dict[str, Any] = {
        "pipeline": accuracy_of(clean_full["logits"]),
        "no_reconstruction": accuracy_of(clean_direct["logits"]),
        "flagged_patch_fraction": float(clean_full["mask"].mean()) if len(faces) else float("nan"),
        "baselines": {},
    }
    for b in baselines:
        clean["baselines"][b.name] = _summary(classification_metrics(labels, predict_baseline(b, faces, bs)))
    report["clean"] = clean

    # -- Figure 1: random and Grad-CAM patch occlusion ------------------------------------------------------------
    # The curves use the first ``curve_images`` faces (a fixed random subset already); p = 0 reuses the clean runs.
    nc = len(faces) if settings.curve_images <= 0 else min(settings.curve_images, len(faces))
    cfaces, clabels = faces[:nc], labels[:nc]
    cams = cam_fn(cfaces) if cam_fn is not None else clean_direct["cam"][:nc]
    base_clean = {b.name: predict_baseline(b, cfaces, bs) for b in baselines}

    def acc(pred: np.ndarray) -> float:
        return float((pred == clabels).mean()) if nc else float("nan")

    curves: dict[str, Any] = {}
    for tag, kind in ((1, "random"), (2, "gradcam")):
        say(f"{kind} patch occlusion")
        rows: dict[str, list[float]] = {"pipeline": [], "no_reconstruction": [], "oracle": []}
        rows.update({b.name: [] for b in baselines})
        for p in settings.proportions:
            if p <= 0:
                rows["pipeline"].append(acc(clean_full["logits"][:nc].argmax(1)))
                rows["no_reconstruction"].append(acc(clean_direct["logits"][:nc].argmax(1)))
                rows["oracle"].append(rows["no_reconstruction"][-1])  # an empty mask changes nothing
                for b in baselines:
                    rows[b.name].append(acc(base_clean[b.name]))
                continue
            key = tag * 100 + int(round(p * 100))
            if kind == "random":
                masks = (
                    np.stack([random_patch_mask(g, p, _rng(s, key, i)) for i in range(nc)])
                    if nc
                    else np.zeros((0, g, g), np.float32)
                )
            else:
                masks = (
                    np.stack([cam_patch_mask(c, g, p, _rng(s, key, i)) for i, c in enumerate(cams)])
                    if nc
                    else np.zeros((0, g, g), np.float32)
                )
            occluded = occlude_patches(cfaces, masks, settings.fill, s, tag * 1000 + int(round(p * 100)))
            for mode in ("full", "no_reconstruction", "oracle"):
                res = run_pipeline(pipe, occluded, mode, true_mask=masks, batch=bs)
                rows["pipeline" if mode == "full" else mode].append(acc(res["logits"].argmax(1)))
            for b in baselines:
                rows[b.name].append(acc(predict_baseline(b, occluded, bs)))
        curves[kind] = {"proportions": list(settings.proportions), "accuracy": rows, "n": int(nc)}
    report["curves"] = curves

    # -- pasted cut-outs at ~25 % -------------------------------------------------------------------------------
    pasted: dict[str, Any] = {}
    detection: dict[str, Any] = {}
    banks = [("seen", data.seen), ("heldout", data.heldout)]
    all_bank = OccluderBank(list(data.seen) + list(data.heldout))
    stash: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    reuse: dict[tuple[str, str], np.ndarray] = {
        ("clean", "full"): clean_full["logits"],
        ("clean", "no_reconstruction"): clean_direct["logits"],
    }
    for tag, (name, bank) in enumerate([("all", all_bank), *banks], start=10):
        if not len(bank):
            continue
        say(f"pasted cut-outs ({name} kinds)")
        occluded, cov = pasted_condition(faces, bank, data.layout, settings.pasted_coverage, g, s, tag)
        stash[name] = (occluded, cov)
        truth = (cov >= POSITIVE - 1e-6).astype(np.float32)
        full = run_pipeline(pipe, occluded, "full", batch=bs)
        direct = run_pipeline(pipe, occluded, "no_reconstruction", batch=bs)
        if name == "all":
            reuse["pasted", "full"], reuse["pasted", "no_reconstruction"] = full["logits"], direct["logits"]
        entry: dict[str, Any] = {
            "coverage_mean": float(cov.mean()) if len(cov) else float("nan"),
            "occluded_patch_fraction": float(truth.mean()) if len(truth) else float("nan"),
            "pipeline": accuracy_of(full["logits"]),
            "no_reconstruction": accuracy_of(direct["logits"]),
            "oracle": accuracy_of(run_pipeline(pipe, occluded, "oracle", true_mask=truth, batch=bs)["logits"]),
            "baselines": {
                b.name: _summary(classification_metrics(labels, predict_baseline(b, occluded, bs))) for b in baselines
            },
        }
        pasted[name] = entry
        if name != "all":
            detection[name] = detection_metrics(full["scores"], cov, threshold=pipe.threshold)
    detection["clean_flagged_fraction"] = clean["flagged_patch_fraction"]
    report["pasted"] = pasted
    report["detection"] = detection

    # -- Table 8: reconstruction under irregular masks ------------------------------------------------------------
    say("reconstruction (irregular masks, held-out UTKFace)")
    utk = data.utk_faces
    if len(utk):
        size = utk.shape[1]
        alphas = np.stack([irregular_mask(size, _rng(s, 50, i), settings.irregular_coverage) for i in range(len(utk))])
        masks = (patch_coverage(alphas, g) > 0).astype(np.float32)
        occluded = np.stack(
            [fill_pixels(f, a, _rng(s, 51, i), "noise") for i, (f, a) in enumerate(zip(utk, alphas, strict=True))]
        )
        recs = np.concatenate(
            [pipe.reconstructor(occluded[i : i + bs], masks[i : i + bs])[0] for i in range(0, len(utk), bs)]
        )
        p, q = psnr(recs, utk), ssim(recs, utk)
        # The inpainting protocol of the paper's Table 8: known pixels kept, the stroke pixels from the model.
        a = alphas[..., None]
        composite = np.clip(utk * (1 - a) + recs * a, 0, 255).round().astype(np.uint8)
        pc, qc = psnr(composite, utk), ssim(composite, utk)
        report["reconstruction"] = {
            "n": int(len(utk)),
            "psnr": float(p.mean()),
            "ssim": float(q.mean()),
            "psnr_pixel": float(pc.mean()),
            "ssim_pixel": float(qc.mean()),
            "pixel_coverage": float(alphas.mean()),
            "masked_patch_fraction": float(masks.mean()),
            "psnr_occluded_input": float(psnr(occluded, utk).mean()),
        }
    else:
        report["reconstruction"] = {"n": 0}

    # -- Table 10: ablation ------------------------------------------------------------------------------------
    say("ablation")
    fers = {"shipped FER net": None, **(variants or {})}
    ablation = []
    pasted_faces = stash.get("all", (faces, None))[0]
    for name, fn in fers.items():
        for mode in ("full", "no_reconstruction"):
            row: dict[str, Any] = {"expression": name, "reconstruction": mode == "full"}
            for condition, inputs in (("clean", faces), ("pasted", pasted_faces)):
                logits = reuse.get((condition, mode)) if fn is None else None
                if logits is None:
                    logits = run_pipeline(pipe, inputs, mode, batch=bs, expression=fn)["logits"]
                row[f"{condition}_accuracy"] = (
                    float((logits.argmax(1) == labels).mean()) if len(faces) else float("nan")
                )
            ablation.append(row)
    report["ablation"] = ablation
    report["meta"]["seconds"] = round(time.time() - t0, 1)
    return report


# ---------------------------------------------------------------------------------------------------------------
# Report files
# ---------------------------------------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not np.isfinite(v) else f"{100 * v:.1f} %"


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not np.isfinite(v) else fmt.format(v)


def targets_table(report: dict[str, Any]) -> list[dict[str, str]]:
    """The issue's target table filled with this report's numbers."""
    clean, pasted, det, rec = (
        report["clean"],
        report["pasted"].get("all", {}),
        report["detection"],
        report["reconstruction"],
    )
    base_clean = " / ".join(f"{_pct(m['accuracy'])}" for m in clean["baselines"].values()) or "-"
    base_macro = " / ".join(f"{_pct(m['macro_recall'])}" for m in clean["baselines"].values()) or "-"
    base_pasted = " / ".join(f"{_pct(m['accuracy'])}" for m in pasted.get("baselines", {}).values()) or "-"
    seen = det.get("seen", {})
    rows = [
        {
            "measurement": "accuracy, clean faces",
            "baselines": base_clean,
            "target": ">= 84 %",
            "ours": _pct(clean["pipeline"]["accuracy"]),
        },
        {
            "measurement": "accuracy, 25 % pasted cut-outs",
            "baselines": base_pasted,
            "target": ">= 78 %, >= 3 points above no reconstruction",
            "ours": f"{_pct(pasted.get('pipeline', {}).get('accuracy'))} "
            f"(no reconstruction {_pct(pasted.get('no_reconstruction', {}).get('accuracy'))})",
        },
        {
            "measurement": "macro recall, clean",
            "baselines": base_macro,
            "target": ">= 75 %",
            "ours": _pct(clean["pipeline"]["macro_recall"]),
        },
        {
            "measurement": "patch detection accuracy / recall (seen kinds)",
            "baselines": "paper: 98.3 % / 98.7 %",
            "target": ">= 95 % / >= 95 %",
            "ours": f"{_pct(seen.get('accuracy'))} / {_pct(seen.get('recall'))}",
        },
        {
            "measurement": "reconstruction PSNR / SSIM, 25 % irregular, held-out UTKFace",
            "baselines": "paper: 26.65 dB / 0.880",
            "target": ">= 26 dB / >= 0.88",
            "ours": f"{_num(rec.get('psnr_pixel'))} dB / {_num(rec.get('ssim_pixel'), '{:.3f}')} (stroke pixels "
            f"from the model); whole masked patches: {_num(rec.get('psnr'))} dB / "
            f"{_num(rec.get('ssim'), '{:.3f}')}",
        },
    ]
    held = det.get("heldout")
    if held:
        rows.insert(
            4,
            {
                "measurement": "patch detection accuracy / recall (held-out kinds)",
                "baselines": "-",
                "target": "report",
                "ours": f"{_pct(held.get('accuracy'))} / {_pct(held.get('recall'))}",
            },
        )
    return rows


def render_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    meta = report["meta"]
    lines = ["# ofer_live evaluation", ""]
    lines.append(
        f"FER+ valid faces: {meta['n_faces']} (majority labels, 7 classes); held-out UTKFace: "
        f"{meta['n_utkface']}; seed {meta['seed']}; face {meta['face_size']} px, grid {meta['patch_grid']}, "
        f"threshold {meta['threshold']}."
    )
    if meta.get("models_dir"):
        lines.append(f"Models: `{meta['models_dir']}`" + (f" ({meta['provider']})" if meta.get("provider") else ""))
    lines.append(
        f"Occluder kinds seen in training: {', '.join(meta['seen_kinds']) or '-'}; held out: "
        f"{', '.join(meta['heldout_kinds']) or '-'}."
    )
    lines += ["", "## Summary", "", "| measurement | baselines | target | ours |", "|---|---|---|---|"]
    for row in targets_table(report):
        lines.append(f"| {row['measurement']} | {row['baselines']} | {row['target']} | {row['ours']} |")
    if meta["baselines"]:
        lines.append("")
        lines.append(f"Baselines, in order: {', '.join(meta['baselines'])}.")
    # clean
    clean = report["clean"]
    lines += ["", "## Clean faces", "", "| model | accuracy | macro recall |", "|---|---|---|"]
    lines.append(
        f"| Latent-OFER pipeline | {_pct(clean['pipeline']['accuracy'])} | {_pct(clean['pipeline']['macro_recall'])} |"
    )
    lines.append(
        f"| FER net without reconstruction | {_pct(clean['no_reconstruction']['accuracy'])} | "
        f"{_pct(clean['no_reconstruction']['macro_recall'])} |"
    )
    for name, m in clean["baselines"].items():
        lines.append(f"| {name} | {_pct(m['accuracy'])} | {_pct(m['macro_recall'])} |")
    lines.append(f"\nPatches flagged as occluded on clean faces: {_pct(clean['flagged_patch_fraction'])}.")
    lines += [
        "",
        "Per-class recall (pipeline): "
        + ", ".join(f"{k} {_pct(v)}" for k, v in clean["pipeline"]["per_class_recall"].items()),
    ]
    lines += ["", "Confusion matrix (rows: true, columns: predicted; " + ", ".join(LABELS) + "):", "", "```"]
    for label, row in zip(LABELS, clean["pipeline"]["confusion"], strict=False):
        lines.append(f"{label:>9} " + " ".join(f"{v:5d}" for v in row))
    lines.append("```")
    # curves
    lines += ["", "## Accuracy against the occluded proportion (Figure 1)", ""]
    for kind, curve in report["curves"].items():
        props = curve["proportions"]
        n_curve = curve.get("n", meta["n_faces"])
        source = f", CAM: {meta.get('cam_source', 'expression')}" if kind == "gradcam" else ""
        lines.append(f"**{kind}** patches (filled {meta['settings']['fill']}; {n_curve} faces{source}):")
        lines.append("")
        lines.append("| model | " + " | ".join(f"{int(round(100 * p))} %" for p in props) + " |")
        lines.append("|---|" + "---|" * len(props))
        for name, accs in curve["accuracy"].items():
            label = {
                "pipeline": "Latent-OFER pipeline",
                "no_reconstruction": "no reconstruction",
                "oracle": "true mask + reconstruction",
            }.get(name, name)
            lines.append(f"| {label} | " + " | ".join(_pct(a) for a in accs) + " |")
        lines.append("")
    # pasted
    header = ["kinds", "coverage", "pipeline", "no reconstruction", "true mask", *meta["baselines"]]
    lines += [
        "## Pasted cut-outs (about 25 % of the face)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, m in report["pasted"].items():
        cells = [
            name,
            _pct(m["coverage_mean"]),
            _pct(m["pipeline"]["accuracy"]),
            _pct(m["no_reconstruction"]["accuracy"]),
            _pct(m["oracle"]["accuracy"]),
        ]
        cells += [_pct(m["baselines"][b]["accuracy"]) for b in meta["baselines"]]
        lines.append("| " + " | ".join(cells) + " |")
    # detection
    lines += [
        "",
        "## Occlusion patch detection (Table 1)",
        "",
        "| occluders | accuracy | precision | recall | F1 | AUROC | FPR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("seen", "heldout"):
        m = report["detection"].get(name)
        if m:
            lines.append(
                f"| {name} kinds | {_pct(m['accuracy'])} | {_pct(m['precision'])} | {_pct(m['recall'])} | "
                f"{_pct(m['f1'])} | {_num(m['auroc'], '{:.3f}')} | {_pct(m['fpr'])} |"
            )
    lines.append("\nA patch counts as occluded when at least 50 % of it is covered.")
    # reconstruction
    rec = report["reconstruction"]
    lines += ["", "## Reconstruction (Table 8)", ""]
    if rec.get("n"):
        lines.append(
            f"Held-out UTKFace ({rec['n']} faces), irregular masks covering {_pct(rec['pixel_coverage'])} "
            f"of the pixels; every patch a stroke touches is masked ({_pct(rec['masked_patch_fraction'])} "
            "of the patches)."
        )
        lines += [
            "",
            "| output compared with the clean face | PSNR | SSIM |",
            "|---|---|---|",
            f"| stroke pixels from the model, the rest known (inpainting protocol, as Table 8) | "
            f"{_num(rec['psnr_pixel'])} dB | {_num(rec['ssim_pixel'], '{:.3f}')} |",
            f"| the reconstructor's output as is (whole masked patches regenerated) | {_num(rec['psnr'])} dB | "
            f"{_num(rec['ssim'], '{:.3f}')} |",
            f"| the occluded input (noise in the strokes) | {_num(rec['psnr_occluded_input'])} dB | - |",
        ]
    else:
        lines.append("No held-out UTKFace faces.")
    # ablation
    lines += [
        "",
        "## Ablation (Table 10)",
        "",
        "| FER net | reconstruction | clean | 25 % pasted |",
        "|---|---|---|---|",
    ]
    for row in report["ablation"]:
        lines.append(
            f"| {row['expression']} | {'yes' if row['reconstruction'] else 'no'} | "
            f"{_pct(row['clean_accuracy'])} | {_pct(row['pasted_accuracy'])} |"
        )
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({file})" for name, file in plots.items()]
    lines.append(f"\nEvaluation took {meta.get('seconds', '-')} s.")
    return "\n".join(lines) + "\n"


def write_plots(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Figure 1 curves and the clean confusion matrix as PNGs -> {title: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    curves = report["curves"]
    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.0), squeeze=False)
    for ax, (kind, curve) in zip(axes[0], curves.items(), strict=False):
        x = [100 * p for p in curve["proportions"]]
        for name, accs in curve["accuracy"].items():
            label = {"pipeline": "Latent-OFER", "no_reconstruction": "no reconstruction", "oracle": "true mask"}.get(
                name, name
            )
            style = "-o" if name == "pipeline" else "--." if name in ("no_reconstruction", "oracle") else ":s"
            ax.plot(x, [100 * a for a in accs], style, label=label, markersize=4)
        ax.set_title(f"{'Random' if kind == 'random' else 'Grad-CAM'} patch occlusion")
        ax.set_xlabel("occluded patches (%)")
        ax.set_ylabel("accuracy on FER+ valid (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy_vs_occlusion.png", dpi=120)
    plt.close(fig)
    files["Accuracy against the occluded proportion"] = "accuracy_vs_occlusion.png"

    confusion = np.asarray(report["clean"]["pipeline"]["confusion"], dtype=np.float64)
    norm = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(NUM_CLASSES), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_CLASSES), LABELS)
    for i in range(NUM_CLASSES):
        for j in range(NUM_CLASSES):
            ax.text(
                j,
                i,
                f"{int(confusion[i, j])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix, clean FER+ valid")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_clean.png", dpi=120)
    plt.close(fig)
    files["Confusion matrix, clean"] = "confusion_clean.png"
    return files


def _clean_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and the PNG plots into ``out_dir`` -> {kind: path}."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        plots = write_plots(report, out_dir)
        json_path = out_dir / "report.json"
        json_path.write_text(json.dumps(_clean_json(report), indent=2) + "\n", encoding="utf-8")
        md_path = out_dir / "report.md"
        md_path.write_text(render_markdown(report, plots), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write the report ({exc.strerror or exc})") from None
    return {"json": json_path, "markdown": md_path, **{f"plot:{f}": out_dir / f for f in plots.values()}}


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def load_eval_data(
    settings: Any,
    face_size: int,
    heldout_kinds: Sequence[str],
    max_images: int | None,
    seed: int,
    max_utkface: int | None = None,
) -> EvalData:
    """FER+ valid (majority labels) and held-out UTKFace at ``face_size`` from the caches (built when missing),
    plus the occluders split into seen / held-out kinds. ``max_images`` takes a fixed random subset."""
    from ofer_live.training.data import cache
    from ofer_live.training.data.occlusion_synth import template_layout
    from ofer_live.training.data.sources import subsample

    valid = cache.ferplus(settings, "valid")
    idx = subsample(np.flatnonzero(valid.labels >= 0), max_images or None, seed)
    faces = valid.store.batch(idx, face_size)
    labels = valid.labels[idx].astype(np.int64)
    utk_faces = np.zeros((0, face_size, face_size, 3), np.uint8)
    n_utk_total = 0
    try:
        utk = cache.utkface(settings, face_size)
    except Exception as exc:  # noqa: BLE001 - reconstruction is skipped when UTKFace is not available
        log.warning("held-out UTKFace unavailable (%s): reconstruction metrics skipped", exc)
    else:
        held = utk.indices(heldout=True)
        n_utk_total = len(held)
        held = subsample(held, max_utkface if max_utkface else (max_images or None), seed + 1)
        utk_faces = utk.store.batch(held, face_size)
    bank = cache.occluders(settings)
    held_kinds = [k for k in heldout_kinds if k in bank.kinds]
    seen, heldout = bank.split(held_kinds)
    return EvalData(
        faces=faces,
        labels=labels,
        utk_faces=utk_faces,
        seen=seen,
        heldout=heldout,
        layout=template_layout(),
        description={
            "ferplus_valid_labelled": int((valid.labels >= 0).sum()),
            "utkface_heldout": n_utk_total,
            "data_root": str(settings.data_root),
        },
    )
