"""Trained checkpoints -> a model folder (``exported_models/``-style): the three ONNX files with metadata, the
parity check against torch, and ``manifest.json``. Used by ``ofer-live export`` and by ``train all``."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ofer_live import contracts
from ofer_live.errors import ModelError, UserError
from ofer_live.export.onnx_export import export_model, make_model_metadata, read_metadata, write_manifest
from ofer_live.export.parity import check_parity
from ofer_live.training.checkpoint import build_model, find_checkpoint, load_checkpoint, with_averaged_weights

log = logging.getLogger(__name__)


def parse_model_options(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """["KEY=VALUE", ...] -> {key: value}: values are JSON (true, 3, 0.5, [32, 64]) or else plain strings. A malformed
    item is a one-line UserError naming ``flag``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def ensemble_checkpoint(found: Sequence[tuple[Path, dict[str, Any], Any]]) -> tuple[Path, dict[str, Any], Any]:
    """Several (path, checkpoint, built FER net) -> one (path of the first, checkpoint, ``ExpressionEnsemble``) with
    the members' weights, their sources in ``trained_on`` and their validation metrics under ``members``."""
    from ofer_live.training.models import create_model
    from ofer_live.training.models.expression_ensemble import ENSEMBLE_NAME

    specs = [{"name": ckpt["model_name"], "kwargs": dict(model.model_kwargs)} for _, ckpt, model in found]
    ensemble = create_model(ENSEMBLE_NAME, members=specs)
    for member, (_, _, model) in zip(ensemble.members, found, strict=True):
        member.load_state_dict(model.state_dict())
    state = dict(ensemble.state_dict())
    first_path, first, _ = found[0]
    ckpt = {
        **first,
        "model_name": ENSEMBLE_NAME,
        "model_kwargs": {"members": specs},
        "state_dict": state,
        "trained_on": " + ".join(f"[{path.parent.name or path.name}: {c['trained_on']}]" for path, c, _ in found),
        "metrics": {"members": [dict(c["metrics"]) for _, c, _ in found]},
        "preset": " + ".join(sorted({str(c["preset"]) for _, c, _ in found})),
    }
    return first_path, ckpt, ensemble


def export_runs(
    runs: Sequence[Path], out: Path, opset: int = 17, parity: bool = True, options: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Export one checkpoint per contract model from ``runs`` (run folders or checkpoint files) into ``out``.
    A checkpoint with a weight average exports the average (``with_averaged_weights``). Two or more expression
    checkpoints export as one ensemble (``expression_ensemble``: their logits and CAMs averaged in the graph).

    ``options``: model keyword arguments without weights (e.g. ``flip_average``) set on every model whose
    constructor takes them; an option no model takes is a UserError.

    Models of an earlier export in ``out`` that are not re-exported are kept in the manifest. Returns
    {contract name: {"file", "source", "model_name", "parity"}} for the models exported now.
    """
    loaded = {}
    used: set[str] = set()
    for run_dir in runs:
        path = find_checkpoint(run_dir)
        ckpt = with_averaged_weights(load_checkpoint(path))  # last.pt: the average its run validated
        model = build_model(ckpt, source=str(path))
        takes = set(inspect.signature(type(model).__init__).parameters) - {"self"}
        accepted = {k: v for k, v in (options or {}).items() if k in takes}
        used.update(accepted)
        if accepted:  # rebuilt with the weightless options (same weights)
            ckpt = {**ckpt, "model_kwargs": {**dict(ckpt["model_kwargs"]), **accepted}}
            model = build_model(ckpt, source=str(path))
        name = model.config.contract
        if name in loaded and name != contracts.EXPRESSION:
            raise UserError(f"{path}: a second {name} checkpoint (the first is {loaded[name][0][0]})")
        loaded.setdefault(name, []).append((path, ckpt, model))

    unused = sorted(set(options or {}) - used)
    if unused:
        raise UserError(f"--set {unused[0]}: none of the exported models has this option")
    entries = {}
    manifest_path = out / contracts.MANIFEST_NAME
    if manifest_path.is_file():  # keep the models of an earlier export that are not re-exported now
        try:
            previous = json.loads(manifest_path.read_text()).get("models", {})
        except (OSError, json.JSONDecodeError):
            previous = {}
        for name, entry in previous.items():
            if name in contracts.MODEL_NAMES and name not in loaded and (out / entry.get("file", "")).is_file():
                entries[name] = {k: v for k, v in entry.items() if k != "sha256"}

    exported: dict[str, dict[str, Any]] = {}
    for name, found in loaded.items():
        path, ckpt, model = found[0] if len(found) == 1 else ensemble_checkpoint(found)
        threshold = ckpt.get("threshold") if name == contracts.OCCLUSION else None
        metadata = make_model_metadata(
            model,
            threshold=float(threshold) if threshold else 1.0,
            trained_on=str(ckpt["trained_on"]),
            metrics=ckpt["metrics"],
            preset=str(ckpt["preset"]),
            checkpoint=path.name,
        )
        file = out / contracts.MODEL_FILES[name]
        export_model(model, name, file, metadata, opset=opset)
        worst = check_parity(model, file) if parity else None
        if worst is not None:
            log.info("%s parity: %s", name, worst)
        entries[name] = {
            "file": file.name,
            "preset": str(ckpt["preset"]),
            "trained_on": str(ckpt["trained_on"]),
            "metrics": dict(ckpt["metrics"]),
        }
        source = " + ".join(str(p) for p, _, _ in found)
        exported[name] = {"file": str(file), "source": source, "model_name": ckpt["model_name"], "parity": worst}

    sizes = {name: read_metadata(out / entry["file"]) for name, entry in entries.items()}
    for field in ("face_size", "patch_grid", "latent_dim"):
        values = {name: meta[field] for name, meta in sizes.items()}
        if len(set(values.values())) > 1:
            raise ModelError(f"{out}: the models disagree on {field}: {values}")
    write_manifest(out, entries)
    return exported
