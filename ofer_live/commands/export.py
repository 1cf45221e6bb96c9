"""`ofer-live export`: trained checkpoints -> exported_models/*.onnx + manifest.json, with a parity check."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ofer_live import contracts
from ofer_live.commands.common import require_train_extra
from ofer_live.errors import UserError

NAME = "export"
HELP = "export trained checkpoints to ONNX (occlusion/reconstructor/expression) with metadata and manifest.json"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        default=[],
        metavar="RUN",
        help="training run folders (or checkpoint files); each holds one model's checkpoint "
        "(best.pt, final.pt, last.pt or checkpoint.pt); two or more FER runs export as one ensemble "
        "(logits and CAMs averaged in the graph); may be left out with --int8",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write int8 variants of the detector and the reconstructor (MatMul weights quantised, "
        "loaded with --precision int8) into --out and its manifest; without --runs, of the models already there",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("exported_models"), metavar="DIR", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or newer (default: %(default)s)")
    parser.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime vs torch parity check")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="options",
        help="a model option without weights, for every exported model that has it (repeatable), "
        "e.g. flip_average=true (the FER net averages the face and its mirror image) or "
        "gray_input=true; values are JSON (true, 3, 0.5) or plain strings",
    )


def run(args: argparse.Namespace) -> int:
    if args.opset < 17:
        raise UserError(f"--opset must be 17 or newer, got {args.opset}")
    require_train_extra("export")
    if not args.runs and not args.int8:
        raise UserError("give --runs (what to export), --int8 (quantise the models in --out), or both")
    out: Path = args.out
    if args.runs:
        _export(args, out)
    if args.int8:
        from ofer_live.export.quantize import QUANTIZED_MODELS, add_int8_variants

        for name, entry in add_int8_variants(out, QUANTIZED_MODELS).items():
            print(f"{name}: int8 variant -> {entry['file']}")
        print(f"wrote {out / contracts.MANIFEST_NAME}")
    return 0


def _export(args: argparse.Namespace, out: Path) -> None:
    from ofer_live.export.bundle import export_runs, parse_model_options
    from ofer_live.export.quantize import QUANTIZED_MODELS

    options = parse_model_options(args.options)
    exported = export_runs(args.runs, out, opset=args.opset, parity=not args.no_parity, options=options)
    for name, entry in exported.items():
        print(f"{name}: {entry['model_name']} from {entry['source']} -> {entry['file']}")
    with open(out / contracts.MANIFEST_NAME, encoding="utf-8") as handle:
        present = json.load(handle)["models"]
    missing = [n for n in contracts.MODEL_NAMES if n not in present]
    if missing:
        print(f"note: {out} still lacks {', '.join(missing)}; the app needs all three")
    stale = [n for n in exported if n in QUANTIZED_MODELS and "int8" not in present.get(n, {})]
    if (
        stale
        and not args.int8
        and any((out / contracts.variant_file_name(f"{n}.onnx", "int8")).exists() for n in stale)
    ):
        print(f"note: the int8 variants of {', '.join(stale)} were dropped; rerun with --int8 to rebuild them")
    print(f"wrote {out / contracts.MANIFEST_NAME}")
