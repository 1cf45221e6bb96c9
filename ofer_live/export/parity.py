"""ONNX-vs-torch parity checks, run through the runtime's own loader (``ofer_live.runtime.loader.load_model``) so
the check exercises exactly what the app runs; a plain ``onnxruntime.InferenceSession`` is the fallback when the
runtime package is unavailable.

Float outputs must match with ``rtol=1e-4, atol=1e-5``. The ``reconstruction`` output is uint8, rounded in-graph:
a float difference of 1e-6 can flip a value sitting at x.5, so uint8 outputs may differ by at most 1 level, on at
most ``uint8_flip_fraction`` of the values.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ofer_live import contracts
from ofer_live.errors import ModelError
from ofer_live.export.onnx_export import example_inputs, model_contract

log = logging.getLogger(__name__)

RTOL = 1e-4
ATOL = 1e-5


class ParityError(ModelError):
    """An exported model's outputs differ from the torch model's."""


def _runner(name: str, path: Path, threads: int):
    """-> callable(*numpy inputs) -> tuple of numpy outputs, through the runtime loader if it exists."""
    try:
        from ofer_live.runtime.loader import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        model = load_model(name, path, ("CPUExecutionProvider",), threads)

        def run_runtime(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
            out = model(*inputs)
            return out if isinstance(out, tuple) else (out,)

        return run_runtime, True
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_names = [i.name for i in contracts.MODEL_SPECS[name].inputs]

    def run_session(*inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(session.run(None, dict(zip(input_names, inputs, strict=True))))

    return run_session, False


def check_parity(
    model: nn.Module,
    path: Path,
    *,
    batches: Sequence[int] = (1, 3),
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
    uint8_flip_fraction: float = 0.01,
    threads: int = 1,
) -> dict[str, float]:
    """Compare ``model`` (torch, eval) with the ONNX file at ``path`` on random contract inputs.

    Returns {"<output>": max abs difference} over all tried batch sizes (different sizes also exercise the dynamic
    batch axis). Raises ParityError naming the file, the output and the difference.
    """
    name = model_contract(model)
    run, via_runtime = _runner(name, Path(path), threads)
    output_names = [t.name for t in contracts.MODEL_SPECS[name].outputs]
    worst: dict[str, float] = dict.fromkeys(output_names, 0.0)
    was_training = model.training
    model.eval()
    try:
        for i, batch in enumerate(batches):
            args = example_inputs(model, batch=batch, seed=seed + i)
            with torch.no_grad():
                ref = model(*args)
            ref = ref if isinstance(ref, tuple) else (ref,)
            got = run(*[a.numpy() for a in args])
            for out_name, r, g in zip(output_names, ref, got, strict=True):
                r = r.numpy()
                if r.shape != g.shape or r.dtype != g.dtype:
                    raise ParityError(
                        f"{path}: output '{out_name}' is {g.shape} {g.dtype}, torch gives {r.shape} {r.dtype}"
                    )
                diff = np.abs(g.astype(np.float64) - r.astype(np.float64))
                worst[out_name] = max(worst[out_name], float(diff.max(initial=0.0)))
                if r.dtype == np.uint8:
                    flips = float((diff > 0).mean()) if diff.size else 0.0
                    if diff.max(initial=0.0) > 1 or flips > uint8_flip_fraction:
                        raise ParityError(
                            f"{path}: output '{out_name}' differs from torch (max {diff.max():.0f} levels, "
                            f"{flips:.2%} of values)"
                        )
                elif not np.allclose(g, r, rtol=rtol, atol=atol):
                    raise ParityError(
                        f"{path}: output '{out_name}' differs from torch (max abs diff {diff.max():.3g}, "
                        f"rtol={rtol}, atol={atol})"
                    )
    finally:
        model.train(was_training)
    log.info("parity ok for %s (%s): %s", path, "runtime loader" if via_runtime else "onnxruntime", worst)
    return worst
