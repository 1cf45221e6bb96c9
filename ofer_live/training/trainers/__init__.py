"""Training loops of the three Latent-OFER models. ``run_training(config, out_dir)`` is the entry point."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ofer_live.training.presets import TrainConfig
from ofer_live.training.trainers.common import (
    FitResult,
    NonFiniteLossError,
    fit,
    resolve_device,
    seed_everything,
    setup_distributed,
)

log = logging.getLogger(__name__)

__all__ = ["FitResult", "NonFiniteLossError", "build_task", "run_training"]


def build_task(config: TrainConfig, device: torch.device, dist=None):
    """The Task of ``config.kind`` (occlusion / reconstructor / expression)."""
    from ofer_live.training.trainers.common import DistInfo

    dist = dist or DistInfo()
    if config.kind == "occlusion":
        from ofer_live.training.trainers.occlusion import OcclusionTask

        return OcclusionTask(config, device, dist)
    if config.kind == "reconstructor":
        from ofer_live.training.trainers.reconstructor import ReconstructorTask

        return ReconstructorTask(config, device, dist)
    if config.kind == "expression":
        from ofer_live.training.trainers.expression import ExpressionTask

        return ExpressionTask(config, device, dist)
    raise ValueError(f"unknown model kind {config.kind!r}")


def run_training(
    config: TrainConfig, out_dir: Path, resume: bool = False, max_minutes: float | None = None
) -> FitResult:
    """Set up threads, device and (under torchrun) DistributedDataParallel, build the task and ``fit`` it."""
    if config.run.threads > 0:
        torch.set_num_threads(config.run.threads)
    dist = setup_distributed(config.run.device)
    device = resolve_device(config.run.device, dist)
    log.info("training %s (%s) on %s, world size %d", config.kind, config.preset, device, dist.world_size)
    seed_everything(config.run.seed)  # same initial weights on every rank and in every rerun
    task = build_task(config, device, dist)
    try:
        return fit(task, Path(out_dir), resume=resume, max_minutes=max_minutes)
    finally:
        if dist.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
