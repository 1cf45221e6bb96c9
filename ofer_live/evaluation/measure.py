"""``ofer-live eval``: the paper's measurements on our data, run through the app's own ``FramePipeline``.

``commands/eval.py`` builds a :class:`~ofer_live.pipeline.frame_pipeline.FramePipeline` on the exported models
(ONNX Runtime) and hands it here; every measurement calls ``FramePipeline.process_aligned`` (with its ``mask`` and
``use_reconstruction`` ablations), so eval measures exactly what the app runs, settings included (sensitivity,
gray faces). Baselines (e.g. the two teacher models) come as a list of :class:`Baseline` callables. Everything is
seeded (one generator per image and condition), so two runs with the same seed give the same report.

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

``evaluation.report.write_report`` writes the files.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ofer_live.contracts import NUM_CLASSES
from ofer_live.pipeline.frame_pipeline import FramePipeline
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


def through_pipeline(
    pipeline: FramePipeline,
    faces: Faces,
    batch: int = 64,
    *,
    mask: np.ndarray | None = None,
    use_reconstruction: bool | None = None,
    direct_view: bool | None = None,
) -> dict[str, np.ndarray]:
    """faces (N, S, S, 3) -> {"probs" (N, 7), "cam" (N, G, G), "scores" (N, G, G), "mask" (N, G, G),
    "reconstruction" (N, S, S, 3)} from ``pipeline.process_aligned`` in batches of ``batch`` faces.

    ``mask`` (N, G, G) replaces the detector's mask (the oracle); ``use_reconstruction=False`` is the
    no-reconstruction ablation, ``direct_view=False`` the reconstruction alone (see ``FramePipeline.process_aligned``).
    """
    g, size = pipeline.models.patch_grid, pipeline.face_size
    results = []
    for i in range(0, len(faces), batch):
        chunk_mask = None if mask is None else mask[i : i + batch]
        results += pipeline.process_aligned(
            faces[i : i + batch], mask=chunk_mask, use_reconstruction=use_reconstruction, direct_view=direct_view
        )
    if not results:
        return {
            "probs": np.zeros((0, NUM_CLASSES), np.float32),
            "cam": np.zeros((0, g, g), np.float32),
            "scores": np.zeros((0, g, g), np.float32),
            "mask": np.zeros((0, g, g), np.float32),
            "reconstruction": np.zeros((0, size, size, 3), np.uint8),
        }
    return {
        "probs": np.stack([r.probs for r in results]),
        "cam": np.stack([r.cam for r in results]),
        "scores": np.stack([r.patch_score for r in results]),
        "mask": np.stack([r.mask for r in results]).astype(np.float32),
        "reconstruction": np.stack([r.reconstruction for r in results]),
    }


def with_expression(pipeline: FramePipeline, expression: Callable[..., Any]) -> FramePipeline:
    """The same models and settings with another FER net (the ablation's variants). Close only the original."""
    models = dataclasses.replace(pipeline.models, expression=expression)
    return FramePipeline(models, config=pipeline.config)


def without_latents(expression: Callable[..., Any]) -> Callable[..., Any]:
    """The FER net ``expression(faces (N, S, S, 3), latents (N, G*G, D)) -> (logits, cam)`` with its ViT latents
    replaced by zeros: the ablation row that shows what the latent branch adds."""

    def run(faces: Faces, latents: np.ndarray) -> Any:
        return expression(faces, np.zeros_like(latents))

    return run


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


class _Evaluation:
    """One ``evaluate`` call: the inputs, and the pipeline outputs that later measurements reuse."""

    def __init__(
        self,
        pipeline: FramePipeline,
        data: EvalData,
        settings: EvalSettings,
        baselines: Sequence[Baseline],
        say: Callable[[str], None],
    ) -> None:
        self.pipeline, self.data, self.settings, self.baselines, self.say = pipeline, data, settings, baselines, say
        self.seed, self.grid, self.batch = settings.seed, pipeline.models.patch_grid, settings.batch_size
        self.faces, self.labels = data.faces, data.labels
        # (condition, mode) -> probs (N, 7) of the shipped FER net, kept for the ablation table
        self.reuse: dict[tuple[str, str], np.ndarray] = {}
        self.pasted_faces = data.faces  # the "all kinds" pasted faces once measured

    def run(self, faces: Faces, **kwargs: Any) -> dict[str, np.ndarray]:
        return through_pipeline(self.pipeline, faces, self.batch, **kwargs)

    def accuracy_of(self, probs: np.ndarray) -> dict[str, Any]:
        return _summary(classification_metrics(self.labels, np.asarray(probs).argmax(axis=1)))

    def baseline_accuracies(self, faces: Faces) -> dict[str, Any]:
        return {
            b.name: _summary(classification_metrics(self.labels, predict_baseline(b, faces, self.batch)))
            for b in self.baselines
        }

    def meta(self, variants: Sequence[str]) -> dict[str, Any]:
        settings, data = self.settings, self.data
        return {
            "seed": self.seed,
            "n_faces": int(len(self.faces)),
            "n_utkface": int(len(data.utk_faces)),
            "face_size": self.pipeline.face_size,
            "patch_grid": self.grid,
            "latent_dim": self.pipeline.models.latent_dim,
            "threshold": self.pipeline.mask_threshold,
            "seen_kinds": list(data.seen.kinds),
            "heldout_kinds": list(data.heldout.kinds),
            "baselines": [b.name for b in self.baselines],
            "variants": sorted(variants),
            "settings": {
                "proportions": list(settings.proportions),
                "fill": settings.fill,
                "curve_images": settings.curve_images,
                "pasted_coverage": settings.pasted_coverage,
                "irregular_coverage": list(settings.irregular_coverage),
            },
            **data.description,
        }

    def clean(self) -> dict[str, Any]:
        """Accuracy on the clean faces, with and without reconstruction, and the baselines'."""
        self.say("clean faces")
        self.clean_full = self.run(self.faces)
        self.clean_direct = self.run(self.faces, use_reconstruction=False)
        self.reuse["clean", "full"] = self.clean_full["probs"]
        self.reuse["clean", "no_reconstruction"] = self.clean_direct["probs"]
        return {
            "pipeline": self.accuracy_of(self.clean_full["probs"]),
            "no_reconstruction": self.accuracy_of(self.clean_direct["probs"]),
            "flagged_patch_fraction": float(self.clean_full["mask"].mean()) if len(self.faces) else float("nan"),
            "baselines": self.baseline_accuracies(self.faces),
        }

    def curves(self, cam_fn: Callable[[Faces], np.ndarray] | None) -> dict[str, Any]:
        """Figure 1: accuracy against the proportion of random / Grad-CAM patches filled. Uses the first
        ``curve_images`` faces (a fixed random subset already); p = 0 reuses the clean runs (``clean`` first)."""
        settings, s, g = self.settings, self.seed, self.grid
        nc = len(self.faces) if settings.curve_images <= 0 else min(settings.curve_images, len(self.faces))
        cfaces, clabels = self.faces[:nc], self.labels[:nc]
        cams = cam_fn(cfaces) if cam_fn is not None else self.clean_direct["cam"][:nc]
        base_clean = {b.name: predict_baseline(b, cfaces, self.batch) for b in self.baselines}

        def acc(pred: np.ndarray) -> float:
            return float((pred == clabels).mean()) if nc else float("nan")

        curves: dict[str, Any] = {}
        for tag, kind in ((1, "random"), (2, "gradcam")):
            self.say(f"{kind} patch occlusion")
            rows: dict[str, list[float]] = {"pipeline": [], "no_reconstruction": [], "oracle": []}
            rows.update({b.name: [] for b in self.baselines})
            for p in settings.proportions:
                if p <= 0:
                    rows["pipeline"].append(acc(self.clean_full["probs"][:nc].argmax(1)))
                    rows["no_reconstruction"].append(acc(self.clean_direct["probs"][:nc].argmax(1)))
                    rows["oracle"].append(rows["no_reconstruction"][-1])  # an empty mask changes nothing
                    for b in self.baselines:
                        rows[b.name].append(acc(base_clean[b.name]))
                    continue
                key = tag * 100 + int(round(p * 100))
                if not nc:
                    masks = np.zeros((0, g, g), np.float32)
                elif kind == "random":
                    masks = np.stack([random_patch_mask(g, p, _rng(s, key, i)) for i in range(nc)])
                else:
                    masks = np.stack([cam_patch_mask(c, g, p, _rng(s, key, i)) for i, c in enumerate(cams)])
                occluded = occlude_patches(cfaces, masks, settings.fill, s, tag * 1000 + int(round(p * 100)))
                for row, kwargs in (
                    ("pipeline", {}),
                    ("no_reconstruction", {"use_reconstruction": False}),
                    ("oracle", {"mask": masks}),
                ):
                    rows[row].append(acc(self.run(occluded, **kwargs)["probs"].argmax(1)))
                for b in self.baselines:
                    rows[b.name].append(acc(predict_baseline(b, occluded, self.batch)))
            curves[kind] = {"proportions": list(settings.proportions), "accuracy": rows, "n": int(nc)}
        return curves

    def pasted(self, clean_flagged_fraction: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """About 25 % of the face covered by pasted cut-outs (all, seen, held-out kinds) -> (accuracy section,
        detection section (Table 1))."""
        data, settings = self.data, self.settings
        pasted: dict[str, Any] = {}
        detection: dict[str, Any] = {}
        all_bank = OccluderBank(list(data.seen) + list(data.heldout))
        conditions = [("all", all_bank), ("seen", data.seen), ("heldout", data.heldout)]
        for tag, (name, bank) in enumerate(conditions, start=10):
            if not len(bank):
                continue
            self.say(f"pasted cut-outs ({name} kinds)")
            occluded, cov = pasted_condition(
                self.faces, bank, data.layout, settings.pasted_coverage, self.grid, self.seed, tag
            )
            truth = (cov >= POSITIVE - 1e-6).astype(np.float32)
            full = self.run(occluded)
            direct = self.run(occluded, use_reconstruction=False)
            if name == "all":
                self.pasted_faces = occluded
                self.reuse["pasted", "full"], self.reuse["pasted", "no_reconstruction"] = full["probs"], direct["probs"]
            pasted[name] = {
                "coverage_mean": float(cov.mean()) if len(cov) else float("nan"),
                "occluded_patch_fraction": float(truth.mean()) if len(truth) else float("nan"),
                "pipeline": self.accuracy_of(full["probs"]),
                "no_reconstruction": self.accuracy_of(direct["probs"]),
                "oracle": self.accuracy_of(self.run(occluded, mask=truth)["probs"]),
                "baselines": self.baseline_accuracies(occluded),
            }
            if name != "all":
                detection[name] = detection_metrics(full["scores"], cov, threshold=self.pipeline.mask_threshold)
        detection["clean_flagged_fraction"] = clean_flagged_fraction
        return pasted, detection

    def reconstruction(self) -> dict[str, Any]:
        """Table 8: PSNR / SSIM under irregular masks on held-out UTKFace (every patch a stroke touches masked)."""
        self.say("reconstruction (irregular masks, held-out UTKFace)")
        utk, s = self.data.utk_faces, self.seed
        if not len(utk):
            return {"n": 0}
        size = utk.shape[1]
        coverage = self.settings.irregular_coverage
        alphas = np.stack([irregular_mask(size, _rng(s, 50, i), coverage) for i in range(len(utk))])
        masks = (patch_coverage(alphas, self.grid) > 0).astype(np.float32)
        occluded = np.stack(
            [fill_pixels(f, a, _rng(s, 51, i), "noise") for i, (f, a) in enumerate(zip(utk, alphas, strict=True))]
        )
        recs = self.run(occluded, mask=masks)["reconstruction"]
        p, q = psnr(recs, utk), ssim(recs, utk)
        # The inpainting protocol of the paper's Table 8: known pixels kept, the stroke pixels from the model.
        a = alphas[..., None]
        composite = np.clip(utk * (1 - a) + recs * a, 0, 255).round().astype(np.uint8)
        pc, qc = psnr(composite, utk), ssim(composite, utk)
        return {
            "n": int(len(utk)),
            "psnr": float(p.mean()),
            "ssim": float(q.mean()),
            "psnr_pixel": float(pc.mean()),
            "ssim_pixel": float(qc.mean()),
            "pixel_coverage": float(alphas.mean()),
            "masked_patch_fraction": float(masks.mean()),
            "psnr_occluded_input": float(psnr(occluded, utk).mean()),
        }

    def ablation(self, variants: dict[str, Callable[..., Any]]) -> list[dict[str, Any]]:
        """Table 10: clean and pasted accuracy per FER net and mode (``pasted`` first). The shipped net runs the
        pipeline as shipped (reconstruction + direct view), the reconstruction alone, and no reconstruction; the
        same net with its latents zeroed and the variants run the first and the last."""
        self.say("ablation")
        full, alone, none = (
            ("full", True, True),
            ("reconstruction_only", True, False),
            ("no_reconstruction", False, False),
        )
        nets: dict[str, tuple[Callable[..., Any] | None, tuple]] = {
            "shipped FER net": (None, (full, alone, none)),
            "shipped FER net, latents zeroed": (without_latents(self.pipeline.models.expression), (full, none)),
            **{name: (fn, (full, none)) for name, fn in variants.items()},
        }
        rows = []
        for name, (fn, modes) in nets.items():
            variant = self.pipeline if fn is None else with_expression(self.pipeline, fn)
            for mode, use_reconstruction, direct_view in modes:
                row: dict[str, Any] = {
                    "expression": name,
                    "reconstruction": use_reconstruction,
                    "direct_view": direct_view,
                }
                for condition, inputs in (("clean", self.faces), ("pasted", self.pasted_faces)):
                    probs = self.reuse.get((condition, mode)) if fn is None else None
                    if probs is None:
                        probs = through_pipeline(
                            variant, inputs, self.batch, use_reconstruction=use_reconstruction, direct_view=direct_view
                        )["probs"]
                    correct = probs.argmax(1) == self.labels
                    row[f"{condition}_accuracy"] = float(correct.mean()) if len(self.faces) else float("nan")
                rows.append(row)
        return rows


def evaluate(
    pipeline: FramePipeline,
    data: EvalData,
    settings: EvalSettings = EvalSettings(),
    baselines: Sequence[Baseline] = (),
    variants: dict[str, Callable[[Faces, np.ndarray], tuple[np.ndarray, np.ndarray]]] | None = None,
    cam_fn: Callable[[Faces], np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every measurement (see module docstring) -> a JSON-serialisable report dict."""
    t0 = time.time()
    variants = variants or {}
    ev = _Evaluation(pipeline, data, settings, baselines, progress or (lambda msg: log.info("%s", msg)))
    report: dict[str, Any] = {"meta": ev.meta(list(variants))}
    report["clean"] = ev.clean()
    report["curves"] = ev.curves(cam_fn)
    report["pasted"], report["detection"] = ev.pasted(report["clean"]["flagged_patch_fraction"])
    report["reconstruction"] = ev.reconstruction()
    report["ablation"] = ev.ablation(variants)
    report["meta"]["seconds"] = round(time.time() - t0, 1)
    return report


def outside_eval_subset(labels: np.ndarray, eval_images: int, seed: int) -> np.ndarray:
    """FER+ valid labels (N,) (-1 = unlabelled) -> indices (M,) of the labelled faces that ``load_eval_data``'s seeded
    subset of ``eval_images`` leaves out, in order: faces for checks that ``make eval`` does not select on."""
    from ofer_live.training.data.sources import subsample

    labelled = np.flatnonzero(np.asarray(labels) >= 0)
    in_eval = set(subsample(labelled, eval_images or None, seed).tolist())
    return np.array([i for i in labelled if i not in in_eval], dtype=np.int64)


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
