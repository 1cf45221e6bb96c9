"""Hand-built contract-following ONNX graphs (onnx.helper) for runtime-only checks.

Small on purpose: just enough arithmetic for outputs of the right names, dtypes and shapes, plus knobs
that break one thing at a time (an I/O name, a dtype, a fixed batch axis, a metadata field).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from ofer_live import contracts as C  # noqa: E402

_TYPES = {"uint8": TensorProto.UINT8, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}


def _const(name: str, value: Any, dtype: Any = np.int64) -> Any:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, dtype), name))


def build_model(
    kind: str,
    S: int = 32,
    G: int = 4,
    D: int = 16,
    *,
    meta: dict[str, Any] | None = None,
    drop_field: str | None = None,
    rename: dict[str, str] | None = None,
    dtypes: dict[str, str] | None = None,
    batch: int | str = "N",
) -> bytes:
    """Serialised ONNX model ``kind`` (occlusion/reconstructor/expression) following the contract.

    meta: metadata overrides; drop_field: remove one metadata field ('*' drops the whole key);
    rename: tensor name -> declared name; dtypes: tensor name -> declared dtype; batch: 'N' or a fixed int.
    """
    rename, dtypes = rename or {}, dtypes or {}
    P = S // G
    nodes = [
        _const("shp_patch", [-1, G, P, G, P, 3]),
        helper.make_node("Cast", [C.FACE], ["facef"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["facef", "shp_patch"], ["patches"]),
        helper.make_node("ReduceMean", ["patches"], ["pm"], axes=[2, 4, 5], keepdims=0),  # (N,G,G)
        _const("scale", 1.0 / 128.0, np.float32),
        helper.make_node("Mul", ["pm", "scale"], ["pmean"]),  # (N,G,G) in [0, 2]
    ]
    if kind == C.OCCLUSION:
        nodes.append(helper.make_node("Identity", ["pmean"], [C.PATCH_SCORE]))
    elif kind == C.RECONSTRUCTOR:
        nodes += [
            helper.make_node("Identity", [C.FACE], [C.RECONSTRUCTION]),
            helper.make_node("Add", ["pmean", C.MASK], ["lat0"]),
            _const("shp_lat", [-1, G * G, 1]),
            helper.make_node("Reshape", ["lat0", "shp_lat"], ["lat1"]),
            _const("shp_exp", [1, 1, D]),
            helper.make_node("Expand", ["lat1", "shp_exp"], [C.LATENTS]),
        ]
    elif kind == C.EXPRESSION:
        weights = np.linspace(-1, 1, G * G * C.NUM_CLASSES, dtype=np.float32).reshape(G * G, C.NUM_CLASSES)
        nodes += [
            helper.make_node("ReduceMean", [C.LATENTS], ["lm"], axes=[2], keepdims=0),  # (N,GG)
            _const("w", weights, np.float32),
            helper.make_node("MatMul", ["lm", "w"], ["l0"]),
            helper.make_node("ReduceMean", ["pmean"], ["fm0"], axes=[2], keepdims=0),  # (N,G)
            helper.make_node("ReduceMean", ["fm0"], ["fm"], axes=[1], keepdims=1),  # (N,1)
            helper.make_node("Add", ["l0", "fm"], [C.LOGITS]),
            _const("shp_cam", [-1, G, G]),
            helper.make_node("Reshape", ["lm", "shp_cam"], ["cam0"]),
            helper.make_node("Sigmoid", ["cam0"], [C.CAM]),
        ]
    spec = C.MODEL_SPECS[kind]
    sizes = {"N": batch, "S": S, "G": G, "GG": G * G, "D": D, "C": C.NUM_CLASSES, "3": 3}

    def info(t: C.TensorSpec) -> Any:
        shape = [sizes[s] for s in t.shape]
        return helper.make_tensor_value_info(rename.get(t.name, t.name), _TYPES[dtypes.get(t.name, t.dtype)], shape)

    for t in spec.outputs:  # a declared output dtype override gets a Cast so the graph stays valid
        if t.name in dtypes:
            for node in nodes:
                node.output[:] = [f"{o}_raw" if o == t.name else o for o in node.output]
            nodes.append(helper.make_node("Cast", [f"{t.name}_raw"], [t.name], to=_TYPES[dtypes[t.name]]))
    for old, new in rename.items():  # keep the graph wired under the declared names
        for node in nodes:
            node.input[:] = [new if i == old else i for i in node.input]
            node.output[:] = [new if o == old else o for o in node.output]
    graph = helper.make_graph(nodes, kind, [info(t) for t in spec.inputs], [info(t) for t in spec.outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    metadata = C.make_metadata(kind, face_size=S, patch_grid=G, latent_dim=D, threshold=0.9)
    metadata.update(meta or {})
    if drop_field is not None and drop_field != "*":
        metadata.pop(drop_field)
    if drop_field != "*":
        helper.set_model_props(model, {C.METADATA_KEY: json.dumps(metadata)})
    return model.SerializeToString()


def write_model_dir(out: Path, overrides: dict[str, dict[str, Any]] | None = None, **common: Any) -> Path:
    """Write the three models + manifest.json into ``out``; ``overrides[kind]`` go to build_model(kind)."""
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for kind in C.MODEL_NAMES:
        data = build_model(kind, **{**common, **(overrides or {}).get(kind, {})})
        (out / C.MODEL_FILES[kind]).write_bytes(data)
        entries[kind] = {"file": C.MODEL_FILES[kind], "sha256": hashlib.sha256(data).hexdigest(), "preset": "test"}
    (out / C.MANIFEST_NAME).write_text(json.dumps({"schema": 1, "models": entries}))
    return out


@pytest.fixture
def make_model_dir(tmp_path: Path):
    """make_model_dir(overrides=None, **build_model kwargs) -> a fresh models folder."""
    counter = iter(range(1000))

    def make(overrides: dict[str, dict[str, Any]] | None = None, **common: Any) -> Path:
        return write_model_dir(tmp_path / f"models{next(counter)}", overrides, **common)

    return make
