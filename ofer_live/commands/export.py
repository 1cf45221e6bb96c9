"""`ofer-live export`: trained checkpoints -> exported_models/*.onnx + manifest.json, with a parity check."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ofer_live import contracts
from ofer_live.commands.common import require_train_extra
from ofer_live.errors import ModelError, UserError

NAME = "export"
HELP = "export trained checkpoints to ONNX (occlusion/reconstructor/expression) with metadata and manifest.json"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        required=True,
        metavar="RUN",
        help="training run folders (or checkpoint files); each holds one model's checkpoint "
        "(best.pt, final.pt, last.pt or checkpoint.pt)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("exported_models"), metavar="DIR", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or newer (default: %(default)s)")
    parser.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs torch parity check")


def run(args: argparse.Namespace) -> int:
    if args.opset < 17:
        raise UserError(f"--opset must be 17 or newer, got {args.opset}")
    require_train_extra("export")
    from ofer_live.export.onnx_export import export_model, make_model_metadata, read_metadata, write_manifest
    from ofer_live.export.parity import check_parity
    from ofer_live.training.checkpoint import build_model, find_checkpoint, load_checkpoint

    out: Path = args.out
    loaded = {}
    for run_dir in args.runs:
        path = find_checkpoint(run_dir)
        ckpt = load_checkpoint(path)
        model = build_model(ckpt, source=str(path))
        name = model.config.contract
        if name in loaded:
            raise UserError(f"{path}: a second {name} checkpoint (the first is {loaded[name][0]})")
        loaded[name] = (path, ckpt, model)

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

    for name, (path, ckpt, model) in loaded.items():
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
        export_model(model, name, file, metadata, opset=args.opset)
        if not args.no_parity:
            worst = check_parity(model, file)
            log.info("%s parity: %s", name, worst)
        entries[name] = {
            "file": file.name,
            "preset": str(ckpt["preset"]),
            "trained_on": str(ckpt["trained_on"]),
            "metrics": dict(ckpt["metrics"]),
        }
        print(f"{name}: {ckpt['model_name']} from {path} -> {file}")

    sizes = {name: read_metadata(out / entry["file"]) for name, entry in entries.items()}
    for field in ("face_size", "patch_grid", "latent_dim"):
        values = {name: meta[field] for name, meta in sizes.items()}
        if len(set(values.values())) > 1:
            raise ModelError(f"{out}: the models disagree on {field}: {values}")
    write_manifest(out, entries)
    missing = [n for n in contracts.MODEL_NAMES if n not in entries]
    if missing:
        print(f"note: {out} still lacks {', '.join(missing)}; the app needs all three")
    print(f"wrote {out / contracts.MANIFEST_NAME}")
    return 0
