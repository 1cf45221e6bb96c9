"""`ofer-live train bench` (``make train-bench``): training speed of the three models, fp32 against the chosen
precision, side by side in one run.

Each model's real training task (``build_task``: the same modules, losses and optimiser steps as ``ofer-live
train``) is built on generated faces, so no data set is needed; one batch is drawn once and reused, so the figure
is the train step alone (the data path is logged separately by every run as ``data_wait_fraction``). After
``WARMUP`` untimed steps, ``--steps`` steps are timed; the result is images per second.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

KINDS = ("expression", "occlusion", "reconstructor")
WARMUP = 3
DEFAULT_STEPS = 12
# The batch sizes the shipped training configs use on a CPU.
BATCH = {"expression": 64, "occlusion": 32, "reconstructor": 32}


def time_train_steps(
    kind: str, preset: str, precision: str, data_root: Path, cache_dir: Path, batch: int, steps: int
) -> dict[str, Any]:
    """-> {"precision": resolved, "images_per_s": float, "seconds": float} for ``steps`` timed train steps."""
    from ofer_live.training.presets import resolve_config
    from ofer_live.training.trainers import build_task
    from ofer_live.training.trainers.common import resolve_device

    config = resolve_config(
        kind,
        preset,
        overrides={
            "run": {"precision": precision, "batch_size": batch, "device": "cpu", "val_max_images": 8},
            "data": {"data_root": str(data_root), "cache_dir": str(cache_dir), "align": "none"},
            "task": {"sc_teacher": ""} if kind == "reconstructor" else {},
        },
    )
    device = resolve_device(config.run.device)
    torch.manual_seed(0)
    task = build_task(config, device)
    items = [task.train_set[i % len(task.train_set)] for i in range(batch)]
    sample = {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}
    task.model.train()
    for _ in range(WARMUP):
        task.train_step(sample)
    start = time.perf_counter()
    for _ in range(steps):
        task.train_step(sample)
    seconds = time.perf_counter() - start
    return {
        "precision": task.precision,
        "images_per_s": round(steps * batch / seconds, 1),
        "seconds": round(seconds, 2),
    }


def bench(
    kinds: list[str], preset: str, precision: str, steps: int, batch: int | None, threads: int | None
) -> dict[str, Any]:
    """fp32 and ``precision`` for each of ``kinds`` -> {"threads", "precision", "models": {kind: {...}}}."""
    from ofer_live.training.data.fake import write_fake_data
    from ofer_live.training.trainers.common import cpu_has_bf16

    os.environ.setdefault("TQDM_DISABLE", "1")  # no cache-building progress bars between the figures
    logging.getLogger("ofer_live.training").setLevel(logging.ERROR)  # e.g. "no sc_teacher" for generated data
    if threads:
        torch.set_num_threads(threads)
    report: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "preset": preset,
        "cpu_bf16": cpu_has_bf16(),
        "torch": torch.__version__,
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="ofer_train_bench_") as tmp:
        data_root = write_fake_data(Path(tmp) / "data", n_train=64, n_valid=8, n_utk=64)
        cache_dir = Path(tmp) / "cache"
        for kind in kinds:
            size = batch or BATCH[kind]
            fp32 = time_train_steps(kind, preset, "fp32", data_root, cache_dir, size, steps)
            chosen = time_train_steps(kind, preset, precision, data_root, cache_dir, size, steps)
            report["precision"] = chosen["precision"]
            report["models"][kind] = {
                "batch": size,
                "fp32_images_per_s": fp32["images_per_s"],
                f"{chosen['precision']}_images_per_s": chosen["images_per_s"],
                "ratio": round(chosen["images_per_s"] / fp32["images_per_s"], 2),
            }
    return report
