"""ViT-SVDD occlusion detector: Deep SVDD centre from clean faces, then Deep SAD with pasted occluders.

1. ``prepare``: ``init_center`` (per-position centres) from ``task.center_images`` clean training faces.
2. Training (Deep SAD, Ruff et al. 2019): each face gets a synthetic occlusion (``synth``: pasted cut-outs of the
   *training* kinds, procedural shapes, irregular strokes and random patches, or none). Patches covered less than
   ``normal_max_coverage`` are normal (pulled to c), patches covered at least ``anomaly_min_coverage`` are
   labelled anomalies (pushed away, ``eta / dist``), the band in between is ignored.
3. Validation: R^2 = the (1 - nu) quantile of the distances of held-out clean patches (FER+ valid faces and
   held-out UTKFace) is stored in the model (``patch_score = dist / R^2``, threshold 1); then patch detection on
   those faces with seen-kind occluders (selection: ``val_seen_f1``) and, for the report only, with held-out kinds.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from ofer_live.errors import UserError
from ofer_live.training.data.datasets import AugmentConfig, OccludedFaces
from ofer_live.training.data.occlusion_synth import OcclusionSynth, SynthConfig, template_layout
from ofer_live.training.losses import deep_sad_loss
from ofer_live.training.metrics import detection_metrics
from ofer_live.training.models import calibrate_radius, create_model, init_center, to_unit_image
from ofer_live.training.models.vit_svdd import calibrate_radius_per_position
from ofer_live.training.presets import TrainConfig
from ofer_live.training.trainers.common import DistInfo, Task, maybe_ddp, unwrap
from ofer_live.training.trainers.setup import cache_settings, face_data, occluder_split

log = logging.getLogger(__name__)


class _Distances(nn.Module):
    """Training forward through DDP: x (N, 3, S, S) in [0, 1] -> squared distances (N, G*G)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.distances(self.model.forward_features(x))


class OcclusionTask(Task):
    def __init__(self, config: TrainConfig, device: torch.device, dist: DistInfo = DistInfo()) -> None:
        super().__init__(config, device, dist)
        run, data = config.run, config.data
        settings = cache_settings(data)
        self.model = create_model(config.model.name, **dict(config.model.kwargs)).to(device)
        mcfg = unwrap(self.model).config
        self.face_size, self.grid = mcfg.face_size, mcfg.patch_grid
        occ = occluder_split(data, settings)
        self.occluders = occ
        faces = face_data(
            data, settings, self.face_size, run.seed, labelled_only=False, use_utkface=True, val_max=run.val_max_images
        )
        self.layout = template_layout()
        synth = OcclusionSynth(self.grid, occ.train, self.layout, config.synth)
        self.train_set = OccludedFaces(faces.train, self.face_size, self.grid, synth, AugmentConfig(), seed=run.seed)
        self.clean_train = OccludedFaces(faces.train, self.face_size, self.grid, None, None, seed=run.seed)
        # Validation: the same held-out faces clean (R^2), with seen kinds (selection) and held-out kinds (report).
        val_cfg = SynthConfig(
            clean=0.0, cutout=0.7, procedural=0.3, irregular=0.0, random_patches=0.0, paste=config.synth.paste
        )
        self.val_clean = OccludedFaces(faces.val, self.face_size, self.grid, None, None, seed=run.seed + 11, fixed=True)
        self.val_seen = OccludedFaces(
            faces.val,
            self.face_size,
            self.grid,
            OcclusionSynth(self.grid, occ.train, self.layout, val_cfg),
            None,
            seed=run.seed + 12,
            fixed=True,
        )
        self.val_heldout = None
        if len(occ.heldout):
            held_cfg = SynthConfig(
                clean=0.0, cutout=1.0, procedural=0.0, irregular=0.0, random_patches=0.0, paste=config.synth.paste
            )
            self.val_heldout = OccludedFaces(
                faces.val,
                self.face_size,
                self.grid,
                OcclusionSynth(self.grid, occ.heldout, self.layout, held_cfg),
                None,
                seed=run.seed + 13,
                fixed=True,
            )
        held = ", ".join(occ.heldout_kinds) or "none"
        self.trained_on = (
            f"{faces.description}; Deep SAD with pasted occluders ({', '.join(occ.train.kinds)}) "
            f"+ procedural shapes; held-out kinds: {held}"
        )
        self.forward_module = maybe_ddp(_Distances(self.model), dist, device)
        self.optimizers = [self.adamw(unwrap(self.model).parameters())]
        self.threshold = 1.0
        if config.task.encoder_init and not run.init_from:
            self._init_encoder(config.task.encoder_init)
        self.load_initial_weights()

    def _init_encoder(self, spec: str) -> None:
        """The ViT encoder from a reconstructor (the paper's detector starts from a pre-trained ViT)."""
        from ofer_live.training.checkpoint import build_model, load_weights

        ckpt = load_weights(spec)
        source = build_model(ckpt, spec)
        if source.config.contract != "reconstructor":
            raise UserError(f"task.encoder_init {spec}: a reconstructor is needed, got {ckpt['model_name']}")
        try:
            unwrap(self.model).load_encoder_from(source.encoder.state_dict())
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"task.encoder_init {spec}: its encoder does not fit this detector ({exc})") from None
        self.trained_on = f"{self.trained_on}; encoder from {spec}"
        log.info("detector encoder initialised from %s", spec)

    # -- set-up --------------------------------------------------------------------------------------------------
    def _batches(self, dataset, limit: int, key: str = "face"):
        """Batches of at most ``limit`` items spread evenly over ``dataset`` (so every source is represented)."""
        bs = self.config.run.eval_batch_size
        n = min(limit, len(dataset))
        order = np.linspace(0, len(dataset) - 1, n).round().astype(int) if n < len(dataset) else np.arange(n)
        for start in range(0, n, bs):
            items = [dataset[int(i)] for i in order[start : start + bs]]
            yield {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in (key, "coverage")}

    def prepare(self) -> None:
        """Deep SVDD: fix the centre(s) c from clean training faces."""
        model = unwrap(self.model)
        if bool(model.center_initialized):  # started from a trained detector (run.init_from): keep its centre
            return
        n = self.config.task.center_images
        stride = max(1, len(self.clean_train) // max(n, 1))
        subset = _Strided(self.clean_train, stride, n)
        init_center(model, (b["face"].to(self.device) for b in self._batches(subset, n)))
        log.info("SVDD centre set from %d clean faces", min(n, len(subset)))

    # -- training ------------------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        task = self.config.task
        x = to_unit_image(batch["face"])
        cov = batch["coverage"].reshape(x.shape[0], -1)
        with self.autocast():
            dist = self.forward_module(x)
        dist = dist.float()
        anomalous = (cov >= task.anomaly_min_coverage).float()
        keep = (cov < task.normal_max_coverage) | (cov >= task.anomaly_min_coverage)
        loss = deep_sad_loss(dist[keep][None], anomalous[keep][None], eta=task.eta)
        self.step_optimizer(self.optimizers[0], loss, unwrap(self.model).parameters())
        with torch.no_grad():
            normal = dist[keep & (anomalous == 0)]
            anom = dist[anomalous > 0]
        return {
            "loss": float(loss.detach()),
            "dist_normal": float(normal.mean()) if normal.numel() else 0.0,
            "dist_anomalous": float(anom.mean()) if anom.numel() else 0.0,
            "anomalous_fraction": float(anomalous.mean()),
        }

    # -- validation ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def distances(self, dataset: OccludedFaces, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """-> (distances (N, G, G), coverage (N, G, G))."""
        model = unwrap(self.model)
        dists, covs = [], []
        for b in self._batches(dataset, limit):
            x = to_unit_image(b["face"].to(self.device))
            with self.autocast():
                d = model.distances(model.forward_features(x))
            dists.append(d.float().reshape(-1, self.grid, self.grid).cpu().numpy())
            covs.append(b["coverage"].numpy())
        return np.concatenate(dists), np.concatenate(covs)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        task = self.config.task
        limit = self.config.run.val_max_images
        model = unwrap(self.model)
        clean, _ = self.distances(self.val_clean, 2 * limit)
        # Alternate faces calibrate R^2 / measure the clean false-positive rate (both data sets in each half).
        calibration, rest = clean[0::2], clean[1::2]
        calibration = calibration[: max(1, task.calibration_images)]
        if model.radius_sq.numel() > 1:  # per-position R^2 (model option per_position_radius)
            per_position = calibrate_radius_per_position(torch.from_numpy(calibration), nu=task.nu)
            model.set_radius(per_position)
            radius = per_position.numpy().reshape(self.grid, self.grid)
            radius_sq = float(per_position.mean())
        else:
            radius_sq = calibrate_radius(torch.from_numpy(calibration), nu=task.nu)
            model.set_radius(radius_sq)
            radius = radius_sq
        out: dict[str, float] = {"radius_sq": radius_sq}
        rest = rest if len(rest) else clean
        out["val_clean_fpr"] = float((rest / radius > 1.0).mean())
        seen_d, seen_c = self.distances(self.val_seen, limit)
        m = detection_metrics(seen_d / radius, seen_c)
        out.update({f"val_seen_{k}": v for k, v in m.items()})
        if self.val_heldout is not None:
            held_d, held_c = self.distances(self.val_heldout, limit)
            m = detection_metrics(held_d / radius, held_c)
            out.update({f"val_heldout_{k}": v for k, v in m.items()})
        # The selection metric: F1 on seen kinds ignoring the partly covered band.
        out["val_seen_f1"] = out["val_seen_strict_f1"]
        return out


class _Strided:
    """Every ``stride``-th item of a dataset, at most ``limit`` items."""

    def __init__(self, dataset, stride: int, limit: int) -> None:
        self.dataset, self.stride = dataset, stride
        self.n = min(limit, (len(dataset) + stride - 1) // stride)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.dataset[i * self.stride]
