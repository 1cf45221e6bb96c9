"""Flags shared by several commands and their translation into config objects."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from ofer_live.config import AppConfig, load_config, override
from ofer_live.errors import UserError


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """--models, --providers, --threads, --config: the flags of every command that runs models."""
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
        help="intra-op threads per ONNX Runtime session (default: onnxruntime's choice)",
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


def config_from_args(args: argparse.Namespace, **pipeline_overrides: object) -> AppConfig:
    """Merge the TOML file (if any) with the runtime flags; flags win."""
    config = load_config(getattr(args, "config", None))
    providers = getattr(args, "providers", None)
    runtime = override(
        config.runtime,
        {
            "models_dir": getattr(args, "models", None),
            "providers": tuple(p.strip() for p in providers.split(",") if p.strip()) if providers else None,
            "intra_op_threads": getattr(args, "threads", None),
        },
    )
    pipeline = override(
        config.pipeline, {"sensitivity": getattr(args, "sensitivity", None), **pipeline_overrides}
    )
    return AppConfig(runtime=runtime, pipeline=pipeline, render=config.render)


def train_extra_installed() -> bool:
    """True when torch (the ``[train]`` extra) can be imported; checks without importing it."""
    return importlib.util.find_spec("torch") is not None


def require_train_extra(what: str) -> None:
    """Raise a one-line UserError naming ``what`` when the ``[train]`` extra is missing."""
    if not train_extra_installed():
        raise UserError(f"{what} needs the train extra: pip install -e '.[train]'")
