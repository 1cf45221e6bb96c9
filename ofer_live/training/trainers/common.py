"""The training loop shared by the three models: epochs, progress bar, JSON-lines metrics, resolved config,
resumable checkpoints, early stopping, a time budget, a non-finite-loss guard, CUDA and DistributedDataParallel.

A model-specific ``Task`` supplies the data, the modules and two methods:
``train_step(batch) -> {name: float}`` (forward, backward, optimiser steps) and ``validate() -> {name: float}``.
``fit(task)`` runs it. Files in the run folder (``--out``):

- ``config.json``: the resolved config (preset + TOML + CLI flags), rewritten at every start;
- ``metrics.jsonl``: one JSON object per line: ``{"split": "train" | "val" | "event", "epoch", "step", ...}``;
- ``last.pt``: the latest state (every epoch, every ``run.checkpoint_minutes``, on a time budget stop, on
  Ctrl-C/SIGTERM): model, optimisers, LR schedule position, epoch/step, RNG states, best metric;
- ``best.pt``: the model at the best validation ``task.select_metric`` (what ``ofer-live export`` picks).

Checkpoints use ``training.checkpoint.save_checkpoint`` (loads with ``weights_only=True``); the resume state lives
under its ``extra`` key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ofer_live.errors import UserError
from ofer_live.training.checkpoint import load_checkpoint, load_weights, save_checkpoint
from ofer_live.training.presets import TrainConfig

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
CONFIG_JSON = "config.json"
METRICS_JSONL = "metrics.jsonl"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the run stops (its last good checkpoint stays on disk)."""


# ---------------------------------------------------------------------------------------------------------------
# Devices and distributed runs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_spec: str) -> DistInfo:
    """Initialise torch.distributed when launched by torchrun with WORLD_SIZE > 1 (NCCL on CUDA, else Gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_spec != "cpu"
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
    return DistInfo(rank, world, local)


def resolve_device(spec: str, dist: DistInfo = DistInfo()) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device; raises UserError for CUDA without a GPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is available to torch (use --device cpu)")
        if dist.enabled:
            return torch.device("cuda", dist.local_rank)
        return torch.device(spec)
    if spec != "cpu":
        raise UserError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (``avx512_bf16`` or AMX in /proc/cpuinfo's flags; Linux only:
    elsewhere False, so ``auto`` stays fp32)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_precision(spec: str, device: torch.device, cpuinfo: str | None = None) -> str:
    """'auto' | 'fp32' | 'bf16' -> 'fp32' or 'bf16'. auto: bf16 on CUDA GPUs that support it and on CPUs with
    native bf16 (``cpu_has_bf16``), else fp32. An explicit bf16 is honoured everywhere (slow without hardware
    support)."""
    if spec not in PRECISIONS:
        raise UserError(f"unknown precision {spec!r}; use {', '.join(PRECISIONS)}")
    if spec != "auto":
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16(cpuinfo) else "fp32"


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def maybe_ddp(module: nn.Module, dist: DistInfo, device: torch.device) -> nn.Module:
    """Wrap in DistributedDataParallel when distributed (only modules with trainable parameters)."""
    if not dist.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def all_reduce_mean(values: dict[str, float], dist: DistInfo, device: torch.device) -> dict[str, float]:
    if not dist.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    t /= dist.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist(), strict=False)}


# ---------------------------------------------------------------------------------------------------------------
# Sampling, schedule, RNG state
# ---------------------------------------------------------------------------------------------------------------


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, split across ranks, that can start part-way (for mid-epoch resume).

    The permutation is ``default_rng([seed, epoch]).permutation(n)``; rank r takes positions r, r+W, ...; the
    first ``start`` indices of this rank are skipped. ``limit`` caps the indices per rank (steps x batch).
    """

    def __init__(self, n: int, seed: int, dist: DistInfo = DistInfo(), limit: int | None = None) -> None:
        self.n = n
        self.seed = seed
        self.dist = dist
        self.limit = limit
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def _indices(self) -> np.ndarray:
        perm = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch]).permutation(self.n)
        mine = perm[self.dist.rank :: self.dist.world_size]
        if self.limit is not None:
            mine = mine[: self.limit]
        return mine[self.start :]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return len(self._indices())


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_ratio`` (a pure function of the step, so resuming is exact)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in a ``weights_only``-loadable form."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst[0], npst[1].numpy().astype(np.uint32), npst[2], npst[3], npst[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def check_finite(losses: dict[str, torch.Tensor | float], epoch: int, step: int) -> None:
    """Raise NonFiniteLossError naming every non-finite loss term."""
    bad = {k: float(v) for k, v in losses.items() if not math.isfinite(float(v))}
    if bad:
        terms = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(f"non-finite loss at epoch {epoch} step {step} ({terms})")


# ---------------------------------------------------------------------------------------------------------------
# Run folder
# ---------------------------------------------------------------------------------------------------------------


class MetricsWriter:
    """Appends JSON lines to ``metrics.jsonl`` (flushed per line); a no-op on non-main ranks."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.handle = open(path, "a", encoding="utf-8") if enabled else None  # noqa: SIM115

    def write(self, record: dict[str, Any]) -> None:
        if self.handle is None:
            return
        record = {"time": round(time.time(), 3), **record}
        self.handle.write(json.dumps(record, default=_json_default) + "\n")
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# ---------------------------------------------------------------------------------------------------------------
# Tasks and the loop
# ---------------------------------------------------------------------------------------------------------------


class WeightEMA:
    """An exponential moving average of a module's floating-point state: parameters and float buffers alike
    (BatchNorm running statistics must belong to the averaged weights, not to the live ones, or the averaged
    net is validated with statistics of another net). The decay ramps up as min(decay, (1 + t) / (10 + t)).

    ``swapped_in(module)`` temporarily puts the averaged state into the module (validation, best.pt, export).
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in _float_state(module).items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in _float_state(module).items():
            self.shadow[name].mul_(d).add_(value.detach().float(), alpha=1 - d)

    @contextlib.contextmanager
    def swapped_in(self, module: nn.Module) -> Iterator[None]:
        state = _float_state(module)
        live = {k: v.detach().clone() for k, v in state.items()}
        with torch.no_grad():
            for name, value in state.items():
                value.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in state.items():
                    value.copy_(live[name])

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a saved average; entries it lacks (float buffers, in averages saved before they were
        averaged) start from the module's current values."""
        self.updates = int(state["updates"])
        self.shadow.update({k: v.clone().float() for k, v in state["shadow"].items() if k in self.shadow})


def _float_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's floating-point state tensors (parameters and buffers), sharing storage with the module."""
    return {k: v for k, v in module.state_dict(keep_vars=True).items() if v.is_floating_point()}


class Task:
    """Base class of the model-specific training tasks (see trainers/occlusion.py etc.).

    Subclasses set in ``__init__``: ``self.model`` (the module checkpointed and exported), ``self.optimizers``
    (list), ``self.train_set`` (a Dataset with ``set_epoch``), ``self.trained_on`` (str); optionally
    ``self.aux_modules`` ({name: module} saved for resuming, e.g. discriminators) and ``self.threshold``. They
    implement ``train_step`` and ``validate`` and may override ``prepare`` (one-off set-up that must not be
    repeated on resume, e.g. the SVDD centre).
    """

    select_mode = "max"

    def __init__(self, config: TrainConfig, device: torch.device, dist: DistInfo) -> None:
        self.config = config
        self.device = device
        self.dist = dist
        self.precision = resolve_precision(config.run.precision, device)
        self.model: nn.Module
        self.optimizers: list[torch.optim.Optimizer] = []
        self.aux_modules: dict[str, nn.Module] = {}
        self.train_set: Dataset
        self.trained_on = "unknown"
        self.threshold: float | None = None
        self.epoch = 0
        self.global_step = 0

    @property
    def select_metric(self) -> str:
        return self.config.task.select_metric

    def prepare(self) -> None:
        """One-off set-up before the first epoch of a new run (not called on resume)."""

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        raise NotImplementedError

    def autocast(self):
        """bfloat16 autocast when ``self.precision`` is bf16 (CPU or CUDA); losses are computed in fp32 after it."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def load_initial_weights(self) -> None:
        """``run.init_from``: start from the weights of a checkpoint (full or compact), a run folder or an exported
        ``.onnx`` file. The architecture and every weight's shape must match; otherwise a one-line UserError.
        Options without weights may differ (e.g. ``gray_input``).
        Subclasses call this at the end of ``__init__``; BatchNorms folded by the ONNX exporter are handed to
        ``recalibrate_batchnorm``."""
        spec = self.config.run.init_from
        if not spec:
            return
        ckpt = load_weights(spec)
        model = unwrap(self.model)
        theirs, ours = ckpt["model_name"], model.model_name
        if theirs != ours:
            raise UserError(f"--init-from {spec}: {theirs} does not match {ours}")
        try:
            model.load_state_dict(ckpt["state_dict"], strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[-1].strip() if str(exc) else type(exc).__name__
            raise UserError(
                f"--init-from {spec}: {theirs} {dict(ckpt['model_kwargs'])} does not match {ours} "
                f"{dict(model.model_kwargs)} ({first})"
            ) from None
        if dict(ckpt["model_kwargs"]) != dict(model.model_kwargs):  # e.g. a parameter-free option added
            log.info(
                "--init-from %s: model options %s -> %s", spec, dict(ckpt["model_kwargs"]), dict(model.model_kwargs)
            )
        self.recalibrate_batchnorm(list(ckpt["extra"].get("folded_batchnorm", [])))
        self.trained_on = f"{self.trained_on}; fine-tuned from {spec}"
        log.info("%s weights initialised from %s", self.config.kind, spec)

    def recalibrate_batchnorm(self, names: list[str]) -> None:
        """Give BatchNorms imported as identities (``onnx_weights``) real statistics; tasks with BatchNorm override."""
        if names:
            raise UserError(f"{self.config.kind}: cannot recalibrate the BatchNorms {', '.join(names[:3])}")

    def adamw(self, params) -> torch.optim.AdamW:
        """AdamW with the ``optim`` settings; the fused kernel on CPU and CUDA (about 3x faster a step than the
        for-loop one on CPU, the same arithmetic)."""
        opt = self.config.optim
        return torch.optim.AdamW(
            params,
            lr=opt.lr,
            weight_decay=opt.weight_decay,
            betas=(opt.beta1, opt.beta2),
            fused=self.device.type in ("cpu", "cuda"),
        )

    def step_optimizer(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip)
        optimizer.step()


@dataclass
class FitResult:
    status: str  # finished | early_stopped | time_budget | interrupted
    epoch: int
    global_step: int
    best_metric: float | None
    best_epoch: int | None
    last_val: dict[str, float]
    out_dir: Path


def _loader(task: Task, sampler: EpochSampler) -> DataLoader:
    """One epoch's DataLoader. Its own generator keeps it from drawing on the global torch RNG (whose state is
    checkpointed), so a resumed run draws exactly what an uninterrupted one does."""
    run = task.config.run
    generator = torch.Generator().manual_seed(int(run.seed) * 1000 + sampler.epoch)
    return DataLoader(
        task.train_set,
        batch_size=run.batch_size,
        sampler=sampler,
        num_workers=run.num_workers,
        drop_last=True,
        pin_memory=task.device.type == "cuda",
        persistent_workers=False,
        generator=generator,
    )


class _StopFlag:
    """Turns SIGTERM into a graceful stop (checkpoint, then exit) while ``fit`` runs."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> _StopFlag:
        try:
            self._old = signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def _handler(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def fit(task: Task, out_dir: Path, resume: bool = False, max_minutes: float | None = None) -> FitResult:
    """Train ``task`` into ``out_dir`` (see module docstring). ``max_minutes`` overrides ``run.max_minutes``."""
    cfg = task.config
    run = cfg.run
    dist = task.dist
    out_dir = Path(out_dir)
    last_path = out_dir / LAST
    if dist.is_main:
        if last_path.exists() and not resume:
            raise UserError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
        out_dir.mkdir(parents=True, exist_ok=True)
    if dist.enabled:
        torch_dist.barrier()
    budget_s = 60.0 * (max_minutes if max_minutes is not None else run.max_minutes)
    t_start = time.time()
    writer = MetricsWriter(out_dir / METRICS_JSONL, enabled=dist.is_main)

    n_items = len(task.train_set)
    per_rank = n_items // dist.world_size
    steps_per_epoch = per_rank // run.batch_size
    if run.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, run.max_steps_per_epoch)
    if steps_per_epoch <= 0:
        raise UserError(f"training set too small: {n_items} faces for batch size {run.batch_size}")
    total_steps = steps_per_epoch * run.epochs
    warmup = int(round(cfg.optim.warmup_epochs * steps_per_epoch))
    base_lrs = [[g["lr"] for g in opt.param_groups] for opt in task.optimizers]

    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "best_metric": None,
        "best_epoch": None,
        "bad_epochs": 0,
        "finished": False,
    }
    last_val: dict[str, float] = {}
    saved_ema = None
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path, map_location="cpu")
        _restore(task, ckpt, state)
        saved_ema = ckpt["extra"].get("ema")
        last_val = dict(ckpt.get("metrics", {}))
        writer.write({"split": "event", "event": "resume", "epoch": state["epoch"], "step": state["global_step"]})
        log.info("resumed %s at epoch %d step %d", out_dir, state["epoch"], state["global_step"])
    else:
        if resume:
            log.warning("--resume: no %s in %s; starting a new run", LAST, out_dir)
        seed_everything(run.seed + dist.rank)
        task.prepare()
        if run.init_from and dist.is_main:  # epoch 0: the starting weights, measured like every later epoch
            unwrap(task.model).eval()
            with torch.no_grad():
                last_val = task.validate()
            writer.write(
                {
                    "split": "val",
                    "epoch": 0,
                    "step": 0,
                    "init_from": run.init_from,
                    **{k: _round(v) for k, v in last_val.items()},
                }
            )
            log.info(
                "epoch 0 (%s): %s",
                run.init_from,
                ", ".join(f"{k}={_round(v)}" for k, v in last_val.items() if not isinstance(v, dict)),
            )
    if dist.is_main:
        (out_dir / CONFIG_JSON).write_text(cfg.to_json() + "\n", encoding="utf-8")
    ema = WeightEMA(unwrap(task.model), run.ema_decay) if run.ema_decay > 0 else None
    if ema is not None and saved_ema:
        ema.load_state_dict(saved_ema)

    def averaged():
        """The weights to validate and select: the EMA when there is one."""
        return ema.swapped_in(unwrap(task.model)) if ema is not None else contextlib.nullcontext()

    if state["finished"] and state["epoch"] < run.epochs:
        # --resume with more --epochs extends a finished run; the schedule stretches to the new length.
        log.info("extending the finished run %s from %d to %d epochs", out_dir, state["epoch"], run.epochs)
        state["finished"] = False
        state["bad_epochs"] = 0
    if state["finished"]:
        writer.close()
        return FitResult(
            "finished",
            state["epoch"],
            state["global_step"],
            state["best_metric"],
            state["best_epoch"],
            last_val,
            out_dir,
        )

    def save(path: Path, metrics: dict[str, float]) -> None:
        if not dist.is_main:
            return
        extra = {
            "train_state": dict(state),
            "optimizers": [opt.state_dict() for opt in task.optimizers],
            "aux_modules": {k: unwrap(m).state_dict() for k, m in task.aux_modules.items()},
            "rng": rng_state(),
            "config": cfg.to_dict(),
            "task_state": task_state(task),
            "ema": ema.state_dict() if ema is not None else None,
        }
        save_checkpoint(
            path,
            unwrap(task.model),
            metrics=metrics,
            trained_on=task.trained_on,
            preset=cfg.preset,
            threshold=task.threshold,
            extra=extra,
        )

    sampler = EpochSampler(n_items, run.seed, dist, limit=steps_per_epoch * run.batch_size)
    status = "finished"
    last_ckpt_time = time.time()
    from tqdm.auto import tqdm

    with _StopFlag() as stop:
        try:
            while state["epoch"] < run.epochs:
                epoch = state["epoch"]
                task.epoch = epoch
                task.train_set.set_epoch(epoch)
                start = state["step_in_epoch"]
                sampler.set_epoch(epoch, start * run.batch_size)
                bar = tqdm(
                    total=steps_per_epoch,
                    initial=start,
                    desc=f"{cfg.kind} epoch {epoch + 1}/{run.epochs}",
                    unit="step",
                    disable=not dist.is_main,
                    leave=False,
                    mininterval=1.0,
                    dynamic_ncols=True,
                )
                window: dict[str, float] = {}
                window_n = 0
                window_t = time.time()
                unwrap(task.model).train()
                batches = iter(_loader(task, sampler))
                data_s = 0.0
                while True:
                    t_wait = time.time()
                    batch = next(batches, None)
                    if batch is None:
                        break
                    data_s += time.time() - t_wait
                    step = state["global_step"]
                    factor = lr_factor(step, total_steps, warmup, cfg.optim.min_lr_ratio)
                    for opt, lrs in zip(task.optimizers, base_lrs, strict=False):
                        for group, lr in zip(opt.param_groups, lrs, strict=False):
                            group["lr"] = lr * factor
                    task.global_step = step
                    batch = {k: v.to(task.device, non_blocking=True) for k, v in batch.items()}
                    values = task.train_step(batch)
                    check_finite(values, epoch + 1, step)
                    if ema is not None:
                        ema.update(unwrap(task.model))
                    state["global_step"] += 1
                    state["step_in_epoch"] += 1
                    for k, v in values.items():
                        window[k] = window.get(k, 0.0) + float(v)
                    window_n += 1
                    bar.update(1)
                    if window_n >= run.log_every or state["step_in_epoch"] >= steps_per_epoch:
                        dt = max(time.time() - window_t, 1e-9)
                        means = all_reduce_mean({k: v / window_n for k, v in window.items()}, dist, task.device)
                        record = {
                            "split": "train",
                            "epoch": epoch + 1,
                            "step": state["global_step"],
                            "lr": task.optimizers[0].param_groups[0]["lr"],
                            "images_per_s": round(window_n * run.batch_size * dist.world_size / dt, 2),
                            "data_wait_fraction": round(min(1.0, data_s / dt), 4),
                            "precision": task.precision,
                            "threads": torch.get_num_threads(),
                            **{k: round(v, 6) for k, v in means.items()},
                        }
                        writer.write(record)
                        bar.set_postfix(
                            {k: f"{v:.4g}" for k, v in list(means.items())[:3]}
                            | {"img/s": f"{record['images_per_s']:.1f}"}
                        )
                        window, window_n, window_t, data_s = {}, 0, time.time(), 0.0
                    over_budget = budget_s > 0 and time.time() - t_start > budget_s
                    requested = stop.requested
                    if dist.enabled:  # every rank must stop at the same step
                        flags = torch.tensor([int(requested), int(over_budget)], device=task.device)
                        torch_dist.all_reduce(flags, op=torch_dist.ReduceOp.MAX)
                        requested, over_budget = bool(flags[0]), bool(flags[1])
                    if requested or over_budget:
                        status = "interrupted" if requested else "time_budget"
                        break
                    if (
                        run.checkpoint_minutes > 0
                        and time.time() - last_ckpt_time > 60 * run.checkpoint_minutes
                        and state["step_in_epoch"] < steps_per_epoch
                    ):
                        save(last_path, last_val)
                        last_ckpt_time = time.time()
                    if state["step_in_epoch"] >= steps_per_epoch:
                        break
                bar.close()
                if status in ("interrupted", "time_budget"):
                    break
                # End of epoch: validate, select, early-stop.
                unwrap(task.model).eval()
                with torch.no_grad(), averaged():
                    last_val = task.validate() if dist.is_main else {}
                state["epoch"] += 1
                state["step_in_epoch"] = 0
                improved = False
                if dist.is_main:
                    metric = last_val.get(task.select_metric)
                    if metric is not None and math.isfinite(metric):
                        best = state["best_metric"]
                        better = best is None or (metric > best if task.select_mode == "max" else metric < best)
                        if better:
                            state["best_metric"], state["best_epoch"], state["bad_epochs"] = metric, epoch + 1, 0
                            improved = True
                        else:
                            state["bad_epochs"] += 1
                    writer.write(
                        {
                            "split": "val",
                            "epoch": epoch + 1,
                            "step": state["global_step"],
                            "improved": improved,
                            **{k: _round(v) for k, v in last_val.items()},
                        }
                    )
                    log.info(
                        "epoch %d: %s",
                        epoch + 1,
                        ", ".join(f"{k}={_round(v)}" for k, v in last_val.items() if not isinstance(v, dict)),
                    )
                stop_early = run.patience > 0 and state["bad_epochs"] >= run.patience
                if stop_early or state["epoch"] >= run.epochs:
                    state["finished"] = True
                    status = "early_stopped" if stop_early else "finished"
                if improved:
                    with averaged():  # best.pt holds the weights that were validated (exported from there)
                        save(out_dir / BEST, last_val)
                save(last_path, last_val)
                last_ckpt_time = time.time()
                if dist.enabled:
                    flag = torch.tensor([int(state["finished"])], device=task.device)
                    torch_dist.broadcast(flag, 0)
                    state["finished"] = bool(flag.item())
                if state["finished"]:
                    break
        except KeyboardInterrupt:
            status = "interrupted"
            save(last_path, last_val)
            writer.write({"split": "event", "event": status, "epoch": state["epoch"], "step": state["global_step"]})
            writer.close()
            raise
    if status in ("interrupted", "time_budget"):
        save(last_path, last_val)
    if dist.is_main and not (out_dir / BEST).exists() and state["finished"]:
        with averaged():
            save(out_dir / BEST, last_val)  # no valid selection metric: the last model is the best we have
    writer.write(
        {
            "split": "event",
            "event": status,
            "epoch": state["epoch"],
            "step": state["global_step"],
            "best_metric": state["best_metric"],
            "best_epoch": state["best_epoch"],
            "seconds": round(time.time() - t_start, 1),
        }
    )
    writer.close()
    return FitResult(
        status, state["epoch"], state["global_step"], state["best_metric"], state["best_epoch"], last_val, out_dir
    )


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value


def task_state(task: Task) -> dict[str, Any]:
    """Task-specific resume state (e.g. the occlusion task's calibration); tasks may override ``get_state``."""
    getter = getattr(task, "get_state", None)
    return getter() if getter else {}


def _restore(task: Task, ckpt: dict[str, Any], state: dict[str, Any]) -> None:
    model = unwrap(task.model)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    extra = ckpt.get("extra", {})
    for opt, sd in zip(task.optimizers, extra.get("optimizers", []), strict=False):
        opt.load_state_dict(sd)
    for name, sd in extra.get("aux_modules", {}).items():
        if name in task.aux_modules:
            unwrap(task.aux_modules[name]).load_state_dict(sd)
    state.update(extra.get("train_state", {}))
    if "rng" in extra:
        set_rng_state(extra["rng"])
    setter = getattr(task, "set_state", None)
    if setter and "task_state" in extra:
        setter(extra["task_state"])
    task.threshold = ckpt.get("threshold", task.threshold)
