"""torch -> single-file ONNX with the contract's I/O names, a dynamic batch axis, and metadata; manifest writer.

Exporter choice (``training.onnx_weights.trace_to_onnx``, shared with the weight importer): the TorchScript-based
``torch.onnx.export(..., dynamo=False)``. In torch 2.14 it still works,
exports these models in well under a second (the dynamo exporter takes seconds per model, which matters for the
test fixture that exports three models per session), and supports ``dynamic_axes`` directly. Opset 17.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
from torch import nn

from ofer_live import contracts
from ofer_live.errors import OutputError
from ofer_live.runtime.manifest import sha256_file
from ofer_live.training.onnx_weights import BATCH_AXIS, OPSET, example_inputs, trace_to_onnx

__all__ = [
    "BATCH_AXIS",
    "OPSET",
    "example_inputs",
    "export_model",
    "make_model_metadata",
    "read_metadata",
    "sha256_file",
    "write_manifest",
]

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = 1


def git_sha(repo: Path | None = None) -> str:
    """The current commit of the repository holding this file (``"unknown"`` outside git)."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def model_contract(model: nn.Module) -> str:
    """The contract name (occlusion / reconstructor / expression) recorded in ``model.config``."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "contract", None) not in contracts.MODEL_NAMES:
        raise ValueError(f"{type(model).__name__} has no ModelConfig; build it with create_model()")
    return config.contract


def make_model_metadata(
    model: nn.Module,
    *,
    threshold: float = 1.0,
    trained_on: str = "random-init",
    metrics: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Contract metadata for ``model`` (sizes from ``model.config``, git sha of this checkout)."""
    cfg = model.config
    extra.setdefault("architecture", getattr(model, "model_name", type(model).__name__))
    extra.setdefault("model_kwargs", dict(getattr(model, "model_kwargs", {})))  # rebuilds it for --init-from
    return contracts.make_metadata(
        cfg.contract,
        face_size=cfg.face_size,
        patch_grid=cfg.patch_grid,
        latent_dim=cfg.latent_dim,
        threshold=threshold,
        trained_on=trained_on,
        metrics=dict(metrics or {}),
        git_sha=git_sha(),
        **extra,
    )


def onnx_io(model_proto: onnx.ModelProto) -> tuple[dict[str, tuple[str, tuple]], dict[str, tuple[str, tuple]]]:
    """ONNX graph -> (inputs, outputs) as {name: (numpy dtype name, shape)}; symbolic dims are strings/None."""

    def describe(values) -> dict[str, tuple[str, tuple]]:
        out = {}
        for v in values:
            tt = v.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
            out[v.name] = (dtype, shape)
        return out

    initializers = {i.name for i in model_proto.graph.initializer}
    inputs = [v for v in model_proto.graph.input if v.name not in initializers]
    return describe(inputs), describe(model_proto.graph.output)


def export_model(
    model: nn.Module,
    name: str,
    path: Path,
    metadata: Mapping[str, Any],
    *,
    opset: int = OPSET,
    batch: int = 2,
) -> Path:
    """Export ``model`` (contract ``name``) to ``path`` as one self-contained ONNX file and return ``path``.

    Inputs/outputs get the contract names with a dynamic batch axis ``N``; ``metadata`` (from
    :func:`make_model_metadata` or ``contracts.make_metadata``) is stored as JSON under ``contracts.METADATA_KEY``.
    The file is checked with ``onnx.checker`` and ``contracts.check_io`` before returning.
    """
    if name not in contracts.MODEL_NAMES:
        raise ValueError(f"unknown contract model {name!r}")
    if model_contract(model) != name:
        raise ValueError(f"model is a {model_contract(model)!r} model, not {name!r}")
    contracts.validate_metadata(metadata, name, source=f"<{name} metadata>")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {path.parent}: {exc.strerror}") from None
    tmp = path.with_name(path.name + ".partial")  # written, checked, then renamed: no half-written model files
    proto = trace_to_onnx(model, name, opset=opset, batch=batch)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key = contracts.METADATA_KEY
    entry.value = json.dumps(dict(metadata), sort_keys=True)
    proto.producer_name = "ofer_live"
    onnx.checker.check_model(proto)
    inputs, outputs = onnx_io(proto)
    contracts.check_io(name, inputs, outputs, metadata, source=str(path))
    onnx.save_model(proto, str(tmp), save_as_external_data=False)
    os.replace(tmp, path)
    log.info("exported %s -> %s (%.1f MB)", name, path, path.stat().st_size / 1e6)
    return path


def read_metadata(path: Path) -> dict[str, Any]:
    """The parsed ``contracts.METADATA_KEY`` JSON of an ONNX file (ContractError if absent or bad)."""
    proto = onnx.load(str(path), load_external_data=False)
    raw = {p.key: p.value for p in proto.metadata_props}.get(contracts.METADATA_KEY)
    return contracts.parse_metadata(raw, str(path))


def write_manifest(out_dir: Path, entries: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``out_dir/manifest.json`` for the exported files and return its path.

    entries: contract name -> {"file": "<name>.onnx" (optional), "preset": str, "trained_on": str,
    "metrics": dict, ...}; the sha256 of each file is computed here. Format::

        {"schema": 1, "models": {"occlusion": {"file", "sha256", "preset", "trained_on", "metrics"}, ...}}
    """
    out_dir = Path(out_dir)
    models: dict[str, dict[str, Any]] = {}
    for name, entry in entries.items():
        if name not in contracts.MODEL_NAMES:
            raise ValueError(f"unknown contract model {name!r}")
        file = entry.get("file", contracts.MODEL_FILES[name])
        record = {
            "file": file,
            "sha256": sha256_file(out_dir / file),
            "preset": entry.get("preset", "unknown"),
            "trained_on": entry.get("trained_on", "unknown"),
            "metrics": dict(entry.get("metrics", {})),
        }
        record.update({k: v for k, v in entry.items() if k not in record})
        models[name] = record
    path = out_dir / contracts.MANIFEST_NAME
    path.write_text(json.dumps({"schema": MANIFEST_SCHEMA, "models": models}, indent=2, sort_keys=True) + "\n")
    return path
