"""How far the self-assembly layer's parallel sweeps drift from the paper's sequential chain, in PSNR.

    python scripts/self_assembly_sweeps.py --model exported_models/reconstructor.onnx --data ../shared/data

The layer unrolls the chain "each masked patch mixes in the previous generated one" as a fixed number of parallel
sweeps (``SelfAssembly.steps``); ``G*G - 1`` sweeps equal the sequential loop exactly. This runs the reconstructor
on held-out UTKFace faces with realistic masks (pasted cut-outs at about 25 % of the face, and 20-30 % irregular
strokes, the masks of ``ofer-live eval``), once with the exact chain and once per sweep count, and prints the PSNR
of each output against the exact chain's output and against the clean face. Needs torch (the train extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="exported_models/reconstructor.onnx", help="reconstructor .onnx/checkpoint")
    parser.add_argument("--data", default=None, help="data root (default: $OFER_DATA, else ../shared/data)")
    parser.add_argument("--cache", default="cache", help="data cache folder (default: %(default)s)")
    parser.add_argument("--faces", type=int, default=128, help="held-out UTKFace faces (default: %(default)s)")
    parser.add_argument("--steps", default="0,1,2,3,4,8", help="sweep counts to compare (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)

    import torch

    from ofer_live.evaluation.measure import _rng, load_eval_data, pasted_condition
    from ofer_live.training.checkpoint import build_model, load_weights
    from ofer_live.training.data.cache import CacheSettings
    from ofer_live.training.data.occlusion_synth import irregular_mask, patch_coverage
    from ofer_live.training.data.paths import resolve_data_root
    from ofer_live.training.metrics import psnr

    torch.set_num_threads(1)
    model = build_model(load_weights(args.model), args.model).eval()
    size, grid = model.config.face_size, model.config.patch_grid
    settings = CacheSettings(data_root=resolve_data_root(args.data), cache_dir=Path(args.cache), align="detect")
    data = load_eval_data(settings, size, (), max_images=1, seed=args.seed, max_utkface=args.faces)
    faces = data.utk_faces
    if not len(faces):
        print("no held-out UTKFace faces found", file=sys.stderr)
        return 2
    bank = type(data.seen)(list(data.seen) + list(data.heldout))
    pasted, cov = pasted_condition(faces, bank, data.layout, 0.25, grid, args.seed, 10)
    alphas = np.stack([irregular_mask(size, _rng(args.seed, 50, i), (0.2, 0.3)) for i in range(len(faces))])
    strokes = faces.copy()
    strokes[alphas > 0.5] = 0
    conditions = {
        "pasted cut-outs (25 %)": (pasted, (cov > 0).astype(np.float32)),
        "irregular strokes (20-30 %)": (strokes, (patch_coverage(alphas, grid) > 0).astype(np.float32)),
    }
    layer = model.refiner.self_assembly
    default_steps = layer.steps
    sweeps = [int(s) for s in args.steps.split(",")]
    exact = grid * grid - 1

    def reconstruct(images: np.ndarray, mask: np.ndarray, steps: int) -> np.ndarray:
        """images (N, S, S, 3) uint8, mask (N, G, G) -> (N, S, S, 3) uint8 with ``steps`` sweeps."""
        layer.steps = steps
        out = []
        with torch.no_grad():
            for i in range(0, len(images), 32):
                x = torch.from_numpy(images[i : i + 32]).permute(0, 3, 1, 2).float() / 255.0
                y = model.forward_features(x, torch.from_numpy(mask[i : i + 32]))["output"]
                out.append((y.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).numpy())
        return np.concatenate(out)

    report: dict[str, dict[str, dict[str, float]]] = {}
    for name, (images, mask) in conditions.items():
        reference = reconstruct(images, mask, exact)
        rows = {}
        for steps in sweeps:
            out = reconstruct(images, mask, steps)
            rows[str(steps)] = {
                "psnr_vs_exact_chain": float(np.mean(psnr(out, reference))),
                "psnr_vs_clean": float(np.mean(psnr(out, faces))),
            }
        rows[f"{exact} (exact)"] = {
            "psnr_vs_exact_chain": float("inf"),
            "psnr_vs_clean": float(np.mean(psnr(reference, faces))),
        }
        report[name] = rows
    layer.steps = default_steps
    if args.json:
        print(json.dumps({"model": args.model, "faces": int(len(faces)), "default_steps": default_steps, **report}))
        return 0
    print(f"{args.model}: {len(faces)} held-out UTKFace faces, default {default_steps} sweeps, exact = {exact}")
    for name, rows in report.items():
        print(f"\n{name}\n  sweeps   PSNR vs exact chain   PSNR vs clean face")
        for steps, row in rows.items():
            print(f"  {steps:>12}   {row['psnr_vs_exact_chain']:>8.2f} dB   {row['psnr_vs_clean']:>8.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
