"""Does the detector see objects at the edges of the face crop (a phone at the cheek, a hand on the jaw, a hat)?

    .venv/bin/python benchmarks/edge_occluders.py [--data ../shared/data] [--models DIR [DIR ...]] [--seed 0]
                                                  [--max-faces 1000]

`make eval` pastes "anywhere" cut-outs (objects, misc) with their centres 20-80 % across and 30-90 % down the
crop, the range every detector up to v6 trained on. This check takes the labelled FER+ valid faces outside `make
eval`'s subset (the first ``--max-faces``), pastes one object or misc cut-out per face with its centre near an edge
of the crop instead (left or right: 2-18 % or 82-98 % across, 20-95 % down; top: 5-25 % down, 15-85 % across;
one third each), and prints, for each models folder, the patch detection of its detector on those faces: precision
and recall (a patch counts as occluded when at least half of it is covered, as in `make eval`) and the share of
patches flagged on the same faces left clean.

About a minute for three models folders on a 2-core CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ofer_live.config import AppConfig, RuntimeConfig
from ofer_live.evaluation.measure import outside_eval_subset
from ofer_live.runtime.loader import load_models
from ofer_live.training.data.cache import CacheSettings, ferplus, occluders
from ofer_live.training.data.occluders import OccluderBank
from ofer_live.training.data.occlusion_synth import PasteConfig, paste_occluder, patch_coverage, template_layout
from ofer_live.training.data.paths import resolve_data_root
from ofer_live.training.metrics import detection_metrics

# (centre x range, centre y range) of the three edge placements, as fractions of the crop
EDGES = {
    "left": ((0.02, 0.18), (0.2, 0.95)),
    "right": ((0.82, 0.98), (0.2, 0.95)),
    "top": ((0.15, 0.85), (0.05, 0.25)),
}


def edge_occluded(
    faces: np.ndarray, bank: OccluderBank, grid: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """faces (N, S, S, 3) uint8 -> (faces with one cut-out at an edge, coverage (N, G, G), edge name per face)."""
    layout = template_layout()
    rng = np.random.default_rng(seed)
    out, cov, edges = np.empty_like(faces), np.zeros((len(faces), grid, grid), np.float32), []
    for i, face in enumerate(faces):
        edge = list(EDGES)[i % len(EDGES)]
        x_range, y_range = EDGES[edge]
        config = PasteConfig(anywhere_center_x=x_range, anywhere_center_y=y_range)
        out[i], alpha = paste_occluder(face, bank.sample(rng), layout, rng, config)
        cov[i] = patch_coverage(alpha, grid)
        edges.append(edge)
    return out, cov, edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="the data folder (default ../shared/data)")
    parser.add_argument("--cache", default="cache", help="the cache folder (default cache)")
    parser.add_argument(
        "--models", nargs="+", default=["exported_models"], help="models folders to compare (default exported_models)"
    )
    parser.add_argument("--seed", type=int, default=0, help="make eval's seed: its subset is left out (default 0)")
    parser.add_argument(
        "--eval-images", type=int, default=1000, help="make eval's --max-images: the size of that subset (default 1000)"
    )
    parser.add_argument("--max-faces", type=int, default=1000, help="the first N faces outside it (default 1000)")
    args = parser.parse_args()

    settings = CacheSettings(data_root=resolve_data_root(args.data), cache_dir=Path(args.cache))
    bank = occluders(settings)
    anywhere = OccluderBank([o for o in bank if o.placement == "anywhere"])
    valid = ferplus(settings, "valid")
    rest = outside_eval_subset(valid.labels, args.eval_images, args.seed)[: args.max_faces]
    print(f"{len(rest)} FER+ valid faces outside make eval's subset; {len(anywhere)} object/misc cut-outs")
    print("| models | precision | recall | left / right / top recall | clean patches flagged |")
    print("|---|---|---|---|---|")
    inputs: dict[tuple[int, int], tuple] = {}  # (face size, grid) -> (faces, occluded, coverage, edges): made once
    for folder in args.models:
        models = load_models(AppConfig(runtime=RuntimeConfig(models_dir=Path(folder))).runtime)
        size, grid = models.face_size, models.patch_grid
        if (size, grid) not in inputs:
            faces = valid.store.batch(rest, size)
            inputs[size, grid] = (faces, *edge_occluded(faces, anywhere, grid, args.seed + 3000))
        faces, occluded, cov, edges = inputs[size, grid]
        occluded_scores, clean_scores = (
            np.concatenate([models.occlusion(batch[i : i + 64]) for i in range(0, len(batch), 64)])
            for batch in (occluded, faces)
        )
        t = models.threshold
        overall = detection_metrics(occluded_scores, cov, threshold=t)
        per_edge = []
        for edge in EDGES:
            keep = np.array([e == edge for e in edges])
            per_edge.append(100 * detection_metrics(occluded_scores[keep], cov[keep], threshold=t)["recall"])
        flagged = 100 * float((clean_scores > t).mean())
        edge_cells = " / ".join(f"{r:.1f}" for r in per_edge)
        print(
            f"| {folder} | {100 * overall['precision']:.1f} % | {100 * overall['recall']:.1f} % | {edge_cells} % "
            f"| {flagged:.2f} % |",
            flush=True,
        )
        models.close()


if __name__ == "__main__":
    main()
