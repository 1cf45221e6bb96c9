"""One checkpoint format shared by the training loops and ``ofer-live export``.

A checkpoint is a ``torch.save``d dict that loads with ``weights_only=True``::

    {"format": 1, "model_name": str, "model_kwargs": dict, "state_dict": {str: Tensor},
     "metrics": dict, "trained_on": str, "preset": str, "threshold": float | None (occlusion only),
     "extra": dict}   # anything else a training loop wants for resuming (optimizer state, epoch, ...)

``model_name``/``model_kwargs`` rebuild the module with ``training.models.create_model``.
Writes are atomic (temporary file + rename), so a run killed mid-write never leaves a torn checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ofer_live.errors import ModelError, OutputError

CHECKPOINT_FORMAT = 1
# File names ``find_checkpoint`` looks for in a run directory, in order of preference.
CHECKPOINT_NAMES = ("best.pt", "final.pt", "last.pt", "checkpoint.pt")
REQUIRED_KEYS = ("model_name", "model_kwargs", "state_dict", "metrics", "trained_on", "preset")


def save_checkpoint(
    path: Path,
    model: nn.Module,
    *,
    metrics: Mapping[str, Any] | None = None,
    trained_on: str = "unknown",
    preset: str = "unknown",
    threshold: float | None = None,
    model_name: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s checkpoint to ``path`` atomically and return ``path``.

    ``model_name``/``model_kwargs`` default to what ``create_model`` recorded on the module. ``threshold`` is the
    default patch-score cut of an occlusion model (1.0 when R^2 is calibrated). Tensors are moved to the CPU.
    """
    name = model_name or getattr(model, "model_name", None)
    if not name:
        raise ValueError("model_name is unknown: build the model with create_model() or pass model_name=")
    kwargs = dict(model_kwargs if model_kwargs is not None else getattr(model, "model_kwargs", {}))
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model_name": name,
        "model_kwargs": kwargs,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "metrics": dict(metrics or {}),
        "trained_on": trained_on,
        "preset": preset,
        "threshold": None if threshold is None else float(threshold),
        "extra": dict(extra or {}),
    }
    return _save_atomically(ckpt, path)


def _save_atomically(ckpt: Mapping[str, Any], path: Path) -> Path:
    """torch.save to a temporary file, then rename (a run killed mid-write leaves the old file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dict(ckpt), tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write checkpoint ({exc.strerror or exc})") from None
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; ModelError naming the file and the missing key."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict):
        raise ModelError(f"{path}: checkpoint is not a dict")
    for key in REQUIRED_KEYS:
        if key not in ckpt:
            raise ModelError(f"{path}: checkpoint field '{key}' is missing")
    ckpt.setdefault("threshold", None)
    ckpt.setdefault("extra", {})
    return ckpt


def build_model(ckpt: Mapping[str, Any], source: str = "<checkpoint>") -> nn.Module:
    """Rebuild the module of a loaded checkpoint (``create_model`` + strict ``load_state_dict``), in eval mode."""
    from ofer_live.training.models import create_model

    try:
        model = create_model(ckpt["model_name"], **dict(ckpt["model_kwargs"]))
    except KeyError:
        raise ModelError(f"{source}: unknown model_name {ckpt['model_name']!r}") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{source}: state_dict does not match {ckpt['model_name']} ({first})") from None
    return model.eval()


def find_checkpoint(run: Path) -> Path:
    """A run directory -> its checkpoint (first of ``CHECKPOINT_NAMES``, else the only ``*.pt``); a file -> itself."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.is_dir():
        raise ModelError(f"{run}: run folder not found")
    for name in CHECKPOINT_NAMES:
        if (run / name).is_file():
            return run / name
    found = sorted(run.glob("*.pt"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(f"{run}: no checkpoint ({', '.join(CHECKPOINT_NAMES)}) in the run folder")
    raise ModelError(f"{run}: several checkpoints and none named {', '.join(CHECKPOINT_NAMES)}; pass the file")


def load_weights(spec: str | Path) -> dict[str, Any]:
    """Weights to start a run from (``--init-from``): an exported ``.onnx`` file (its weights recovered by
    ``training.onnx_weights``), a checkpoint file (full or compact) or a run folder -> a checkpoint dict.

    A full checkpoint saved by a run with a weight average (``run.ema_decay``) gives its average, the weights that
    run validated and would export: for ``best.pt`` they are its weights anyway, and ``last.pt`` (the end of a
    schedule) gives the average at its last step rather than the live weights."""
    path = Path(spec)
    if path.suffix.lower() == ".onnx":
        from ofer_live.training.onnx_weights import checkpoint_from_onnx

        return checkpoint_from_onnx(path)
    return with_averaged_weights(load_checkpoint(find_checkpoint(path)))


def with_averaged_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A loaded checkpoint -> the same with its weight average (``extra["ema"]``) as ``state_dict`` when it has one:
    the weights its run validated (``metrics``) and that ``--init-from`` and ``ofer-live export`` take."""
    ema = (ckpt.get("extra") or {}).get("ema")
    if not ema:
        return ckpt
    state = dict(ckpt["state_dict"])
    state.update({k: v.to(state[k].dtype) for k, v in ema["shadow"].items() if k in state})
    return {**ckpt, "state_dict": state}


def save_compact_checkpoint(path: Path, ckpt: Mapping[str, Any]) -> Path:
    """Write the weights of a loaded checkpoint as a compact one (float tensors in fp16, no optimiser or resume
    state) that ``--init-from`` and ``ofer-live export`` read; small enough to commit. Returns ``path``."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    compact = {k: ckpt.get(k) for k in (*REQUIRED_KEYS, "threshold")}
    compact.update(format=CHECKPOINT_FORMAT, state_dict=state, extra={"compact": True})
    return _save_atomically(compact, path)
