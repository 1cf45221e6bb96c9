"""The exporter: tiny fixture files follow the contract, ONNX matches torch, checkpoints export via the CLI."""

from __future__ import annotations

import json

import onnx
import onnxruntime as ort
import pytest
import torch

from ofer_live import contracts
from ofer_live.errors import ModelError
from ofer_live.export.onnx_export import (
    export_model,
    make_model_metadata,
    onnx_io,
    read_metadata,
    sha256_file,
)
from ofer_live.export.parity import check_parity
from ofer_live.export.tiny import TRAINED_ON, build_tiny_models
from ofer_live.training.checkpoint import build_model, find_checkpoint, load_checkpoint, save_checkpoint
from ofer_live.training.models import create_model


@pytest.fixture(scope="module")
def tiny_torch_models():
    return build_tiny_models()


def test_tiny_files_follow_the_contract(tiny_models_dir):
    manifest = json.loads((tiny_models_dir / contracts.MANIFEST_NAME).read_text())
    assert manifest["schema"] == 1
    assert sorted(manifest["models"]) == sorted(contracts.MODEL_NAMES)
    for name in contracts.MODEL_NAMES:
        entry = manifest["models"][name]
        path = tiny_models_dir / entry["file"]
        assert entry["file"] == contracts.MODEL_FILES[name]
        assert entry["sha256"] == sha256_file(path)
        assert entry["trained_on"] == TRAINED_ON and entry["preset"] == "tiny" and entry["metrics"] == {}
        meta = read_metadata(path)
        contracts.validate_metadata(meta, name, str(path))
        assert (meta["face_size"], meta["patch_grid"], meta["latent_dim"]) == (32, 4, 16)
        assert meta["threshold"] == 1.0 and meta["trained_on"] == TRAINED_ON
        proto = onnx.load(str(path))
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert all(t.data_location == onnx.TensorProto.DEFAULT for t in proto.graph.initializer)  # single file
        inputs, outputs = onnx_io(proto)
        contracts.check_io(name, inputs, outputs, meta, str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_modelmeta().custom_metadata_map[contracts.METADATA_KEY]
        assert all(isinstance(i.shape[0], str) for i in session.get_inputs())  # dynamic batch


@pytest.mark.parametrize("name", contracts.MODEL_NAMES)
def test_parity_with_torch(tiny_models_dir, tiny_torch_models, name):
    """The fixture is seeded: rebuilding gives the same weights, so its files must match torch."""
    worst = check_parity(tiny_torch_models[name], tiny_models_dir / contracts.MODEL_FILES[name], batches=(1, 2, 5))
    assert set(worst) == {t.name for t in contracts.MODEL_SPECS[name].outputs}


def test_expression_cnn_only_variant_keeps_latents_input(tmp_path):
    torch.manual_seed(0)
    model = create_model("expression_tiny", latent_mode="none").eval()
    path = export_model(model, "expression", tmp_path / "e.onnx", make_model_metadata(model))
    check_parity(model, path)


def test_export_rejects_the_wrong_contract_name(tmp_path):
    model = create_model("vit_svdd_tiny")
    with pytest.raises(ValueError, match="not 'expression'"):
        export_model(model, "expression", tmp_path / "x.onnx", make_model_metadata(model))


def test_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = create_model("vit_svdd_tiny", rep_dim=8)
    model.set_radius(2.5)
    path = save_checkpoint(
        tmp_path / "run" / "best.pt", model, metrics={"auc": 0.9}, trained_on="synthetic", preset="tiny", threshold=1.0
    )
    assert find_checkpoint(tmp_path / "run") == path
    ckpt = load_checkpoint(path)
    assert ckpt["model_name"] == "vit_svdd_tiny" and ckpt["model_kwargs"] == {"rep_dim": 8}
    rebuilt = build_model(ckpt)
    face = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(rebuilt(face), model.eval()(face))
    assert float(rebuilt.radius_sq) == 2.5


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"model_name": "vit_svdd_tiny"}, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="'model_kwargs' is missing"):
        load_checkpoint(tmp_path / "bad.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no checkpoint"):
        find_checkpoint(tmp_path / "empty")


def test_export_command_end_to_end(tmp_path, tiny_torch_models):
    from ofer_live.cli import main
    from ofer_live.config import RuntimeConfig
    from ofer_live.runtime.loader import load_models

    runs = []
    for name, model in tiny_torch_models.items():
        run = tmp_path / f"run_{name}"
        save_checkpoint(
            run / "last.pt",
            model,
            metrics={"score": 1.0},
            trained_on=f"synthetic {name}",
            preset="tiny",
            threshold=1.0 if name == contracts.OCCLUSION else None,
            model_name=f"{model.model_name}",
            model_kwargs={},
        )
        runs.append(str(run))
    out = tmp_path / "exported"
    assert main(["export", "--runs", *runs, "--out", str(out)]) == 0
    models = load_models(RuntimeConfig(models_dir=out, providers=("CPUExecutionProvider",)))
    try:
        assert models.threshold == 1.0
        assert models.expression.metadata["trained_on"] == "synthetic expression"
        assert models.expression.metadata["metrics"] == {"score": 1.0}
    finally:
        models.close()
    manifest = json.loads((out / contracts.MANIFEST_NAME).read_text())
    assert manifest["models"]["occlusion"]["preset"] == "tiny"
    # re-exporting a single model keeps the other two in the manifest
    assert main(["export", "--runs", runs[0], "--out", str(out)]) == 0
    manifest = json.loads((out / contracts.MANIFEST_NAME).read_text())
    assert sorted(manifest["models"]) == sorted(contracts.MODEL_NAMES)


def test_export_command_errors(tmp_path, capsys):
    from ofer_live.cli import main

    assert main(["export", "--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_cost_helpers(tiny_models_dir, tiny_torch_models):
    from ofer_live.export.cost import model_cost, ort_latency_ms

    model = tiny_torch_models[contracts.RECONSTRUCTOR]
    cost = model_cost(model)
    assert cost["params"] == sum(p.numel() for p in model.parameters()) and cost["gflops"] > 0
    latency = ort_latency_ms(tiny_models_dir / contracts.MODEL_FILES[contracts.RECONSTRUCTOR], model, runs=3)
    assert 0 < latency["min_ms"] <= latency["median_ms"]


def test_cost_of_a_fer_net_variant_and_model_option_parsing():
    from ofer_live.errors import UserError
    from ofer_live.export.bundle import parse_model_options
    from ofer_live.export.cost import preset_costs

    options = parse_model_options(["trunk=vgg8", "widths=[8, 16, 32, 64]", "flip_average=true"])
    assert options == {"trunk": "vgg8", "widths": [8, 16, 32, 64], "flip_average": True}
    with pytest.raises(UserError, match="--expression expects KEY=VALUE, got 'vgg8'"):
        parse_model_options(["vgg8"], "--expression")
    plain = preset_costs("tiny", runs=1)[contracts.EXPRESSION]
    vgg = preset_costs("tiny", runs=1, overrides={contracts.EXPRESSION: {"trunk": "vgg8"}})[contracts.EXPRESSION]
    assert vgg["model"] == plain["model"] == "expression_tiny"
    assert vgg["params"] != plain["params"] and vgg["gflops"] > 0
