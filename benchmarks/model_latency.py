"""Per-model ONNX Runtime latency by batch size (faces per frame) and intra-op threads.

    .venv/bin/python benchmarks/model_latency.py [--models DIR] [--batch 1 2 4 8] [--threads 1 2] [--runs 50]
        [--precision fp32 int8] [--json]

Complements `ofer-live bench` (whole pipeline on the demo clip): this isolates the three models, e.g. for
the README model card's "ORT latency" column. Inputs are random faces; latency does not depend on content.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ofer_live.config import DEFAULT_MODELS_DIR, PRECISIONS, RuntimeConfig
from ofer_live.runtime import load_models


def _time(fn, runs: int) -> tuple[float, float]:
    """Median and p95 wall time of ``fn()`` in ms over ``runs`` calls (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(samples)), float(np.percentile(samples, 95))


def measure(
    models_dir: Path, batch: int, threads: int, runs: int, providers: tuple[str, ...] | None, precision: str = "fp32"
) -> dict:
    config = RuntimeConfig(models_dir=models_dir, intra_op_threads=threads, providers=providers, precision=precision)
    with load_models(config) as m:
        rng = np.random.default_rng(0)
        S, G = m.face_size, m.patch_grid
        faces = rng.integers(0, 256, (batch, S, S, 3), dtype=np.uint8)
        mask = (rng.random((batch, G, G)) < 0.25).astype(np.float32)
        recon, latents = m.reconstructor(faces, mask)
        rows = {
            "occlusion": _time(lambda: m.occlusion(faces), runs),
            "reconstructor": _time(lambda: m.reconstructor(faces, mask), runs),
            "expression": _time(lambda: m.expression(recon, latents), runs),
        }
        return {
            "batch": batch,
            "threads": threads,
            "precision": m.precision,
            "provider": m.provider,
            **{f"{k}_median_ms": v[0] for k, v in rows.items()},
            **{f"{k}_p95_ms": v[1] for k, v in rows.items()},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS_DIR, help="models folder")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4], help="faces per run")
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="intra-op threads (0 = ORT default)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per measurement")
    parser.add_argument("--providers", default=None, help="comma-separated ORT providers (default: best available)")
    parser.add_argument(
        "--precision", nargs="+", choices=PRECISIONS, default=["fp32"], help="model files to time (int8: the variants)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args()
    providers = tuple(p.strip() for p in args.providers.split(",")) if args.providers else None
    if not args.json:
        header = "  ".join(f"{k:>18}" for k in ("occlusion", "reconstructor", "expression"))
        print(f"{'batch':>5} {'threads':>7}  {header}  (median / p95 ms)")
    for precision in args.precision:
        for threads in args.threads:
            for batch in args.batch:
                row = measure(args.models, batch, threads, args.runs, providers, precision)
                if args.json:
                    print(json.dumps(row))
                    continue
                cells = [
                    f"{row[f'{k}_median_ms']:8.2f} / {row[f'{k}_p95_ms']:7.2f}"
                    for k in ("occlusion", "reconstructor", "expression")
                ]
                print(
                    f"{batch:>5} {threads or 'auto':>7}  "
                    + "  ".join(cells)
                    + f"  {row['provider']}, {row['precision']}"
                )


if __name__ == "__main__":
    main()
