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
import dataclasses
import json
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterator, Mapping
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
        Options without weights may differ (e.g. ``gray_input``). From an FER ensemble, the member that matches
        (``matching_member``).
        Subclasses call this at the end of ``__init__``; BatchNorms folded by the ONNX exporter are handed to
        ``recalibrate_batchnorm``."""
        spec = self.config.run.init_from
        if not spec:
            return
        model = unwrap(self.model)
        ckpt = matching_member(load_weights(spec), model, spec)
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


@dataclass
class RunState:
    """Where a run stands; checkpointed (``extra["train_state"]``) so that ``--resume`` continues exactly."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0  # epochs since the selection metric last improved (early stopping)
    finished: bool = False

    def update(self, saved: Mapping[str, Any]) -> None:
        """Take the values of a checkpoint's ``train_state`` (keys this class does not know are ignored)."""
        for f in dataclasses.fields(self):
            if f.name in saved:
                setattr(self, f.name, saved[f.name])


def _steps_per_epoch(task: Task) -> int:
    """Optimizer steps per epoch: this rank's share of the training set in whole batches, capped by
    ``run.max_steps_per_epoch``."""
    run, n_items = task.config.run, len(task.train_set)
    steps = n_items // task.dist.world_size // run.batch_size
    if run.max_steps_per_epoch > 0:
        steps = min(steps, run.max_steps_per_epoch)
    if steps <= 0:
        raise UserError(f"training set too small: {n_items} faces for batch size {run.batch_size}")
    return steps


class _Run:
    """One call of ``fit``: the run's state, its checkpoints and metrics file, and the loop's pieces."""

    def __init__(self, task: Task, out_dir: Path, max_minutes: float | None) -> None:
        self.task, self.cfg, self.run, self.dist = task, task.config, task.config.run, task.dist
        self.out_dir = Path(out_dir)
        self.last_path = self.out_dir / LAST
        self.budget_s = 60.0 * (max_minutes if max_minutes is not None else self.run.max_minutes)
        self.t_start = time.time()
        self.writer = MetricsWriter(self.out_dir / METRICS_JSONL, enabled=self.dist.is_main)
        self.steps_per_epoch = _steps_per_epoch(task)
        self.total_steps = self.steps_per_epoch * self.run.epochs
        self.warmup = int(round(self.cfg.optim.warmup_epochs * self.steps_per_epoch))
        self.base_lrs = [[g["lr"] for g in opt.param_groups] for opt in task.optimizers]
        self.state = RunState()
        self.last_val: dict[str, float] = {}
        self.ema: WeightEMA | None = None
        self.last_ckpt_time = time.time()

    # -- start ---------------------------------------------------------------------------------------------------
    def start(self, resume: bool) -> None:
        """Restore ``last.pt`` (``resume``) or start fresh (seed, ``task.prepare``, epoch-0 validation of
        ``run.init_from``); write config.json; set up the weight EMA."""
        task, run = self.task, self.run
        saved_ema = None
        if resume and self.last_path.exists():
            ckpt = load_checkpoint(self.last_path, map_location="cpu")
            _restore(task, ckpt, self.state)
            saved_ema = ckpt["extra"].get("ema")
            self.last_val = dict(ckpt.get("metrics", {}))
            self.event("resume")
            log.info("resumed %s at epoch %d step %d", self.out_dir, self.state.epoch, self.state.global_step)
        else:
            if resume:
                log.warning("--resume: no %s in %s; starting a new run", LAST, self.out_dir)
            seed_everything(run.seed + self.dist.rank)
            task.prepare()
            if run.init_from and self.dist.is_main:  # epoch 0: the starting weights, measured like every later epoch
                unwrap(task.model).eval()
                with torch.no_grad():
                    self.last_val = task.validate()
                self.writer.write(
                    {"split": "val", "epoch": 0, "step": 0, "init_from": run.init_from, **_rounded(self.last_val)}
                )
                log.info("epoch 0 (%s): %s", run.init_from, _summary_line(self.last_val))
        if self.dist.is_main:
            (self.out_dir / CONFIG_JSON).write_text(self.cfg.to_json() + "\n", encoding="utf-8")
        self.ema = WeightEMA(unwrap(task.model), run.ema_decay) if run.ema_decay > 0 else None
        if self.ema is not None and saved_ema:
            self.ema.load_state_dict(saved_ema)
        if self.state.finished and self.state.epoch < run.epochs:
            # --resume with more --epochs extends a finished run; the schedule stretches to the new length.
            log.info("extending the finished run %s from %d to %d epochs", self.out_dir, self.state.epoch, run.epochs)
            self.state.finished = False
            self.state.bad_epochs = 0

    # -- bookkeeping ---------------------------------------------------------------------------------------------
    def averaged(self):
        """The weights to validate and select: the EMA when there is one."""
        model = unwrap(self.task.model)
        return self.ema.swapped_in(model) if self.ema is not None else contextlib.nullcontext()

    def save(self, path: Path) -> None:
        if not self.dist.is_main:
            return
        task = self.task
        extra = {
            "train_state": dataclasses.asdict(self.state),
            "optimizers": [opt.state_dict() for opt in task.optimizers],
            "aux_modules": {k: unwrap(m).state_dict() for k, m in task.aux_modules.items()},
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "task_state": task_state(task),
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }
        save_checkpoint(
            path,
            unwrap(task.model),
            metrics=self.last_val,
            trained_on=task.trained_on,
            preset=self.cfg.preset,
            threshold=task.threshold,
            extra=extra,
        )

    def event(self, name: str, **fields: Any) -> None:
        self.writer.write(
            {"split": "event", "event": name, "epoch": self.state.epoch, "step": self.state.global_step, **fields}
        )

    def result(self, status: str) -> FitResult:
        st = self.state
        return FitResult(status, st.epoch, st.global_step, st.best_metric, st.best_epoch, self.last_val, self.out_dir)

    def should_stop(self, stop: _StopFlag) -> str | None:
        """ "interrupted" (SIGTERM), "time_budget" or None; every rank agrees."""
        over_budget = self.budget_s > 0 and time.time() - self.t_start > self.budget_s
        requested = stop.requested
        if self.dist.enabled:  # every rank must stop at the same step
            flags = torch.tensor([int(requested), int(over_budget)], device=self.task.device)
            torch_dist.all_reduce(flags, op=torch_dist.ReduceOp.MAX)
            requested, over_budget = bool(flags[0]), bool(flags[1])
        if requested:
            return "interrupted"
        return "time_budget" if over_budget else None

    # -- one epoch -----------------------------------------------------------------------------------------------
    def train_epoch(self, sampler: EpochSampler, stop: _StopFlag) -> str | None:
        """Train the rest of the current epoch -> a stop status ("interrupted", "time_budget") or None when the
        epoch ran to its end. Logs a train record every ``run.log_every`` steps; checkpoints every
        ``run.checkpoint_minutes``."""
        from tqdm.auto import tqdm

        task, run, state = self.task, self.run, self.state
        epoch = state.epoch
        task.epoch = epoch
        task.train_set.set_epoch(epoch)
        sampler.set_epoch(epoch, state.step_in_epoch * run.batch_size)
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=state.step_in_epoch,
            desc=f"{self.cfg.kind} epoch {epoch + 1}/{run.epochs}",
            unit="step",
            disable=not self.dist.is_main,
            leave=False,
            mininterval=1.0,
            dynamic_ncols=True,
        )
        window = _LogWindow()
        unwrap(task.model).train()
        batches = iter(_loader(task, sampler))
        status = None
        while True:
            t_wait = time.time()
            batch = next(batches, None)
            if batch is None:
                break
            window.data_s += time.time() - t_wait
            self.set_learning_rates(state.global_step)
            task.global_step = state.global_step
            batch = {k: v.to(task.device, non_blocking=True) for k, v in batch.items()}
            values = task.train_step(batch)
            check_finite(values, epoch + 1, state.global_step)
            if self.ema is not None:
                self.ema.update(unwrap(task.model))
            state.global_step += 1
            state.step_in_epoch += 1
            window.add(values)
            bar.update(1)
            if window.n >= run.log_every or state.step_in_epoch >= self.steps_per_epoch:
                record = self.log_train(window, epoch)
                bar.set_postfix(
                    {k: f"{v:.4g}" for k, v in list(record["means"].items())[:3]}
                    | {"img/s": f"{record['images_per_s']:.1f}"}
                )
                window = _LogWindow()
            status = self.should_stop(stop)
            if status is not None:
                break
            if (
                run.checkpoint_minutes > 0
                and time.time() - self.last_ckpt_time > 60 * run.checkpoint_minutes
                and state.step_in_epoch < self.steps_per_epoch
            ):
                self.save(self.last_path)
                self.last_ckpt_time = time.time()
            if state.step_in_epoch >= self.steps_per_epoch:
                break
        bar.close()
        return status

    def set_learning_rates(self, step: int) -> None:
        factor = lr_factor(step, self.total_steps, self.warmup, self.cfg.optim.min_lr_ratio)
        for opt, lrs in zip(self.task.optimizers, self.base_lrs, strict=False):
            for group, lr in zip(opt.param_groups, lrs, strict=False):
                group["lr"] = lr * factor

    def log_train(self, window: _LogWindow, epoch: int) -> dict[str, Any]:
        """Write the window's mean train values (all ranks averaged) -> the record, plus its "means"."""
        task, run = self.task, self.run
        dt = max(time.time() - window.t0, 1e-9)
        means = all_reduce_mean({k: v / window.n for k, v in window.sums.items()}, self.dist, task.device)
        record = {
            "split": "train",
            "epoch": epoch + 1,
            "step": self.state.global_step,
            "lr": task.optimizers[0].param_groups[0]["lr"],
            "images_per_s": round(window.n * run.batch_size * self.dist.world_size / dt, 2),
            "data_wait_fraction": round(min(1.0, window.data_s / dt), 4),
            "precision": task.precision,
            "threads": torch.get_num_threads(),
            **{k: round(v, 6) for k, v in means.items()},
        }
        self.writer.write(record)
        return {**record, "means": means}

    def end_epoch(self) -> str | None:
        """Validate (EMA weights), select, early-stop, checkpoint -> "finished" / "early_stopped" when the run
        is over, else None."""
        task, run, state = self.task, self.run, self.state
        epoch = state.epoch
        unwrap(task.model).eval()
        with torch.no_grad(), self.averaged():
            self.last_val = task.validate() if self.dist.is_main else {}
        state.epoch += 1
        state.step_in_epoch = 0
        improved = False
        if self.dist.is_main:
            metric = self.last_val.get(task.select_metric)
            if metric is not None and math.isfinite(metric):
                best = state.best_metric
                better = best is None or (metric > best if task.select_mode == "max" else metric < best)
                if better:
                    state.best_metric, state.best_epoch, state.bad_epochs = metric, epoch + 1, 0
                    improved = True
                else:
                    state.bad_epochs += 1
            self.writer.write(
                {
                    "split": "val",
                    "epoch": epoch + 1,
                    "step": state.global_step,
                    "improved": improved,
                    **_rounded(self.last_val),
                }
            )
            log.info("epoch %d: %s", epoch + 1, _summary_line(self.last_val))
        stop_early = run.patience > 0 and state.bad_epochs >= run.patience
        status = None
        if stop_early or state.epoch >= run.epochs:
            state.finished = True
            status = "early_stopped" if stop_early else "finished"
        if improved:
            with self.averaged():  # best.pt holds the weights that were validated (exported from there)
                self.save(self.out_dir / BEST)
        self.save(self.last_path)
        self.last_ckpt_time = time.time()
        if self.dist.enabled:
            flag = torch.tensor([int(state.finished)], device=task.device)
            torch_dist.broadcast(flag, 0)
            state.finished = bool(flag.item())
        return status if state.finished else None


@dataclass
class _LogWindow:
    """Train values summed since the last train record."""

    sums: dict[str, float] = dataclasses.field(default_factory=dict)
    n: int = 0
    t0: float = dataclasses.field(default_factory=time.time)
    data_s: float = 0.0  # seconds spent waiting for batches

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1


def _rounded(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _round(v) for k, v in values.items()}


def _summary_line(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_round(v)}" for k, v in values.items() if not isinstance(v, dict))


def fit(task: Task, out_dir: Path, resume: bool = False, max_minutes: float | None = None) -> FitResult:
    """Train ``task`` into ``out_dir`` (see module docstring). ``max_minutes`` overrides ``run.max_minutes``."""
    out_dir = Path(out_dir)
    if task.dist.is_main:
        if (out_dir / LAST).exists() and not resume:
            raise UserError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
        out_dir.mkdir(parents=True, exist_ok=True)
    if task.dist.enabled:
        torch_dist.barrier()
    run = _Run(task, out_dir, max_minutes)
    run.start(resume)
    state = run.state
    if state.finished:
        run.writer.close()
        return run.result("finished")
    sampler = EpochSampler(len(task.train_set), run.run.seed, task.dist, limit=run.steps_per_epoch * run.run.batch_size)
    status = "finished"
    with _StopFlag() as stop:
        try:
            while state.epoch < run.run.epochs:
                stopped = run.train_epoch(sampler, stop)
                if stopped is not None:
                    status = stopped
                    break
                ended = run.end_epoch()
                if ended is not None:
                    status = ended
                    break
        except KeyboardInterrupt:
            run.save(run.last_path)
            run.event("interrupted")
            run.writer.close()
            raise
    if status in ("interrupted", "time_budget"):
        run.save(run.last_path)
    if task.dist.is_main and not (out_dir / BEST).exists() and state.finished:
        with run.averaged():
            run.save(out_dir / BEST)  # no valid selection metric: the last model is the best we have
    run.event(
        status,
        best_metric=state.best_metric,
        best_epoch=state.best_epoch,
        seconds=round(time.time() - run.t_start, 1),
    )
    run.writer.close()
    return run.result(status)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value


def task_state(task: Task) -> dict[str, Any]:
    """Task-specific resume state (e.g. the occlusion task's calibration); tasks may override ``get_state``."""
    getter = getattr(task, "get_state", None)
    return getter() if getter else {}


def _restore(task: Task, ckpt: dict[str, Any], state: RunState) -> None:
    model = unwrap(task.model)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    extra = ckpt.get("extra", {})
    for opt, sd in zip(task.optimizers, extra.get("optimizers", []), strict=False):
        opt.load_state_dict(sd)
    for name, sd in extra.get("aux_modules", {}).items():
        if name in task.aux_modules:
            unwrap(task.aux_modules[name]).load_state_dict(sd)
    state.update(extra.get("train_state", {}))  # a RunState
    if "rng" in extra:
        set_rng_state(extra["rng"])
    setter = getattr(task, "set_state", None)
    if setter and "task_state" in extra:
        setter(extra["task_state"])
    task.threshold = ckpt.get("threshold", task.threshold)


def matching_member(ckpt: dict[str, Any], model: nn.Module, spec: str) -> dict[str, Any]:
    """An FER ensemble's checkpoint (``expression_ensemble``) and a single net to start -> the checkpoint of the first
    member with the same factory whose weights load into ``model`` (its folded BatchNorm names unprefixed); any other
    checkpoint as it is. No matching member is a one-line UserError listing the members."""
    from ofer_live.training.models.expression_ensemble import ENSEMBLE_NAME, member_state

    if ckpt["model_name"] != ENSEMBLE_NAME or model.model_name == ENSEMBLE_NAME:
        return ckpt
    members = list(ckpt["model_kwargs"].get("members", []))
    for index, member in enumerate(members):
        if member["name"] != model.model_name:
            continue
        state = member_state(ckpt["state_dict"], index)
        try:
            model.load_state_dict(state, strict=True)  # only a probe: load_initial_weights loads it again
        except RuntimeError:
            continue
        prefix = f"members.{index}."
        folded = [n[len(prefix) :] for n in ckpt["extra"].get("folded_batchnorm", []) if n.startswith(prefix)]
        log.info("--init-from %s: ensemble member %d (%s %s)", spec, index, member["name"], member.get("kwargs", {}))
        return {
            **ckpt,
            "model_name": member["name"],
            "model_kwargs": dict(member.get("kwargs", {})),
            "state_dict": state,
            "extra": {**ckpt["extra"], "folded_batchnorm": folded},
        }
    described = "; ".join(f"{m['name']} {m.get('kwargs', {})}" for m in members)
    raise UserError(
        f"--init-from {spec}: no member of this ensemble ({described}) matches {model.model_name} {model.model_kwargs}"
    )
