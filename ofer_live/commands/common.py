"""Flags shared by several commands and their translation into config objects."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ofer_live.config import RUNTIME_PRECISIONS, AppConfig, layered, load_config, override
from ofer_live.errors import UserError


def add_runtime_arguments(parser: argparse.ArgumentParser, *, frame_stream: bool = False) -> None:
    """--models, --providers, --threads, --config: the flags of every command that runs models.

    frame_stream: the command processes a stream of frames (gui, video, bench) and takes --frames-in-flight; the
    other commands process one frame or batch at a time (``config_from_args`` sets frames_in_flight to 1)."""
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with occlusion.onnx, reconstructor.onnx, expression.onnx and manifest.json "
        "(default: the shipped exported_models/)",
    )
    parser.add_argument(
        "--providers",
        default=None,
        metavar="LIST",
        help="comma-separated ONNX Runtime providers in order of preference, e.g. "
        "CUDAExecutionProvider,CPUExecutionProvider (default: CUDA if it really works, else CPU)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="intra-op threads per ONNX Runtime session (default: onnxruntime's choice; with several frames in "
        "flight, the cores are split between them)",
    )
    if frame_stream:
        parser.add_argument(
            "--frames-in-flight",
            type=int,
            default=None,
            metavar="N",
            help="frames analysed at once, each on its own core (results stay in frame order); 1 = one at a time "
            "(default: 2 on a machine with two or more cores, else 1)",
        )
    parser.add_argument(
        "--precision",
        choices=RUNTIME_PRECISIONS,
        default=None,
        help="fp32: the models as exported; int8: the detector's and the reconstructor's int8 variants where the "
        "models folder has them (faster on CPU, as accurate: see the README's model card); auto: int8 on the CPU, "
        "fp32 on a GPU (default: auto)",
    )
    parser.add_argument(
        "--sensitivity",
        type=float,
        default=None,
        metavar="X",
        help="occlusion sensitivity: a patch counts as occluded when its score > threshold / X (default 1.0)",
    )
    parser.add_argument(
        "--config", type=Path, default=None, metavar="TOML", help="settings file with [runtime], [pipeline], [render]"
    )


def parse_size(
    text: str, flag: str = "--size", smallest: int = 16, largest: int = 7680, even: bool = False
) -> tuple[int, int]:
    """'WxH' (or 'W*H') -> (W, H); a one-line UserError naming ``flag`` for anything else, or sides outside
    ``smallest``..``largest`` (odd sides too when ``even``: virtual cameras and some encoders need even sizes)."""
    try:
        w, h = (int(v) for v in text.lower().replace("*", "x").split("x"))
    except ValueError:
        raise UserError(f"bad {flag} {text!r}: use WIDTHxHEIGHT, e.g. 640x480") from None
    if not (smallest <= w <= largest and smallest <= h <= largest):
        raise UserError(f"bad {flag} {text!r}: width and height must be between {smallest} and {largest}")
    if even and (w % 2 or h % 2):
        raise UserError(f"bad {flag} {text!r}: width and height must be even")
    return w, h


def add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    """--camera-size, --camera-fps: what to ask of a camera source (the driver may give something else)."""
    parser.add_argument(
        "--camera-size",
        default=None,
        metavar="WxH",
        help="ask cameras for this frame size, e.g. 1280x720 (the status bar / summary shows what "
        "the driver really gives)",
    )
    parser.add_argument(
        "--camera-fps",
        type=float,
        default=None,
        metavar="F",
        help="ask cameras for this frame rate (default: the driver's)",
    )


def camera_options(args: argparse.Namespace) -> dict:
    """The camera flags -> {"camera_size": (w, h) | None, "camera_fps": float | None}; UserError when invalid."""
    size = getattr(args, "camera_size", None)
    fps = getattr(args, "camera_fps", None)
    if fps is not None and not 0 < fps <= 240:
        raise UserError(f"--camera-fps must be between 0 and 240, got {fps:g}")
    return {"camera_size": parse_size(size, "--camera-size") if size else None, "camera_fps": fps}


def pipeline_flags(args: argparse.Namespace) -> dict[str, object]:
    """The pipeline settings given on the command line ({field: value}; None = not given)."""
    return {"sensitivity": getattr(args, "sensitivity", None)}


def config_from_args(args: argparse.Namespace, **pipeline_overrides: object) -> AppConfig:
    """Merge the TOML file (if any) with the runtime flags; flags win (``config.layered``)."""
    config = load_config(getattr(args, "config", None))
    providers = getattr(args, "providers", None)
    runtime = override(
        config.runtime,
        {
            "models_dir": getattr(args, "models", None),
            "providers": tuple(p.strip() for p in providers.split(",") if p.strip()) if providers else None,
            "intra_op_threads": getattr(args, "threads", None),
            "precision": getattr(args, "precision", None),
            # commands without --frames-in-flight process one frame or batch at a time
            "frames_in_flight": getattr(args, "frames_in_flight", 1),
        },
    )
    pipeline = layered(config.pipeline, pipeline_flags(args), pipeline_overrides)
    return AppConfig(runtime=runtime, pipeline=pipeline, render=config.render)


def shown_path(path: str | Path) -> str:
    """``path`` as a report shows it: relative to the working directory when it lies under it (so a committed
    report does not carry this machine's folders), else absolute."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def train_extra_installed() -> bool:
    """True when torch (the ``[train]`` extra) can be imported; checks without importing it."""
    return importlib.util.find_spec("torch") is not None


def require_train_extra(what: str) -> None:
    """Raise a one-line UserError naming ``what`` when the ``[train]`` extra is missing."""
    if not train_extra_installed():
        raise UserError(f"{what} needs the train extra: pip install -e '.[train]'")
