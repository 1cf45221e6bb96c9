"""Plot the validation curves of one or more training runs (metrics.jsonl) in sequence, for the model card.

    python scripts/plot_training_curves.py runs/expr_stage1b runs/expr_stage2b -o docs/eval/expression_training.png \
        --metrics val_clean_acc val_occluded_acc val_clean_macro_recall

Runs are drawn one after another on one epoch axis (a run started with --init-from continues the previous one);
its epoch-0 validation, when logged, is the starting point. Prints the minutes each run trained.

With ``--minutes`` the runs are overlaid instead, each against the wall-clock minutes since its first logged record
(validation included): the equal-training-time comparison of two architectures::

    python scripts/plot_training_curves.py runs/compare_vgg8 runs/compare_resnet18 --minutes \
        -o docs/eval/expression_trunks.png --metrics val_clean_acc val_occluded_acc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read(path: Path) -> list[dict]:
    with open(path / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, in training order")
    parser.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    parser.add_argument(
        "--metrics", nargs="+", default=["val_clean_acc", "val_occluded_acc"], help="validation metrics to draw"
    )
    parser.add_argument(
        "--minutes", action="store_true", help="overlay the runs against wall-clock minutes since each run's start"
    )
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    offset = 0
    for run in args.runs:
        records = read(run)
        val = {}
        for r in records:  # a resumed run may log an epoch twice; the last one counts
            if r["split"] == "val":
                val[r["epoch"]] = r
        epochs = sorted(val)
        seconds = sum(
            r.get("seconds", 0.0)
            for r in records
            if r.get("event") in ("finished", "interrupted", "time_budget", "early_stopped")
        )
        print(f"{run}: {len(epochs) - (0 in val)} epochs, {seconds / 60:.1f} min of training")
        start = records[0]["time"] if records else 0.0
        for metric in args.metrics:
            if args.minutes:
                xs = [(val[e]["time"] - start) / 60.0 for e in epochs if metric in val[e]]
            else:
                xs = [offset + e for e in epochs if metric in val[e]]
            ys = [100 * val[e][metric] for e in epochs if metric in val[e]]
            ax.plot(xs, ys, marker="o", markersize=3, label=f"{run.name}: {metric}")
        if not args.minutes:
            ax.axvline(offset, color="0.8", lw=0.8)
            offset += max(epochs) if epochs else 0
    ax.set_xlabel("minutes since the run started" if args.minutes else "epoch (runs in sequence)")
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
