"""The report files of ``ofer-live eval``: ``report.json``, ``report.md`` (with the issue's target table) and PNG
plots (matplotlib, Agg backend), from the dict that ``evaluation.measure.evaluate`` returns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ofer_live.contracts import LABELS, NUM_CLASSES
from ofer_live.errors import OutputError


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not np.isfinite(v) else f"{100 * v:.1f} %"


def _num(value: Any, fmt: str = "{:.2f}") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not np.isfinite(v) else fmt.format(v)


def targets_table(report: dict[str, Any]) -> list[dict[str, str]]:
    """The first model issue's (#3) target table filled with this report's numbers."""
    clean, pasted, det, rec = (
        report["clean"],
        report["pasted"].get("all", {}),
        report["detection"],
        report["reconstruction"],
    )
    base_clean = " / ".join(f"{_pct(m['accuracy'])}" for m in clean["baselines"].values()) or "-"
    base_macro = " / ".join(f"{_pct(m['macro_recall'])}" for m in clean["baselines"].values()) or "-"
    base_pasted = " / ".join(f"{_pct(m['accuracy'])}" for m in pasted.get("baselines", {}).values()) or "-"
    seen = det.get("seen", {})
    rows = [
        {
            "measurement": "accuracy, clean faces",
            "baselines": base_clean,
            "target": ">= 84 %",
            "ours": _pct(clean["pipeline"]["accuracy"]),
        },
        {
            "measurement": "accuracy, 25 % pasted cut-outs",
            "baselines": base_pasted,
            "target": ">= 78 %, >= 3 points above no reconstruction",
            "ours": f"{_pct(pasted.get('pipeline', {}).get('accuracy'))} "
            f"(no reconstruction {_pct(pasted.get('no_reconstruction', {}).get('accuracy'))})",
        },
        {
            "measurement": "macro recall, clean",
            "baselines": base_macro,
            "target": ">= 75 %",
            "ours": _pct(clean["pipeline"]["macro_recall"]),
        },
        {
            "measurement": "patch detection accuracy / recall (seen kinds)",
            "baselines": "paper: 98.3 % / 98.7 %",
            "target": ">= 95 % / >= 95 %",
            "ours": f"{_pct(seen.get('accuracy'))} / {_pct(seen.get('recall'))}",
        },
        {
            "measurement": "reconstruction PSNR / SSIM, 25 % irregular, held-out UTKFace",
            "baselines": "paper: 26.65 dB / 0.880",
            "target": ">= 26 dB / >= 0.88",
            "ours": f"{_num(rec.get('psnr_pixel'))} dB / {_num(rec.get('ssim_pixel'), '{:.3f}')} (stroke pixels "
            f"from the model); whole masked patches: {_num(rec.get('psnr'))} dB / "
            f"{_num(rec.get('ssim'), '{:.3f}')}",
        },
    ]
    held = det.get("heldout")
    if held:
        rows.insert(
            4,
            {
                "measurement": "patch detection accuracy / recall (held-out kinds)",
                "baselines": "-",
                "target": "report",
                "ours": f"{_pct(held.get('accuracy'))} / {_pct(held.get('recall'))}",
            },
        )
    return rows


def render_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    meta = report["meta"]
    lines = ["# ofer_live evaluation", ""]
    lines.append(
        f"FER+ valid faces: {meta['n_faces']} (majority labels, 7 classes); held-out UTKFace: "
        f"{meta['n_utkface']}; seed {meta['seed']}; face {meta['face_size']} px, grid {meta['patch_grid']}, "
        f"threshold {meta['threshold']}."
    )
    if meta.get("models_dir"):
        lines.append(f"Models: `{meta['models_dir']}`" + (f" ({meta['provider']})" if meta.get("provider") else ""))
    lines.append(
        f"Occluder kinds seen in training: {', '.join(meta['seen_kinds']) or '-'}; held out: "
        f"{', '.join(meta['heldout_kinds']) or '-'}."
    )
    lines += [
        "",
        "## Summary",
        "",
        "The targets are the first model issue's (#3); the later issues' bars (#10, #11) are in the README.",
        "",
        "| measurement | baselines | target (#3) | ours |",
        "|---|---|---|---|",
    ]
    for row in targets_table(report):
        lines.append(f"| {row['measurement']} | {row['baselines']} | {row['target']} | {row['ours']} |")
    if meta["baselines"]:
        lines.append("")
        lines.append(f"Baselines, in order: {', '.join(meta['baselines'])}.")
    # clean
    clean = report["clean"]
    lines += ["", "## Clean faces", "", "| model | accuracy | macro recall |", "|---|---|---|"]
    lines.append(
        f"| Latent-OFER pipeline | {_pct(clean['pipeline']['accuracy'])} | {_pct(clean['pipeline']['macro_recall'])} |"
    )
    lines.append(
        f"| FER net without reconstruction | {_pct(clean['no_reconstruction']['accuracy'])} | "
        f"{_pct(clean['no_reconstruction']['macro_recall'])} |"
    )
    for name, m in clean["baselines"].items():
        lines.append(f"| {name} | {_pct(m['accuracy'])} | {_pct(m['macro_recall'])} |")
    lines.append(f"\nPatches flagged as occluded on clean faces: {_pct(clean['flagged_patch_fraction'])}.")
    lines += [
        "",
        "Per-class recall (pipeline): "
        + ", ".join(f"{k} {_pct(v)}" for k, v in clean["pipeline"]["per_class_recall"].items()),
    ]
    lines += ["", "Confusion matrix (rows: true, columns: predicted; " + ", ".join(LABELS) + "):", "", "```"]
    for label, row in zip(LABELS, clean["pipeline"]["confusion"], strict=False):
        lines.append(f"{label:>9} " + " ".join(f"{v:5d}" for v in row))
    lines.append("```")
    # curves
    lines += ["", "## Accuracy against the occluded proportion (Figure 1)", ""]
    for kind, curve in report["curves"].items():
        props = curve["proportions"]
        n_curve = curve.get("n", meta["n_faces"])
        source = f", CAM: {meta.get('cam_source', 'expression')}" if kind == "gradcam" else ""
        lines.append(f"**{kind}** patches (filled {meta['settings']['fill']}; {n_curve} faces{source}):")
        lines.append("")
        lines.append("| model | " + " | ".join(f"{int(round(100 * p))} %" for p in props) + " |")
        lines.append("|---|" + "---|" * len(props))
        for name, accs in curve["accuracy"].items():
            label = {
                "pipeline": "Latent-OFER pipeline",
                "no_reconstruction": "no reconstruction",
                "oracle": "true mask + reconstruction",
            }.get(name, name)
            lines.append(f"| {label} | " + " | ".join(_pct(a) for a in accs) + " |")
        lines.append("")
    # pasted
    header = ["kinds", "coverage", "pipeline", "no reconstruction", "true mask", *meta["baselines"]]
    lines += [
        "## Pasted cut-outs (about 25 % of the face)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for name, m in report["pasted"].items():
        cells = [
            name,
            _pct(m["coverage_mean"]),
            _pct(m["pipeline"]["accuracy"]),
            _pct(m["no_reconstruction"]["accuracy"]),
            _pct(m["oracle"]["accuracy"]),
        ]
        cells += [_pct(m["baselines"][b]["accuracy"]) for b in meta["baselines"]]
        lines.append("| " + " | ".join(cells) + " |")
    # detection
    lines += [
        "",
        "## Occlusion patch detection (Table 1)",
        "",
        "| occluders | accuracy | precision | recall | F1 | AUROC | FPR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("seen", "heldout"):
        m = report["detection"].get(name)
        if m:
            lines.append(
                f"| {name} kinds | {_pct(m['accuracy'])} | {_pct(m['precision'])} | {_pct(m['recall'])} | "
                f"{_pct(m['f1'])} | {_num(m['auroc'], '{:.3f}')} | {_pct(m['fpr'])} |"
            )
    lines.append("\nA patch counts as occluded when at least 50 % of it is covered.")
    # reconstruction
    rec = report["reconstruction"]
    lines += ["", "## Reconstruction (Table 8)", ""]
    if rec.get("n"):
        lines.append(
            f"Held-out UTKFace ({rec['n']} faces), irregular masks covering {_pct(rec['pixel_coverage'])} "
            f"of the pixels; every patch a stroke touches is masked ({_pct(rec['masked_patch_fraction'])} "
            "of the patches)."
        )
        lines += [
            "",
            "| output compared with the clean face | PSNR | SSIM |",
            "|---|---|---|",
            f"| stroke pixels from the model, the rest known (inpainting protocol, as Table 8) | "
            f"{_num(rec['psnr_pixel'])} dB | {_num(rec['ssim_pixel'], '{:.3f}')} |",
            f"| the reconstructor's output as is (whole masked patches regenerated) | {_num(rec['psnr'])} dB | "
            f"{_num(rec['ssim'], '{:.3f}')} |",
            f"| the occluded input (noise in the strokes) | {_num(rec['psnr_occluded_input'])} dB | - |",
        ]
    else:
        lines.append("No held-out UTKFace faces.")
    # ablation
    lines += [
        "",
        "## Ablation (Table 10)",
        "",
        "| FER net | what it reads | clean | 25 % pasted |",
        "|---|---|---|---|",
    ]
    for row in report["ablation"]:
        lines.append(
            f"| {row['expression']} | {_ablation_mode(row)} | "
            f"{_pct(row['clean_accuracy'])} | {_pct(row['pasted_accuracy'])} |"
        )
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({file})" for name, file in plots.items()]
    lines.append(f"\nEvaluation took {meta.get('seconds', '-')} s.")
    return "\n".join(lines) + "\n"


def _ablation_mode(row: dict[str, Any]) -> str:
    if not row["reconstruction"]:
        return "the face as it is (no reconstruction)"
    if row.get("direct_view", False):
        return "reconstruction + the face as it is (as shipped)"
    return "reconstruction alone"


def write_plots(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Figure 1 curves and the clean confusion matrix as PNGs -> {title: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    curves = report["curves"]
    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.0), squeeze=False)
    for ax, (kind, curve) in zip(axes[0], curves.items(), strict=False):
        x = [100 * p for p in curve["proportions"]]
        for name, accs in curve["accuracy"].items():
            label = {"pipeline": "Latent-OFER", "no_reconstruction": "no reconstruction", "oracle": "true mask"}.get(
                name, name
            )
            style = "-o" if name == "pipeline" else "--." if name in ("no_reconstruction", "oracle") else ":s"
            ax.plot(x, [100 * a for a in accs], style, label=label, markersize=4)
        ax.set_title(f"{'Random' if kind == 'random' else 'Grad-CAM'} patch occlusion")
        ax.set_xlabel("occluded patches (%)")
        ax.set_ylabel("accuracy on FER+ valid (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy_vs_occlusion.png", dpi=120)
    plt.close(fig)
    files["Accuracy against the occluded proportion"] = "accuracy_vs_occlusion.png"

    confusion = np.asarray(report["clean"]["pipeline"]["confusion"], dtype=np.float64)
    norm = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(NUM_CLASSES), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_CLASSES), LABELS)
    for i in range(NUM_CLASSES):
        for j in range(NUM_CLASSES):
            ax.text(
                j,
                i,
                f"{int(confusion[i, j])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix, clean FER+ valid")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_clean.png", dpi=120)
    plt.close(fig)
    files["Confusion matrix, clean"] = "confusion_clean.png"
    return files


def _clean_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and the PNG plots into ``out_dir`` -> {kind: path}."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        plots = write_plots(report, out_dir)
        json_path = out_dir / "report.json"
        json_path.write_text(json.dumps(_clean_json(report), indent=2) + "\n", encoding="utf-8")
        md_path = out_dir / "report.md"
        md_path.write_text(render_markdown(report, plots), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write the report ({exc.strerror or exc})") from None
    return {"json": json_path, "markdown": md_path, **{f"plot:{f}": out_dir / f for f in plots.values()}}


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------
