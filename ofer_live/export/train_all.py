"""Train the three Latent-OFER models one after another and export them: ``ofer-live train all`` (and
``scripts/train_all.sh``, ``make train-all``).

Order (each stage feeds the next, as in the paper):

1. ``occlusion``: ViT-SVDD detector;
2. ``expression_stage1``: the FER net on occluded faces without the reconstructor (it becomes the frozen
   semantic-consistency teacher of stage 3);
3. ``reconstructor``: hybrid ViT + CNN, L_sc through the stage-2 FER net;
4. ``expression``: the FER net fine-tuned from stage 2 through the frozen reconstructor, with the masks the
   stage-1 detector predicts (what it gets at run time).

Then the three models are exported into ``<out>/exported_models`` with the parity check, and
``<out>/summary.json`` records each stage's status, epochs, best metric and minutes. Every stage resumes: run the
same command again after an interruption and finished stages are skipped. Nothing is read but the repository and
``--data`` (a data pack or a ../shared/data-style folder): no network.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ofer_live.export.bundle import export_runs
from ofer_live.training.presets import apply_overrides, load_toml, resolve_config
from ofer_live.training.trainers import run_training

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("occlusion", "expression_stage1", "reconstructor", "expression")
SUMMARY = "summary.json"


def _stage_overrides(stage: str, out: Path) -> tuple[str, dict[str, Any]]:
    """-> (model kind, overrides that wire the stage to the earlier ones)."""
    if stage == "expression_stage1":
        return "expression", {}
    if stage == "reconstructor":
        return "reconstructor", {"task": {"sc_teacher": str(out / "expression_stage1")}}
    if stage == "expression":
        return "expression", {
            "run": {"init_from": str(out / "expression_stage1")},
            "task": {
                "reconstructor": str(out / "reconstructor"),
                "mask_source": "occlusion",
                "occlusion": str(out / "occlusion"),
            },
        }
    return stage, {}


def _merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for section, values in layer.items():
            if isinstance(values, Mapping):
                merged.setdefault(section, {}).update(values)
            else:
                merged[section] = values
    return merged


def train_all(
    data: str,
    out: Path,
    *,
    preset: str = "default",
    common: Mapping[str, Any] | None = None,
    stage_configs: Mapping[str, Path] | None = None,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Run the four stages into ``out/<stage>`` and export into ``out/exported_models``; returns the summary.

    ``common``: overrides for every stage (e.g. {"run": {"device": "cuda", "precision": "bf16"}});
    ``stage_configs``: an optional TOML file per stage name; ``max_minutes``: a budget per stage.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"preset": preset, "data": str(data), "stages": {}}
    base = _merge({"data": {"data_root": str(data)}}, common or {})
    for stage in STAGES:
        kind, wiring = _stage_overrides(stage, out)
        config = resolve_config(kind, preset)
        if stage_configs and stage in stage_configs:
            config = apply_overrides(config, load_toml(stage_configs[stage]))
        config = apply_overrides(config, _merge(base, wiring))
        t0 = time.time()
        log.info("train all: stage %s (%s)", stage, kind)
        result = run_training(config, out / stage, resume=True, max_minutes=max_minutes)
        summary["stages"][stage] = {
            "status": result.status,
            "epochs": result.epoch,
            "steps": result.global_step,
            "best_metric": result.best_metric,
            "select_metric": config.task.select_metric,
            "best_epoch": result.best_epoch,
            "minutes": round((time.time() - t0) / 60, 2),
        }
        _write_summary(out, summary)
        if result.status in ("interrupted", "time_budget"):
            summary["exported"] = None
            summary["note"] = f"stage {stage} stopped early ({result.status}); run the same command to continue"
            _write_summary(out, summary)
            return summary
    exported = export_runs([out / "occlusion", out / "reconstructor", out / "expression"], out / "exported_models")
    summary["exported"] = {name: {"file": entry["file"], "parity": entry["parity"]} for name, entry in exported.items()}
    _write_summary(out, summary)
    return summary


def _write_summary(out: Path, summary: Mapping[str, Any]) -> None:
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
