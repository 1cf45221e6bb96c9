"""Does the direct view pay on FER+ valid faces that `make eval` does not use?

    .venv/bin/python benchmarks/direct_view.py [--data ../shared/data] [--models exported_models] [--seed 0]
                                               [--max-faces N]

`make eval` measures a seeded subset of 1,000 labelled FER+ valid faces. This check takes the other labelled valid
faces (2,370 with `--seed 0 --eval-images 1000`, `make eval`'s settings), pastes cut-outs covering about 25 % of
each face (all kinds, then the held-out kind alone, with another seed than eval's), and prints, through
``FramePipeline.process_aligned`` as the app runs it, the accuracy of:

- the pipeline as shipped: reconstruction, and for faces with flagged patches also the face as it is, logits
  averaged (``direct_view``);
- the reconstruction alone (``direct_view=False``);
- no reconstruction (``use_reconstruction=False``).

About 16 minutes on an idle 2-core CPU; ``--max-faces 1200`` (the first 1,200 of those faces, the same occlusions)
takes about 8 and is how candidate models were compared (``--models``: a folder made by ``ofer-live export``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ofer_live.config import AppConfig, RuntimeConfig
from ofer_live.evaluation.measure import outside_eval_subset, pasted_condition, through_pipeline
from ofer_live.pipeline.frame_pipeline import FramePipeline
from ofer_live.training.data.cache import CacheSettings, ferplus, occluders
from ofer_live.training.data.occluders import OccluderBank
from ofer_live.training.data.occlusion_synth import template_layout
from ofer_live.training.data.paths import resolve_data_root

MODES = {
    "as shipped": {},
    "reconstruction alone": {"direct_view": False},
    "no reconstruction": {"use_reconstruction": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help="the data folder (default ../shared/data)")
    parser.add_argument("--cache", default="cache", help="the cache folder (default cache)")
    parser.add_argument("--models", default="exported_models", help="the models folder (default exported_models)")
    parser.add_argument("--seed", type=int, default=0, help="make eval's seed: its subset is left out (default 0)")
    parser.add_argument(
        "--eval-images", type=int, default=1000, help="make eval's --max-images: the size of that subset (default 1000)"
    )
    parser.add_argument("--max-faces", type=int, default=0, help="only the first N of those faces, 0 = all (default 0)")
    parser.add_argument("--heldout-kind", default="scarves", help="the held-out occluder kind (default scarves)")
    args = parser.parse_args()

    settings = CacheSettings(data_root=resolve_data_root(args.data), cache_dir=Path(args.cache))
    config = AppConfig(runtime=RuntimeConfig(models_dir=Path(args.models)))
    with FramePipeline.create(config, detect=False) as pipeline:
        size, grid = pipeline.face_size, pipeline.models.patch_grid
        bank = occluders(settings)  # split as `make eval` splits it (load_eval_data)
        seen, heldout = bank.split([args.heldout_kind] if args.heldout_kind in bank.kinds else [])
        layout = template_layout()
        valid = ferplus(settings, "valid")
        rest = outside_eval_subset(valid.labels, args.eval_images, args.seed)
        if args.max_faces > 0:
            rest = rest[: args.max_faces]
        faces = valid.store.batch(rest, size)
        labels = valid.labels[rest].astype(np.int64)
        print(f"{len(rest)} labelled FER+ valid faces outside make eval's subset (seed {args.seed}); {args.models}")
        all_kinds = OccluderBank(list(seen) + list(heldout))  # in make eval's order
        seed = args.seed + 1000
        conditions = {
            "clean": faces,
            "pasted, all kinds": pasted_condition(faces, all_kinds, layout, 0.25, grid, seed, 10)[0],
            f"pasted, {args.heldout_kind}": pasted_condition(faces, heldout, layout, 0.25, grid, seed, 12)[0],
        }
        print("| faces | " + " | ".join(MODES) + " |")
        print("|---" * (len(MODES) + 1) + "|")
        for name, inputs in conditions.items():
            t0 = time.perf_counter()
            accuracy = []
            for kwargs in MODES.values():
                probs = through_pipeline(pipeline, inputs, **kwargs)["probs"]
                accuracy.append(100.0 * float((probs.argmax(1) == labels).mean()))
            cells = " | ".join(f"{a:.2f} %" for a in accuracy)
            print(f"| {name} | {cells} |  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
