"""Load and check the three exported models (occlusion, reconstructor, expression).

For each file, in order: the manifest entry exists, the file exists, its sha256 matches the manifest,
ONNX Runtime can load it, its ``ofer_live`` metadata is valid, its I/O names/dtypes/shapes follow the
contract. Then the three models must agree on face_size / patch_grid / latent_dim. Every failure is a
one-line ModelError (ContractError for contract problems) naming the file and the field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofer_live import contracts as C
from ofer_live.config import RuntimeConfig
from ofer_live.errors import ModelError
from ofer_live.runtime.manifest import (
    manifest_entry,
    read_manifest,
    sha256_bytes,
    sha256_file,
    variant_entry,
    verify_checksum,
)
from ofer_live.runtime.models import (
    MODEL_CLASSES,
    ExpressionModel,
    OcclusionModel,
    OnnxModel,
    ReconstructorModel,
)
from ofer_live.runtime.providers import CPU, create_session, parse_provider, select_providers

log = logging.getLogger(__name__)

_ORT_DTYPES = {"float": "float32", "double": "float64", "float16": "float16"}
_SHARED_FIELDS = ("face_size", "patch_grid", "latent_dim")


def _numpy_dtype(ort_type: str) -> str:
    """'tensor(uint8)' -> 'uint8', 'tensor(float)' -> 'float32'."""
    inner = ort_type[len("tensor(") : -1] if ort_type.startswith("tensor(") else ort_type
    return _ORT_DTYPES.get(inner, inner)


def session_io(session: Any) -> tuple[dict[str, tuple[str, tuple]], dict[str, tuple[str, tuple]]]:
    """(inputs, outputs) of an ORT session as ``{name: (numpy dtype name, shape)}`` for contracts.check_io."""

    def describe(args: list) -> dict[str, tuple[str, tuple]]:
        return {a.name: (_numpy_dtype(a.type), tuple(a.shape)) for a in args}

    return describe(session.get_inputs()), describe(session.get_outputs())


def load_model(
    name: str,
    path: str | Path,
    providers: list[str] | tuple[str, ...] = ("CPUExecutionProvider",),
    intra_op_threads: int = 0,
    entry: dict[str, Any] | None = None,
    manifest_field: str | None = None,
) -> OnnxModel:
    """Load one model file and check it against the contract (and against ``entry['sha256']`` if given).

    name: one of contracts.MODEL_NAMES. Returns the matching OnnxModel subclass. ``manifest_field``: where the
    entry sits in the manifest, for messages (default ``name``; e.g. ``occlusion.int8`` for a variant).
    """
    path = Path(path)
    if name not in C.MODEL_SPECS:
        raise ModelError(f"unknown model kind {name!r}; expected one of {', '.join(C.MODEL_NAMES)}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a folder, expected an .onnx file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise ModelError(f"{path}: file is empty")
    digest = verify_checksum(data, entry, manifest_field or name, path) if entry is not None else sha256_bytes(data)
    session = create_session(data, providers, intra_op_threads, source=str(path))
    raw = session.get_modelmeta().custom_metadata_map.get(C.METADATA_KEY)
    meta = C.parse_metadata(raw, str(path))
    C.validate_metadata(meta, name, str(path))
    inputs, outputs = session_io(session)
    C.check_io(name, inputs, outputs, meta, str(path))
    return MODEL_CLASSES[name](session, meta, path, sha256=digest)


@dataclass
class Models:
    """The three loaded models plus what the pipeline needs from their metadata."""

    occlusion: OcclusionModel
    reconstructor: ReconstructorModel
    expression: ExpressionModel
    provider: str  # the provider ONNX Runtime actually used
    models_dir: Path
    providers: list[str] = field(default_factory=list)  # the list sessions were created with
    precisions: dict[str, str] = field(default_factory=dict)  # model name -> "fp32" | "int8", as loaded

    @property
    def precision(self) -> str:
        """What ran, in words: 'fp32', or e.g. 'int8 (occlusion, reconstructor), fp32 (expression)'."""
        kinds = sorted(set(self.precisions.values()) or {"fp32"})
        if len(kinds) == 1:
            return kinds[0]
        return ", ".join(
            f"{p} ({', '.join(n for n in C.MODEL_NAMES if self.precisions.get(n) == p)})" for p in reversed(kinds)
        )

    @property
    def face_size(self) -> int:
        return self.occlusion.face_size

    @property
    def patch_grid(self) -> int:
        return self.occlusion.patch_grid

    @property
    def latent_dim(self) -> int:
        return self.occlusion.latent_dim

    @property
    def threshold(self) -> float:
        """Default patch-score cut from the occlusion model's metadata (score > threshold = occluded)."""
        return self.occlusion.threshold

    def all(self) -> tuple[OnnxModel, OnnxModel, OnnxModel]:
        return (self.occlusion, self.reconstructor, self.expression)

    def close(self) -> None:
        for model in self.all():
            model.close()

    def __enter__(self) -> Models:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _models_dir(config: RuntimeConfig) -> Path:
    models_dir = Path(config.models_dir)
    if not models_dir.exists():
        raise ModelError(f"{models_dir}: models folder not found (use --models DIR)")
    if not models_dir.is_dir():
        raise ModelError(f"{models_dir}: not a folder (--models expects the folder holding the .onnx files)")
    return models_dir


def _disagreement(models: list[OnnxModel]) -> tuple[OnnxModel, str] | None:
    first = models[0]
    for model in models[1:]:
        for name in _SHARED_FIELDS:
            if model.metadata[name] != first.metadata[name]:
                return model, (
                    f"{model.path}: metadata field '{name}' is {model.metadata[name]}, but {first.path.name} "
                    f"has {first.metadata[name]}; the three models must agree"
                )
    return None


def check_agreement(models: list[OnnxModel]) -> None:
    """The models must share face_size, patch_grid and latent_dim; ContractError naming the odd one."""
    problem = _disagreement(models)
    if problem is not None:
        raise C.ContractError(problem[1])


def _model_file(
    name: str, models_dir: Path, entry: dict[str, Any] | None, precision: str
) -> tuple[str, dict[str, Any] | None, str, str]:
    """The file to load for ``name`` at ``precision`` -> (file name, the manifest record to check it against (None
    without a manifest), its manifest field, the precision it has). A model without that variant loads fp32."""
    fp32 = entry.get("file", C.MODEL_FILES[name]) if entry is not None else C.MODEL_FILES[name]
    if precision == "fp32":
        return fp32, entry, name, "fp32"
    if entry is not None:
        variant = variant_entry(entry, name, precision, models_dir)
        if variant is not None:
            return variant["file"], variant, f"{name}.{precision}", precision
        return fp32, entry, name, "fp32"
    candidate = C.variant_file_name(fp32, precision)  # no manifest (checksums off): the file by its name
    if (models_dir / candidate).is_file():
        return candidate, None, name, precision
    return fp32, None, name, "fp32"


def resolve_precision(precision: str, providers: list[str]) -> str:
    """RuntimeConfig.precision -> "fp32" or "int8": "auto" is int8 when the first provider is the CPU's (the int8
    variants quantise MatMuls for the CPU's integer units), fp32 on a GPU provider."""
    if precision != "auto":
        return precision
    first = parse_provider(providers[0])[0] if providers else CPU
    return "int8" if first == CPU else "fp32"


def load_models(config: RuntimeConfig) -> Models:
    """Load occlusion, reconstructor and expression from ``config.models_dir`` (see module docstring)."""
    models_dir = _models_dir(config)
    manifest = read_manifest(models_dir) if config.verify_checksums else None
    providers = select_providers(config.providers)
    loaded: list[OnnxModel] = []
    precisions: dict[str, str] = {}
    threads = config.session_threads()
    precision = resolve_precision(config.precision, providers)
    for name in C.MODEL_NAMES:
        entry = manifest_entry(manifest, name, models_dir) if manifest is not None else None
        file, checked, field, precisions[name] = _model_file(name, models_dir, entry, precision)
        loaded.append(load_model(name, models_dir / file, providers, threads, checked, field))
    check_agreement(loaded)
    used = {m.provider for m in loaded}
    provider = loaded[0].provider
    if len(used) > 1:
        log.warning("models run on different providers: %s", ", ".join(sorted(used)))
    log.debug("loaded models from %s on %s (requested %s)", models_dir, provider, providers)
    occlusion, reconstructor, expression = loaded
    return Models(
        occlusion=occlusion,  # type: ignore[arg-type]
        reconstructor=reconstructor,  # type: ignore[arg-type]
        expression=expression,  # type: ignore[arg-type]
        provider=provider,
        models_dir=models_dir,
        providers=list(providers),
        precisions=precisions,
    )


@dataclass
class ModelCheck:
    """The result of checking one model file (for ``ofer-live doctor``)."""

    name: str
    path: Path
    ok: bool
    sha256: str | None = None
    size_bytes: int | None = None
    error: str | None = None
    metadata: dict[str, Any] | None = None


def check_models(models_dir: str | Path, verify_checksums: bool = True) -> tuple[str | None, list[ModelCheck]]:
    """Check every model file without stopping at the first problem.

    Returns (manifest error or None, one ModelCheck per model). Sessions are CPU-only and closed again.
    A disagreement between the models is reported on the model that disagrees.
    """
    models_dir = Path(models_dir)
    manifest, manifest_error = None, None
    if verify_checksums:
        try:
            manifest = read_manifest(models_dir)
        except ModelError as exc:
            manifest_error = str(exc)
    checks: list[ModelCheck] = []
    loaded: list[OnnxModel] = []
    for name in C.MODEL_NAMES:
        path = models_dir / C.MODEL_FILES[name]
        check = ModelCheck(name, path, ok=False)
        try:
            entry = None
            if manifest is not None:
                entry = manifest_entry(manifest, name, models_dir)
                path = check.path = models_dir / entry.get("file", C.MODEL_FILES[name])
            if path.is_file():
                check.size_bytes = path.stat().st_size
                check.sha256 = sha256_file(path)
            model = load_model(name, path, ["CPUExecutionProvider"], 1, entry)
            check.sha256, check.metadata = model.sha256, model.metadata
            if manifest_error is not None:
                check.error = "not verified: manifest unusable"
            else:
                check.ok = True
            loaded.append(model)
        except ModelError as exc:
            check.error = str(exc)
        checks.append(check)
    problem = _disagreement(loaded) if len(loaded) > 1 else None
    if problem is not None:
        for check in checks:
            if check.path == problem[0].path:
                check.ok, check.error = False, problem[1]
    for model in loaded:
        model.close()
    return manifest_error, checks
