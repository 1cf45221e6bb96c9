"""What an exported model costs: parameters, GFLOPs (torch's FLOP counter, 2 FLOPs per multiply-add) and ONNX
Runtime CPU latency at batch 1. Used for the README's per-preset table.

    python -m ofer_live.export.cost default      # builds the three default models (random weights) and measures
    python -m ofer_live.export.cost default --expression trunk=vgg8 --expression widths=[32,64,128,256]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ofer_live import contracts
from ofer_live.export.onnx_export import example_inputs, export_model, make_model_metadata

log = logging.getLogger(__name__)

ARCHITECTURES = {
    contracts.OCCLUSION: "vit_svdd",
    contracts.RECONSTRUCTOR: "reconstructor",
    contracts.EXPRESSION: "expression",
}


def model_cost(model: nn.Module) -> dict[str, float]:
    """-> {"params": count, "gflops": forward GFLOPs at batch 1 on contract inputs}."""
    args = example_inputs(model, batch=1)
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args)
    model.train(was_training)
    return {"params": float(sum(p.numel() for p in model.parameters())), "gflops": counter.get_total_flops() / 1e9}


def ort_latency_ms(path: Path, model: nn.Module, threads: int = 2, runs: int = 50, warmup: int = 5) -> dict[str, float]:
    """Batch-1 ONNX Runtime CPU latency of the file at ``path`` -> {"median_ms", "min_ms"} (``threads`` intra-op)."""
    import onnxruntime as ort

    from ofer_live.runtime.providers import session_options

    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    names = [i.name for i in contracts.MODEL_SPECS[model.config.contract].inputs]
    feeds = {n: a.numpy() for n, a in zip(names, example_inputs(model, batch=1), strict=True)}
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times))}


def preset_costs(
    preset: str, threads: int = 2, runs: int = 50, overrides: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Build ``<arch>_<preset>`` for the three models (random weights; ``overrides``: {model name: keyword
    arguments}), export to a temp dir and measure each."""
    from ofer_live.training.models import create_model

    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, arch in ARCHITECTURES.items():
            model = create_model(f"{arch}_{preset}", **(overrides or {}).get(name, {})).eval()
            path = export_model(model, name, Path(tmp) / contracts.MODEL_FILES[name], make_model_metadata(model))
            out[name] = {
                "model": f"{arch}_{preset}",
                **model_cost(model),
                "onnx_mb": path.stat().st_size / 1e6,
                **ort_latency_ms(path, model, threads=threads, runs=runs),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ofer_live.export.cost",
        description="parameters, GFLOPs, ONNX size and ORT CPU latency (batch 1) of the three models of a preset, "
        "built with random weights (the cost does not depend on the weights); prints a Markdown table",
    )
    parser.add_argument(
        "preset",
        nargs="?",
        default="default",
        choices=("tiny", "default", "paper"),
        help="model preset (default: default)",
    )
    parser.add_argument("--threads", type=int, default=2, help="ORT intra-op threads (default: 2)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per model (default: 50)")
    parser.add_argument(
        "--expression",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of the FER net (repeatable; JSON values), e.g. trunk=vgg8 widths=[32,64,128,256]",
    )
    args = parser.parse_args(argv)
    from ofer_live.export.bundle import parse_model_options

    overrides = {contracts.EXPRESSION: parse_model_options(args.expression, "--expression")}
    costs = preset_costs(args.preset, threads=args.threads, runs=args.runs, overrides=overrides)
    lines = [
        f"| model | params | GFLOPs | ONNX MB | ORT {args.threads} threads, batch 1 (median / min ms) |",
        "|---|---|---|---|---|",
    ]
    for c in costs.values():
        lines.append(
            f"| {c['model']} | {c['params'] / 1e6:.2f} M | {c['gflops']:.2f} | {c['onnx_mb']:.1f} | "
            f"{c['median_ms']:.1f} / {c['min_ms']:.1f} |"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
