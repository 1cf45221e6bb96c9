"""FER net (ResNet-18 + CBAM + CAM-selected ViT latents) on FER+ train with occlusion augmentation.

Each training face is occluded with probability ``task.occlusion_p`` (``synth``: pasted training-kind cut-outs,
procedural shapes, irregular strokes, random patches). With a reconstructor (``task.reconstructor``: a checkpoint,
a run folder, or an exported ``reconstructor.onnx`` run by ONNX Runtime), the face goes through the frozen
reconstructor first, as at run time: the mask is the true occluded patches (coverage >= 0.5, with ``mask_noise``
of the patch labels flipped to mimic detector errors) or the prediction of an occlusion checkpoint or
``occlusion.onnx`` (``mask_source = "occlusion"``); the FER net sees the reconstruction (quantised to uint8, as
exported) and the reconstructor's latents. Without a reconstructor it sees the occluded face and zero latents.

Labels: FER+ majority (``label_mode = "majority"``) or vote distributions (``"soft"``); label smoothing, mixup and
distillation from a frozen teacher (``distill_teacher``: ``teacher:NAME`` or an expression checkpoint) are
optional. Validation: FER+ valid, clean and with 25 % of the face covered by pasted seen-kind cut-outs; selection on
the mean of the two accuracies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ofer_live import contracts
from ofer_live.contracts import NUM_CLASSES
from ofer_live.training.checkpoint import build_model, find_checkpoint, load_checkpoint
from ofer_live.training.data.datasets import AugmentConfig, FaceSource, OccludedFaces
from ofer_live.training.data.occlusion_synth import (
    POSITIVE_COVERAGE,
    OcclusionSynth,
    paste_to_coverage,
    patch_coverage,
    template_layout,
)
from ofer_live.training.losses import expression_loss
from ofer_live.training.metrics import classification_metrics
from ofer_live.training.models import create_model, to_unit_image
from ofer_live.training.models.registry import ModelConfig
from ofer_live.training.models.small_map_conv import use_small_map_convs
from ofer_live.training.presets import TrainConfig
from ofer_live.training.trainers.common import DistInfo, Task, maybe_ddp, unwrap
from ofer_live.training.trainers.fer_nets import load_fer_net
from ofer_live.training.trainers.setup import cache_settings, face_data, occluder_split, resolve_data_root

log = logging.getLogger(__name__)


class _Expression(nn.Module):
    """DDP-friendly forward: (x (N, 3, S, S) in [0, 1], latents (N, G*G, D)) -> (logits (N, 7), cam (N, G, G))."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x, latents)
        return self.model.forward_head(features), features["cam"]


class OnnxReconstructor:
    """A frozen exported reconstructor (``reconstructor.onnx``) run by ONNX Runtime: the exact run-time model.

    Lets the FER net be trained or fine-tuned on a shipped reconstructor whose torch checkpoint is not at hand.
    """

    def __init__(self, path: str, threads: int = 0) -> None:
        from ofer_live.runtime.loader import load_model

        self.model = load_model(contracts.RECONSTRUCTOR, path, intra_op_threads=threads)
        m = self.model
        self.config = ModelConfig(contracts.RECONSTRUCTOR, m.face_size, m.patch_grid, m.latent_dim)

    def __call__(self, face: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """face (N, S, S, 3) uint8, mask (N, G, G) -> (image (N, 3, S, S) in [0, 1], latents (N, G*G, D))."""
        recon, latents = self.model(face.cpu().numpy(), mask.float().cpu().numpy())
        return to_unit_image(torch.from_numpy(recon)).to(face.device), torch.from_numpy(latents).to(face.device)


class OnnxDetector:
    """A frozen exported occlusion detector (``occlusion.onnx``) run by ONNX Runtime: the run-time masks."""

    def __init__(self, path: str, threads: int = 0) -> None:
        from ofer_live.runtime.loader import load_model

        self.model = load_model(contracts.OCCLUSION, path, intra_op_threads=threads)
        self.threshold = self.model.threshold

    def __call__(self, face: torch.Tensor) -> torch.Tensor:
        """face (N, S, S, 3) uint8 -> patch scores (N, G, G), divided by the file's threshold (> 1 = occluded)."""
        return torch.from_numpy(self.model(face.cpu().numpy()) / self.threshold).to(face.device)


def _load_frozen(spec: str, contract: str, device: torch.device) -> nn.Module:
    path = find_checkpoint(spec)
    ckpt = load_checkpoint(path)
    model = build_model(ckpt, str(path)).to(device).eval()
    if model.config.contract != contract:
        raise ValueError(f"{path}: expected a {contract} checkpoint, got {ckpt['model_name']}")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class PastedValidation(torch.utils.data.Dataset):
    """FER+ valid faces with pasted cut-outs covering about ``target`` of the face (fixed seed per item)."""

    def __init__(self, base: OccludedFaces, bank, layout, target: float, seed: int) -> None:
        self.base, self.bank, self.layout, self.target, self.seed = base, bank, layout, target, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        item = dict(self.base[index])
        rng = np.random.default_rng([self.seed, index])
        image, alpha, _ = paste_to_coverage(item["clean"], self.bank, self.layout, rng, self.target)
        item["face"] = image
        item["coverage"] = patch_coverage(alpha, self.base.grid)
        return item


class ExpressionTask(Task):
    def __init__(self, config: TrainConfig, device: torch.device, dist: DistInfo = DistInfo()) -> None:
        super().__init__(config, device, dist)
        run, data, task = config.run, config.data, config.task
        if task.label_mode not in ("majority", "soft"):
            raise ValueError(f"task.label_mode must be majority or soft, got {task.label_mode!r}")
        if task.direct_view and (task.mixup_alpha > 0 or not task.reconstructor):
            raise ValueError("task.direct_view needs task.reconstructor and reads the unmixed face (no mixup_alpha)")
        settings = cache_settings(data)
        self.model = create_model(config.model.name, **dict(config.model.kwargs)).to(device)
        self.channels_last = self.precision == "bf16"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.precision == "bf16" and device.type == "cpu":  # layer4's 3×3 maps: one bf16 matrix product each
            use_small_map_convs(self.model)
        mcfg = unwrap(self.model).config
        self.face_size, self.grid, self.latent_dim = mcfg.face_size, mcfg.patch_grid, mcfg.latent_dim
        occ = occluder_split(data, settings)
        faces = face_data(
            data, settings, self.face_size, run.seed, labelled_only=True, use_utkface=False, val_max=run.val_max_images
        )
        layout = template_layout()
        p = min(max(task.occlusion_p, 0.0), 1.0)
        s = config.synth
        occluded_total = s.cutout + s.procedural + s.irregular + s.random_patches
        scale = p / occluded_total if occluded_total > 0 else 0.0
        import dataclasses

        synth_cfg = dataclasses.replace(
            s,
            clean=1.0 - p,
            cutout=s.cutout * scale,
            procedural=s.procedural * scale,
            irregular=s.irregular * scale,
            random_patches=s.random_patches * scale,
        )
        synth = OcclusionSynth(self.grid, occ.train, layout, synth_cfg)
        self.train_set = OccludedFaces(faces.train, self.face_size, self.grid, synth, AugmentConfig(), seed=run.seed)
        val_sources = [v for v in faces.val if v.labels is not None]
        self.val_clean = OccludedFaces(
            val_sources, self.face_size, self.grid, None, None, seed=run.seed + 31, fixed=True
        )
        self.val_occluded = PastedValidation(self.val_clean, occ.train, layout, task.val_occlusion, run.seed + 32)
        self.reconstructor: nn.Module | OnnxReconstructor | None = None
        if task.reconstructor.endswith(".onnx"):
            self.reconstructor = OnnxReconstructor(task.reconstructor, run.threads)
        elif task.reconstructor:
            self.reconstructor = _load_frozen(task.reconstructor, "reconstructor", device)
        if self.reconstructor is not None:
            rc = self.reconstructor.config
            if (rc.face_size, rc.patch_grid, rc.latent_dim) != (self.face_size, self.grid, self.latent_dim):
                raise ValueError(
                    f"reconstructor {task.reconstructor} has S/G/D {rc.face_size}/{rc.patch_grid}/{rc.latent_dim}, "
                    f"the expression model {self.face_size}/{self.grid}/{self.latent_dim}"
                )
        self.detector = None
        if task.mask_source == "occlusion":
            if not task.occlusion:
                raise ValueError(
                    "task.mask_source = 'occlusion' needs task.occlusion (a checkpoint, a run folder or an .onnx file)"
                )
            if task.occlusion.endswith(".onnx"):
                self.detector = OnnxDetector(task.occlusion, run.threads)
            else:
                self.detector = _load_frozen(task.occlusion, "occlusion", device)
        elif task.mask_source != "truth":
            raise ValueError(f"task.mask_source must be truth or occlusion, got {task.mask_source!r}")
        self.teacher = None
        if task.distill_teacher and task.distill_weight > 0:
            self.teacher = load_fer_net(
                task.distill_teacher, resolve_data_root(data.data_root), device, latent_source=None
            )
        self.class_weights = None
        if task.class_balance:
            self.class_weights = _class_weights(faces.train, task.class_balance_power).to(device)
        self.forward_module = maybe_ddp(_Expression(self.model), dist, device)
        self.optimizers = [self.adamw(unwrap(self.model).parameters())]
        parts = [
            faces.description,
            f"labels: FER+ {task.label_mode}",
            f"occlusion augmentation p={p} ({', '.join(occ.train.kinds)} + procedural)",
        ]
        if task.reconstructor:
            parts.append(f"through reconstructor {task.reconstructor}")
        self.trained_on = "; ".join(parts)
        self.load_initial_weights()

    def recalibrate_batchnorm(self, names: list[str]) -> None:
        """BatchNorms folded into the convolutions of an exported file: real statistics from 8 training batches."""
        if not names:
            return
        from ofer_live.training.onnx_weights import recalibrate_folded_batchnorm

        model = unwrap(self.model)
        bs = self.config.run.batch_size
        rng = np.random.default_rng(self.config.run.seed)
        n = min(len(self.train_set), 8 * bs)
        order = rng.choice(len(self.train_set), size=n, replace=False)

        def run(indices: np.ndarray) -> None:
            items = [self.train_set[int(i)] for i in indices]
            face = torch.from_numpy(np.stack([it["face"] for it in items])).to(self.device)
            cov = torch.from_numpy(np.stack([it["coverage"] for it in items])).to(self.device)
            image, latents, _ = self.prepare_inputs(face, cov)
            model.forward_features(self.to_memory_format(image), latents)

        recalibrate_folded_batchnorm(model, names, run, np.array_split(order, max(1, n // bs)))

    def to_memory_format(self, image: torch.Tensor) -> torch.Tensor:
        """channels_last for the CNN under bf16 (measured faster on CPU and GPU), else unchanged."""
        return image.contiguous(memory_format=torch.channels_last) if self.channels_last else image

    # -- the run-time path: mask -> reconstructor -> FER net ------------------------------------------------------
    @torch.no_grad()
    def prepare_inputs(
        self, face: torch.Tensor, coverage: torch.Tensor, noise: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """face (N, S, S, 3) uint8, coverage (N, G, G) -> (image (N, 3, S, S) in [0, 1], latents (N, G*G, D),
        flagged (N,) bool: the faces with a masked patch, all False without a reconstructor)."""
        x = to_unit_image(face)
        n = x.shape[0]
        if self.reconstructor is None:
            return x, x.new_zeros(n, self.grid * self.grid, self.latent_dim), torch.zeros(n, dtype=torch.bool)
        if self.detector is not None:
            mask = (self.detector(face) > 1.0).float()
        else:
            mask = (coverage >= POSITIVE_COVERAGE - 1e-6).float()
            if noise > 0:
                flip = torch.rand(mask.shape, device=mask.device, generator=generator) < noise
                mask = torch.where(flip, 1.0 - mask, mask)
        flagged = mask.flatten(1).any(dim=1).cpu()
        if isinstance(self.reconstructor, OnnxReconstructor):
            return (*self.reconstructor(face, mask), flagged)
        with self.autocast():
            out = self.reconstructor.forward_features(x, mask)
        image = torch.round(out["output"].float().clamp(0, 1) * 255.0) / 255.0
        return image, out["latents"].float(), flagged

    def logits_of(
        self,
        forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        image: torch.Tensor,
        latents: torch.Tensor,
        face: torch.Tensor,
        flagged: torch.Tensor,
    ) -> torch.Tensor:
        """(reconstruction (N, 3, S, S), latents (N, G*G, D), face (N, S, S, 3) uint8, flagged (N,)) -> logits (N, 7)
        float32; ``forward(x (M, 3, S, S), latents (M, G*G, D)) -> logits (M, 7)`` is the FER net. With
        ``task.direct_view`` the flagged faces are also read as they are, in the same batch, and their two logits
        averaged (``pipeline.frame_pipeline.expression_with_direct_view``)."""
        read_both = flagged if self.config.task.direct_view else torch.zeros_like(flagged)
        extra = torch.nonzero(read_both).flatten().to(image.device)  # the faces read a second time, as they are
        if len(extra):
            image = torch.cat([image, to_unit_image(face)[extra]])
            latents = torch.cat([latents, latents[extra]])
        with self.autocast():
            logits = forward(self.to_memory_format(image), latents)
        logits = logits.float()
        if not len(extra):
            return logits
        n = len(flagged)
        combined = logits[:n].clone()
        combined[extra] = 0.5 * (logits[:n][extra] + logits[n:])
        return combined

    def targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.config.task.label_mode == "soft":
            return batch["soft"]
        return F.one_hot(batch["label"].clamp(min=0), NUM_CLASSES).float()

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        task = self.config.task
        image, latents, flagged = self.prepare_inputs(batch["face"], batch["coverage"], task.mask_noise)
        target = self.targets(batch)
        if task.mixup_alpha > 0:
            lam = float(np.random.beta(task.mixup_alpha, task.mixup_alpha))
            perm = torch.randperm(image.shape[0], device=image.device)
            image = lam * image + (1 - lam) * image[perm]
            latents = lam * latents + (1 - lam) * latents[perm]
            target = lam * target + (1 - lam) * target[perm]
        logits = self.logits_of(lambda x, z: self.forward_module(x, z)[0], image, latents, batch["face"], flagged)
        if self.class_weights is not None:
            log_p = F.log_softmax(logits, dim=1)
            smooth = target * (1 - task.label_smoothing) + task.label_smoothing / NUM_CLASSES
            loss = -(smooth * log_p * self.class_weights).sum(dim=1).mean()
        elif task.label_mode == "majority" and task.mixup_alpha <= 0:
            loss = expression_loss(logits, batch["label"], task.label_smoothing)
        else:
            loss = expression_loss(logits, target, task.label_smoothing)
        values = {}
        if self.teacher is not None:
            with torch.no_grad():
                t_logits = self.teacher(image)
            t = task.distill_temperature
            kd = F.kl_div(F.log_softmax(logits / t, dim=1), F.softmax(t_logits / t, dim=1), reduction="batchmean")
            values["l_distill"] = float(kd.detach())
            loss = (1 - task.distill_weight) * loss + task.distill_weight * kd * t * t
        self.step_optimizer(self.optimizers[0], loss, unwrap(self.model).parameters())
        with torch.no_grad():
            acc = (logits.argmax(1) == target.argmax(1)).float().mean()
        return {"loss": float(loss.detach()), "train_acc": float(acc), **values}

    @torch.no_grad()
    def predict(self, dataset, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (labels (N,), predicted classes (N,)) over the first ``limit`` items."""
        model = unwrap(self.model)
        bs = self.config.run.eval_batch_size
        n = min(limit, len(dataset))
        labels, preds = [], []
        for start in range(0, n, bs):
            items = [dataset[i] for i in range(start, min(n, start + bs))]
            face = torch.from_numpy(np.stack([it["face"] for it in items])).to(self.device)
            cov = torch.from_numpy(np.stack([it["coverage"] for it in items])).to(self.device)
            image, latents, flagged = self.prepare_inputs(face, cov)
            logits = self.logits_of(
                lambda x, z: model.forward_head(model.forward_features(x, z)), image, latents, face, flagged
            )
            preds.append(logits.argmax(1).cpu().numpy())
            labels.append(np.array([int(it["label"]) for it in items]))
        return np.concatenate(labels), np.concatenate(preds)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        limit = self.config.run.val_max_images
        out: dict[str, float] = {}
        for name, dataset in (("clean", self.val_clean), ("occluded", self.val_occluded)):
            labels, preds = self.predict(dataset, limit)
            keep = labels >= 0
            m = classification_metrics(labels[keep], preds[keep])
            out[f"val_{name}_acc"] = m["accuracy"]
            out[f"val_{name}_macro_recall"] = m["macro_recall"]
        out["val_mean_acc"] = (out["val_clean_acc"] + out["val_occluded_acc"]) / 2
        return out


def _class_weights(sources: list[FaceSource], power: float = 1.0) -> torch.Tensor:
    """Majority-label counts over ``sources`` -> weights (7,) proportional to (1 / frequency) ** power, mean 1."""
    counts = np.zeros(NUM_CLASSES)
    for src in sources:
        if src.labels is not None:
            labels = src.labels[src.indices]
            counts += np.bincount(labels[labels >= 0], minlength=NUM_CLASSES)
    weights = (counts.sum() / np.maximum(counts, 1) / NUM_CLASSES) ** power
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)
