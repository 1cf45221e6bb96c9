"""Torch <-> ONNX weights: the one tracing call the exporter uses, and its inverse, so a run can start from a shipped
``.onnx`` file when no torch checkpoint is at hand (``--init-from exported_models/expression.onnx``).

The TorchScript exporter renames and rewrites some weights while it folds constants:

- a ``Linear`` weight used by ``MatMul`` is stored transposed, as ``onnx::MatMul_<n>``;
- a ``Conv2d`` followed by ``BatchNorm2d`` is fused into one ``Conv`` (weight ``W * g / sqrt(v + eps)``, bias
  ``beta - mean * g / sqrt(v + eps)``), so the BatchNorm's four tensors are gone.

``checkpoint_from_onnx`` undoes this without guessing names. It builds the same architecture, fills every tensor of
a probe copy with distinct random values, traces the probe with the same exporter, and finds for each initializer of
the probe's graph the torch tensor (and transform) it came from, by value. The n-th initializer used by the graph
of the shipped file is then the same tensor as the n-th one of the probe's. A fused convolution comes back as the
fused weight and bias with an identity BatchNorm (mean 0, variance 1 - eps, scale 1), which computes exactly the
shipped function in eval mode; ``recalibrate_folded_batchnorm`` then gives those BatchNorms the real batch
statistics of training faces without changing the eval-mode function, so train mode starts where eval mode is.

The imported module is checked against the file with ONNX Runtime before it is returned.
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from ofer_live import contracts
from ofer_live.errors import ModelError

log = logging.getLogger(__name__)

OPSET = 17
BATCH_AXIS = "N"
INPUT_NAMES = {name: tuple(t.name for t in spec.inputs) for name, spec in contracts.MODEL_SPECS.items()}
OUTPUT_NAMES = {name: tuple(t.name for t in spec.outputs) for name, spec in contracts.MODEL_SPECS.items()}


def example_inputs(model: nn.Module, batch: int = 2, seed: int = 0) -> tuple[Tensor, ...]:
    """Random contract inputs for ``model``: face (B, S, S, 3) uint8 [, mask (B, G, G) float | latents (B, G*G, D)]."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    s, g, d = cfg.face_size, cfg.patch_grid, cfg.latent_dim
    face = torch.randint(0, 256, (batch, s, s, 3), generator=gen, dtype=torch.uint8)
    if cfg.contract == contracts.OCCLUSION:
        return (face,)
    if cfg.contract == contracts.RECONSTRUCTOR:
        return face, (torch.rand(batch, g, g, generator=gen) < 0.3).to(torch.float32)
    return face, torch.randn(batch, g * g, d, generator=gen)


def trace_to_onnx(model: nn.Module, name: str, opset: int = OPSET, batch: int = 2) -> onnx.ModelProto:
    """Trace ``model`` (contract ``name``, in eval mode) to an ONNX graph with the contract's I/O names and a
    dynamic batch axis: the TorchScript exporter with constant folding. ``export_model`` and the weight importer
    both call this, so they see the same graph."""
    was_training = model.training
    model.eval()
    inputs, outputs = list(INPUT_NAMES[name]), list(OUTPUT_NAMES[name])
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                model,
                example_inputs(model, batch=batch),
                buffer,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes={n: {0: BATCH_AXIS} for n in inputs + outputs},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return onnx.load_from_string(buffer.getvalue())


# ---------------------------------------------------------------------------------------------------------------
# ONNX -> torch
# ---------------------------------------------------------------------------------------------------------------


def _weight_aliases(proto: onnx.ModelProto) -> dict[str, str]:
    """{name: initializer} for the initializers themselves and for Identity nodes that forward one (the exporter
    writes those when it merges equal initializers)."""
    aliases = {init.name: init.name for init in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in aliases:
            aliases[node.output[0]] = aliases[node.input[0]]
    return aliases


def _is_weight_identity(node: onnx.NodeProto, aliases: dict[str, str]) -> bool:
    return node.op_type == "Identity" and node.input[0] in aliases


def initializer_slots(proto: onnx.ModelProto) -> tuple[list[str], dict[str, np.ndarray]]:
    """-> (the initializer read at each node input that reads one, in node order; {name: value}).

    The slots, not the initializers, line two traces of one architecture up: the exporter merges initializers
    of equal value (the all-ones LayerNorm scales of an untrained model, say) behind Identity nodes, which changes
    the initializer list but not the other nodes and their inputs.
    """
    aliases = _weight_aliases(proto)
    slots = [
        aliases[name]
        for node in proto.graph.node
        if not _is_weight_identity(node, aliases)
        for name in node.input
        if name in aliases
    ]
    return slots, {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}


def _op_types(proto: onnx.ModelProto) -> list[str]:
    aliases = _weight_aliases(proto)
    return [node.op_type for node in proto.graph.node if not _is_weight_identity(node, aliases)]


def conv_batchnorm_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, batchnorm name) for each BatchNorm2d registered right after a Conv2d of matching width."""
    pairs, last_conv = [], None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            last_conv = (name, module)
        elif isinstance(module, nn.BatchNorm2d):
            if last_conv is not None and last_conv[1].out_channels == module.num_features:
                pairs.append((last_conv[0], name))
            last_conv = None
    return pairs


def _fused(state: dict[str, Tensor], conv: str, bn: str, eps: float) -> tuple[np.ndarray, np.ndarray]:
    scale = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + eps)
    weight = state[f"{conv}.weight"] * scale[:, None, None, None]
    bias = state.get(f"{conv}.bias", torch.zeros_like(scale))
    bias = (bias - state[f"{bn}.running_mean"]) * scale + state[f"{bn}.bias"]
    return weight.numpy(), bias.numpy()


def _randomise(model: nn.Module, seed: int = 1234) -> dict[str, Tensor]:
    """Fill every float tensor of ``model``'s state dict with distinct random values (variances positive)."""
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
        else:
            value.copy_(torch.randn(value.shape, generator=gen))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5)


def weight_map(model: nn.Module, name: str) -> tuple[list[tuple[str, tuple[str, ...], np.ndarray]], list[str]]:
    """-> (for each initializer slot of the traced ``model``: (transform, torch keys, probe value); the graph's op
    types in node order).

    Transforms: ``copy``, ``transpose`` (Linear in MatMul), ``reshape``, ``fused_weight`` / ``fused_bias``
    (conv, batchnorm), ``constant`` (no learnable tensor: a folded constant that must equal the file's).
    """
    probe = copy.deepcopy(model).eval()
    state = _randomise(probe)
    pairs = conv_batchnorm_pairs(probe)
    bns = {bn: probe.get_submodule(bn).eps for _, bn in pairs}
    fused = {pair: _fused(state, *pair, bns[pair[1]]) for pair in pairs}
    floats = {k: v.numpy() for k, v in state.items() if v.is_floating_point()}
    proto = trace_to_onnx(probe, name)
    slots, values = initializer_slots(proto)
    sources: dict[str, tuple[str, tuple[str, ...], np.ndarray]] = {}
    for init_name, value in values.items():
        found: tuple[str, tuple[str, ...]] = ("constant", ())
        for key, tensor in floats.items():
            if _close(value, tensor):
                found = ("copy", (key,))
            elif tensor.ndim == 2 and _close(value, tensor.T):
                found = ("transpose", (key,))
            elif (
                value.size == tensor.size
                and value.shape != tensor.shape
                and _close(value.reshape(-1), tensor.reshape(-1))
            ):
                found = ("reshape", (key,))
            if found[0] != "constant":
                break
        else:
            for (conv, bn), (w, b) in fused.items():
                if _close(value, w):
                    found = ("fused_weight", (conv, bn))
                elif _close(value, b):
                    found = ("fused_bias", (conv, bn))
                if found[0] != "constant":
                    break
        sources[init_name] = (*found, value)
    return [sources[slot] for slot in slots], _op_types(proto)


def checkpoint_from_onnx(path: str | Path, verify: bool = True) -> dict[str, Any]:
    """An exported model file -> a checkpoint dict (the ``training.checkpoint`` format) with its weights.

    ``extra["folded_batchnorm"]`` lists the BatchNorms that came back as identities (see the module docstring);
    ``extra["not_in_onnx"]`` the learnable tensors the graph does not use (left at their initial values).
    Raises ModelError for a file of another architecture, or one whose weights cannot all be recovered.
    """
    from ofer_live.training.models import create_model

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a broken file
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    raw = {p.key: p.value for p in proto.metadata_props}.get(contracts.METADATA_KEY)
    meta = contracts.parse_metadata(raw, str(path))
    arch = meta.get("architecture")
    kwargs = dict(meta.get("model_kwargs", {}))
    try:
        model = create_model(str(arch), **kwargs).eval()
    except (KeyError, TypeError):
        raise ModelError(f"{path}: its architecture {arch!r} {kwargs} is not one this version can build") from None
    name = model.config.contract
    mapping, ops = weight_map(model, name)
    slots, values = initializer_slots(proto)
    if _op_types(proto) != ops or len(slots) != len(mapping):
        raise ModelError(
            f"{path}: its graph differs from a fresh {arch} export; it was exported from another "
            "architecture or exporter"
        )
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    covered: set[str] = set()
    folded: list[str] = []
    for (transform, keys, probe_value), init_name in zip(mapping, slots, strict=True):
        value = torch.from_numpy(np.array(values[init_name], copy=True))
        if transform == "constant":
            if not _close(value.numpy(), probe_value):
                raise ModelError(f"{path}: weight {init_name} matches no tensor of {arch}")
            continue
        if transform in ("copy", "transpose", "reshape"):
            target = state[keys[0]]
            value = value.T if transform == "transpose" else value
            if value.numel() != target.numel():
                raise ModelError(
                    f"{path}: weight {init_name} has shape {tuple(value.shape)}, {arch} needs "
                    f"{tuple(target.shape)} for {keys[0]}"
                )
            state[keys[0]] = value.reshape(target.shape).to(target.dtype)
            covered.add(keys[0])
            continue
        conv, bn = keys
        if transform == "fused_weight":
            state[f"{conv}.weight"] = value.to(state[f"{conv}.weight"].dtype).reshape(state[f"{conv}.weight"].shape)
            covered.add(f"{conv}.weight")
        else:
            eps = model.get_submodule(bn).eps
            if f"{conv}.bias" in state:
                state[f"{conv}.bias"].zero_()
                covered.add(f"{conv}.bias")
            state[f"{bn}.bias"] = value.reshape(state[f"{bn}.bias"].shape)
            state[f"{bn}.weight"] = torch.ones_like(state[f"{bn}.weight"])
            state[f"{bn}.running_mean"] = torch.zeros_like(state[f"{bn}.running_mean"])
            state[f"{bn}.running_var"] = torch.full_like(state[f"{bn}.running_var"], 1.0 - eps)
            covered.update(f"{bn}.{k}" for k in ("weight", "bias", "running_mean", "running_var"))
            if bn not in folded:
                folded.append(bn)
    if "center_initialized" in state:  # the SVDD centre came from the file
        state["center_initialized"] = torch.ones_like(state["center_initialized"])
    learnable = {k for k, _ in model.named_parameters()}
    missing = sorted(k for k in learnable if k not in covered)
    model.load_state_dict(state, strict=True)
    if verify:
        verify_against_onnx(model, path)
    if missing:
        log.warning(
            "%s: %d learnable tensors are not in the graph and keep their initial values: %s",
            path,
            len(missing),
            ", ".join(missing[:5]),
        )
    metrics = meta.get("metrics", {})
    return {
        "format": 1,
        "model_name": str(arch),
        "model_kwargs": kwargs,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "metrics": dict(metrics) if isinstance(metrics, dict) else {},
        "trained_on": str(meta.get("trained_on", "unknown")),
        "preset": str(meta.get("preset", "unknown")),
        "threshold": float(meta.get("threshold", 1.0)) if name == contracts.OCCLUSION else None,
        "extra": {"folded_batchnorm": folded, "not_in_onnx": missing, "source": str(path)},
    }


def verify_against_onnx(model: nn.Module, path: Path, rtol: float = 1e-3, atol: float = 1e-4) -> None:
    """ModelError unless ``model`` (eval) and ONNX Runtime on ``path`` agree on random contract inputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed: %s was imported without a check", path)
        return
    name = model.config.contract
    inputs = example_inputs(model, batch=2, seed=7)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {n: t.numpy() for n, t in zip(INPUT_NAMES[name], inputs, strict=True)}
    expected = session.run(None, feeds)
    with torch.no_grad():
        got = model.eval()(*inputs)
    got = got if isinstance(got, tuple) else (got,)
    for out_name, want, have in zip(OUTPUT_NAMES[name], expected, got, strict=True):
        have = have.numpy()
        if want.dtype == np.uint8:
            ok = np.abs(want.astype(int) - have.astype(int)).max() <= 1
        else:
            ok = np.allclose(want, have, rtol=rtol, atol=atol)
        if not ok:
            raise ModelError(f"{path}: the imported weights do not reproduce output {out_name!r}")


@torch.no_grad()
def recalibrate_folded_batchnorm(
    model: nn.Module, names: Sequence[str], run: Callable[[Any], None], batches: Iterable[Any] = (None,)
) -> None:
    """Give the identity BatchNorms ``names`` (from ``checkpoint_from_onnx``) the statistics of real inputs while
    keeping the eval-mode function: mean m, variance v, scale sqrt(v + eps), shift b + m.

    ``run(batch)`` runs ``model`` (in eval mode) on one batch; the per-channel statistics of each BatchNorm's input
    are pooled over all ``batches``.
    """
    if not names:
        return
    sums: dict[str, list[Tensor]] = {n: [] for n in names}
    hooks = []
    for bn_name in names:

        def hook(module, inputs, output, key=bn_name):
            x = inputs[0].float()
            sums[key].append(torch.stack([x.mean(dim=(0, 2, 3)), (x * x).mean(dim=(0, 2, 3))]))

        hooks.append(model.get_submodule(bn_name).register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            run(batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    for bn_name in names:
        if not sums[bn_name]:
            continue
        bn = model.get_submodule(bn_name)
        moments = torch.stack(sums[bn_name]).mean(dim=0)
        mean, var = moments[0], (moments[1] - moments[0] ** 2).clamp(min=1e-6)
        shift = bn.bias.detach().clone()  # the identity BatchNorm's output is x + shift
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(shift + mean)
    log.info("recalibrated %d folded BatchNorms on real inputs", len(names))
