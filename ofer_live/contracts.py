"""The ONNX model contract: I/O names, metadata schema, class labels and validation.

This module is the single source of truth shared by training/export (which writes models)
and runtime (which loads them). It imports nothing but the standard library.

Tensors (N is a dynamic batch axis, S the face size, G the patch grid, D the latent size):

- occlusion.onnx: face uint8 (N,S,S,3) -> patch_score float32 (N,G,G)
- reconstructor.onnx: face uint8 (N,S,S,3), mask float32 (N,G,G)
  -> reconstruction uint8 (N,S,S,3), latents float32 (N,G*G,D)
- expression.onnx: face uint8 (N,S,S,3), latents float32 (N,G*G,D)
  -> logits float32 (N,7), cam float32 (N,G,G) in [0,1]

Faces are RGB (not BGR). Each file stores a JSON object under the ONNX metadata key
``METADATA_KEY`` with the fields in ``REQUIRED_METADATA_FIELDS``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ofer_live.errors import ModelError

SCHEMA_VERSION = 1
METADATA_KEY = "ofer_live"
MANIFEST_NAME = "manifest.json"

# FER2013 class order, used everywhere (datasets, models, outputs).
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(LABELS)

OCCLUSION = "occlusion"
RECONSTRUCTOR = "reconstructor"
EXPRESSION = "expression"
MODEL_NAMES: tuple[str, ...] = (OCCLUSION, RECONSTRUCTOR, EXPRESSION)
MODEL_FILES: dict[str, str] = {name: f"{name}.onnx" for name in MODEL_NAMES}


def variant_file_name(file: str, precision: str) -> str:
    """The file of a model's precision variant: ('occlusion.onnx', 'int8') -> 'occlusion.int8.onnx'."""
    stem = file[: -len(".onnx")] if file.endswith(".onnx") else file
    return f"{stem}.{precision}.onnx"


# I/O tensor names.
FACE = "face"
MASK = "mask"
PATCH_SCORE = "patch_score"
RECONSTRUCTION = "reconstruction"
LATENTS = "latents"
LOGITS = "logits"
CAM = "cam"


@dataclass(frozen=True)
class TensorSpec:
    """One ONNX input or output. ``shape`` uses symbols: N (batch), S, G, GG (=G*G), D, C (=7)."""

    name: str
    dtype: str  # numpy dtype name: "uint8" or "float32"
    shape: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


_FACE_SPEC = TensorSpec(FACE, "uint8", ("N", "S", "S", "3"))
_LATENTS_SPEC = TensorSpec(LATENTS, "float32", ("N", "GG", "D"))

MODEL_SPECS: dict[str, ModelSpec] = {
    OCCLUSION: ModelSpec(
        OCCLUSION,
        inputs=(_FACE_SPEC,),
        outputs=(TensorSpec(PATCH_SCORE, "float32", ("N", "G", "G")),),
    ),
    RECONSTRUCTOR: ModelSpec(
        RECONSTRUCTOR,
        inputs=(_FACE_SPEC, TensorSpec(MASK, "float32", ("N", "G", "G"))),
        outputs=(TensorSpec(RECONSTRUCTION, "uint8", ("N", "S", "S", "3")), _LATENTS_SPEC),
    ),
    EXPRESSION: ModelSpec(
        EXPRESSION,
        inputs=(_FACE_SPEC, _LATENTS_SPEC),
        outputs=(TensorSpec(LOGITS, "float32", ("N", "C")), TensorSpec(CAM, "float32", ("N", "G", "G"))),
    ),
}

REQUIRED_METADATA_FIELDS: tuple[str, ...] = (
    "schema",
    "model",
    "face_size",
    "patch_grid",
    "latent_dim",
    "labels",
    "threshold",
    "trained_on",
    "metrics",
    "git_sha",
)


class ContractError(ModelError):
    """A model file does not follow the contract. The message names the file and the field."""


def make_metadata(
    model: str,
    *,
    face_size: int,
    patch_grid: int,
    latent_dim: int,
    threshold: float = 1.0,
    trained_on: str = "random-init",
    metrics: Mapping[str, Any] | None = None,
    git_sha: str = "unknown",
    **extra: Any,
) -> dict[str, Any]:
    """Build a metadata dict that passes ``validate_metadata``. ``extra`` adds free fields."""
    meta: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "model": model,
        "face_size": int(face_size),
        "patch_grid": int(patch_grid),
        "latent_dim": int(latent_dim),
        "labels": list(LABELS),
        "threshold": float(threshold),
        "trained_on": trained_on,
        "metrics": dict(metrics or {}),
        "git_sha": git_sha,
    }
    meta.update(extra)
    validate_metadata(meta, model, source=f"<{model} metadata>")
    return meta


def parse_metadata(raw: str | None, source: str) -> dict[str, Any]:
    """Parse the JSON string stored under ``METADATA_KEY``; raise ContractError if absent or bad."""
    if raw is None:
        raise ContractError(f"{source}: metadata key '{METADATA_KEY}' is missing")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{source}: metadata '{METADATA_KEY}' is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise ContractError(f"{source}: metadata '{METADATA_KEY}' is not a JSON object")
    return meta


def validate_metadata(meta: Mapping[str, Any], expected_model: str, source: str) -> None:
    """Check the metadata fields; raise ContractError naming ``source`` and the bad field."""
    for field in REQUIRED_METADATA_FIELDS:
        if field not in meta:
            raise ContractError(f"{source}: metadata field '{field}' is missing")
    if meta["schema"] != SCHEMA_VERSION:
        raise ContractError(f"{source}: metadata field 'schema' is {meta['schema']!r}, expected {SCHEMA_VERSION}")
    if meta["model"] != expected_model:
        raise ContractError(f"{source}: metadata field 'model' is {meta['model']!r}, expected {expected_model!r}")
    for field in ("face_size", "patch_grid", "latent_dim"):
        value = meta[field]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ContractError(f"{source}: metadata field '{field}' must be a positive integer, got {value!r}")
    if meta["face_size"] % meta["patch_grid"] != 0:
        raise ContractError(
            f"{source}: metadata field 'patch_grid' ({meta['patch_grid']}) does not divide "
            f"'face_size' ({meta['face_size']})"
        )
    if list(meta["labels"]) != list(LABELS):
        raise ContractError(f"{source}: metadata field 'labels' is {meta['labels']!r}, expected {list(LABELS)!r}")
    threshold = meta["threshold"]
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not threshold > 0:
        raise ContractError(f"{source}: metadata field 'threshold' must be a positive number, got {threshold!r}")
    if not isinstance(meta["metrics"], dict):
        raise ContractError(f"{source}: metadata field 'metrics' must be an object")


def resolve_shape(shape: tuple[str, ...], meta: Mapping[str, Any]) -> tuple[int | None, ...]:
    """Turn a symbolic shape into ints using the metadata; N (batch) stays None."""
    sizes = {
        "N": None,
        "S": meta["face_size"],
        "G": meta["patch_grid"],
        "GG": meta["patch_grid"] ** 2,
        "D": meta["latent_dim"],
        "C": NUM_CLASSES,
    }
    return tuple(sizes[s] if s in sizes else int(s) for s in shape)


def check_io(
    model: str,
    inputs: Mapping[str, tuple[str, tuple[int | str | None, ...]]],
    outputs: Mapping[str, tuple[str, tuple[int | str | None, ...]]],
    meta: Mapping[str, Any],
    source: str,
) -> None:
    """Check a model's I/O against the contract.

    ``inputs``/``outputs`` map tensor name -> (numpy dtype name, shape); a shape entry that is a
    string or None is treated as dynamic. The batch axis must be dynamic; every other axis must
    equal the contract's size. Raises ContractError naming ``source`` and the field.
    """
    spec = MODEL_SPECS[model]
    for kind, expected, actual in (("input", spec.inputs, inputs), ("output", spec.outputs, outputs)):
        expected_names = [t.name for t in expected]
        if sorted(actual) != sorted(expected_names):
            raise ContractError(f"{source}: {kind} names are {sorted(actual)}, expected {sorted(expected_names)}")
        for tensor in expected:
            dtype, shape = actual[tensor.name]
            if dtype != tensor.dtype:
                raise ContractError(f"{source}: {kind} '{tensor.name}' has dtype {dtype}, expected {tensor.dtype}")
            want = resolve_shape(tensor.shape, meta)
            if len(shape) != len(want):
                raise ContractError(f"{source}: {kind} '{tensor.name}' has rank {len(shape)}, expected {len(want)}")
            for axis, (got, exp) in enumerate(zip(shape, want, strict=True)):
                dynamic = got is None or isinstance(got, str)
                if exp is None:
                    if not dynamic:
                        raise ContractError(
                            f"{source}: {kind} '{tensor.name}' axis 0 (batch) is fixed at {got}, expected dynamic"
                        )
                elif not dynamic and got != exp:
                    raise ContractError(f"{source}: {kind} '{tensor.name}' axis {axis} is {got}, expected {exp}")
