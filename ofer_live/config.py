"""Frozen settings dataclasses, loadable from TOML and overridden by CLI flags.

No config framework: ``load_config(path)`` reads a TOML file with optional tables
``[runtime]``, ``[pipeline]`` and ``[render]`` whose keys are the dataclass fields.

- Every dataclass checks its own fields on construction (``__post_init__``): a bad value from a TOML file, a flag,
  the saved GUI settings or code is a one-line ``UserError`` that names the field. No caller range-checks again.
- ``layered(defaults, *layers)`` is the one precedence rule: defaults < TOML file < saved GUI settings <
  command-line flags, a later layer's non-None value winning.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ofer_live.errors import UserError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"
# Shipped models live at the repository root, beside the package (see README, design section).
DEFAULT_MODELS_DIR = PACKAGE_DIR.parent / "exported_models"


def _check(obj: object, name: str, ok: bool, rule: str) -> None:
    """Raise the one-line UserError for field ``name`` of ``obj`` unless ``ok``."""
    if not ok:
        raise UserError(f"{type(obj).__name__}.{name} {rule}, got {getattr(obj, name)!r}")


def _cores(cpu_count: int | None) -> int:
    """cpu_count, or this machine's logical cores when None."""
    return cpu_count if cpu_count is not None else os.cpu_count() or 1


PRECISIONS: tuple[str, ...] = ("fp32", "int8")
# RuntimeConfig.precision also takes "auto": int8 on the CPU provider, fp32 on a GPU provider.
RUNTIME_PRECISIONS: tuple[str, ...] = ("auto", *PRECISIONS)


@dataclass(frozen=True)
class RuntimeConfig:
    """How the ONNX models are loaded and run."""

    models_dir: Path = DEFAULT_MODELS_DIR
    providers: tuple[str, ...] | None = None  # None = best available (CUDA if it really works, else CPU)
    intra_op_threads: int = 0  # 0 = onnxruntime's default
    verify_checksums: bool = True
    # "int8": the detector's and the reconstructor's int8 variants where the models folder has them (MatMul weights
    # quantised; see export/quantize.py); "fp32": the files as exported; "auto": int8 when the models run on the CPU
    # provider (as accurate in `make eval`, and faster: README model card), fp32 on a GPU provider
    precision: str = "auto"
    # Frames processed at once (pipeline.frame_stream): 0 = automatic, 2 with two or more cores, else 1. With more
    # than one, the automatic intra_op_threads splits the cores between them.
    frames_in_flight: int = 0

    def __post_init__(self) -> None:
        _check(self, "intra_op_threads", self.intra_op_threads >= 0, "must be 0 (onnxruntime's default) or more")
        _check(
            self, "precision", self.precision in RUNTIME_PRECISIONS, f"must be one of {', '.join(RUNTIME_PRECISIONS)}"
        )
        _check(self, "frames_in_flight", 0 <= self.frames_in_flight <= 8, "must be between 0 (automatic) and 8")

    def resolved_frames_in_flight(self, cpu_count: int | None = None) -> int:
        """frames_in_flight, with 0 (automatic) resolved: 2 with two or more cores, else 1. cpu_count: None = this
        machine's."""
        if self.frames_in_flight:
            return self.frames_in_flight
        return 2 if _cores(cpu_count) >= 2 else 1

    def session_threads(self, cpu_count: int | None = None) -> int:
        """Intra-op threads per ONNX Runtime session: intra_op_threads when set; else, with several frames in
        process at once, the cores split between them; else 0 (onnxruntime's default)."""
        if self.intra_op_threads:
            return self.intra_op_threads
        in_flight = self.resolved_frames_in_flight(cpu_count)
        return max(1, _cores(cpu_count) // in_flight) if in_flight > 1 else 0


@dataclass(frozen=True)
class PipelineConfig:
    """Per-frame processing settings."""

    sensitivity: float = 1.0  # scales occlusion: patch is occluded when score > threshold / sensitivity
    smoothing: bool = False  # per-track EMA of probabilities (off for still images)
    smoothing_alpha: float = 0.4  # weight of the newest frame in the EMA
    min_face_px: int = 40  # faces smaller than this (box side) are reported and skipped
    max_faces: int = 8
    detection_confidence: float = 0.5
    use_reconstruction: bool = True  # False feeds the aligned face straight to the FER net (ablation)
    # True: for a face with flagged patches, the FER net also reads the face as it is, and the two logits are
    # averaged (an extra FER pass only for such faces). Measured in `make eval`'s ablation; see README, Design.
    direct_view: bool = True
    # True: all three models see the face's luma (BT.601, as OpenCV's RGB2GRAY), so a colour face and its gray copy
    # get the same result; off by default because the shipped detector, given gray colour-webcam faces, flags
    # 15 % of a clean face (2.6 % in colour). See README, Design.
    gray_faces: bool = False

    def __post_init__(self) -> None:
        _check(self, "sensitivity", math.isfinite(self.sensitivity) and self.sensitivity >= 0, "must be 0 or more")
        _check(self, "smoothing_alpha", 0.0 < self.smoothing_alpha <= 1.0, "must be in (0, 1]")
        _check(self, "min_face_px", self.min_face_px >= 0, "must be 0 or more")
        _check(self, "max_faces", self.max_faces >= 1, "must be 1 or more")
        _check(self, "detection_confidence", 0.0 <= self.detection_confidence <= 1.0, "must be in [0, 1]")


@dataclass(frozen=True)
class RenderOptions:
    """Which overlay elements ``render.draw`` paints."""

    boxes: bool = True
    grid: bool = True
    reconstruction: bool = True
    cam: bool = False
    label: bool = True
    bars: bool = True
    occluded_percent: bool = True
    fps: bool = True
    large_text: bool = False  # presentation mode


@dataclass(frozen=True)
class AppConfig:
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    render: RenderOptions = field(default_factory=RenderOptions)


T = TypeVar("T")


def override(obj: T, values: Mapping[str, Any]) -> T:
    """Return a copy of a frozen dataclass with the non-None ``values`` replaced.

    Unknown keys raise UserError with the key's name.
    """
    names = {f.name for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown setting(s) for {type(obj).__name__}: {', '.join(unknown)}")
    changes = {k: v for k, v in values.items() if v is not None}
    if "models_dir" in changes:
        changes["models_dir"] = Path(changes["models_dir"])
    if "providers" in changes and changes["providers"] is not None:
        changes["providers"] = tuple(changes["providers"])
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def layered(defaults: T, *layers: Mapping[str, Any] | None) -> T:
    """The settings in force: ``defaults`` (a frozen dataclass, e.g. from the TOML file) overridden by each layer in
    order -- in the GUI, the saved settings and then the command-line flags. A layer's None values (not given)
    leave the value below in place; None layers are skipped. Pure; the result is validated on construction."""
    out = defaults
    for layer in layers:
        if layer:
            out = override(out, layer)
    return out


def load_config(path: str | Path | None = None) -> AppConfig:
    """Load an AppConfig from a TOML file (or the defaults when ``path`` is None)."""
    config = AppConfig()
    if path is None:
        return config
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"runtime", "pipeline", "render"})
    if unknown:
        raise UserError(f"config file {path}: unknown table(s) {', '.join(unknown)}")
    return AppConfig(
        runtime=override(config.runtime, data.get("runtime", {})),
        pipeline=override(config.pipeline, data.get("pipeline", {})),
        render=override(config.render, data.get("render", {})),
    )
