"""int8 variants: `ofer-live export --int8` on the tiny exported models, and `--precision int8` loading them."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from ofer_live import contracts
from ofer_live.config import RuntimeConfig
from ofer_live.errors import ModelError, UserError
from ofer_live.runtime.loader import load_models, resolve_precision


@pytest.fixture(scope="module")
def int8_models_dir(tiny_models_dir, tmp_path_factory):
    from ofer_live.cli import main

    out = tmp_path_factory.mktemp("int8_models")
    shutil.copytree(tiny_models_dir, out, dirs_exist_ok=True)
    assert main(["export", "--int8", "--out", str(out)]) == 0
    return out


def _faces(astronaut_bgr, size, n=3):
    """(n, S, S, 3) uint8 RGB: the astronaut's face and two shifted crops."""
    rgb = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2RGB)
    return np.stack([cv2.resize(rgb[30 + 10 * i : 330 + 10 * i, 100:400], (size, size)) for i in range(n)])


def test_export_int8_writes_variants_into_the_manifest(int8_models_dir):
    manifest = json.loads((int8_models_dir / contracts.MANIFEST_NAME).read_text())["models"]
    for name in (contracts.OCCLUSION, contracts.RECONSTRUCTOR):
        variant = manifest[name]["int8"]
        assert variant["file"] == f"{name}.int8.onnx" and (int8_models_dir / variant["file"]).is_file()
        assert len(variant["sha256"]) == 64
    assert "int8" not in manifest[contracts.EXPRESSION]  # convolutions: no int8 variant (slower here)


def test_int8_loads_where_present_and_stays_close_to_fp32(int8_models_dir, astronaut_bgr):
    with load_models(RuntimeConfig(models_dir=int8_models_dir, precision="int8")) as q:
        assert q.precisions == {"occlusion": "int8", "reconstructor": "int8", "expression": "fp32"}
        assert q.precision == "int8 (occlusion, reconstructor), fp32 (expression)"
        assert q.occlusion.path.name == "occlusion.int8.onnx"
        faces = _faces(astronaut_bgr, q.face_size)
        mask = np.zeros((len(faces), q.patch_grid, q.patch_grid), np.float32)
        mask[:, : q.patch_grid // 2] = 1.0
        q_scores = q.occlusion(faces)
        q_recon, q_latents = q.reconstructor(faces, mask)
    with load_models(RuntimeConfig(models_dir=int8_models_dir, precision="fp32")) as f:
        assert f.precision == "fp32" and f.occlusion.path.name == "occlusion.onnx"
        scores = f.occlusion(faces)
        recon, latents = f.reconstructor(faces, mask)
    assert q_scores.shape == scores.shape and not np.array_equal(q_scores, scores)  # really another graph
    assert np.corrcoef(q_scores.ravel(), scores.ravel())[0, 1] > 0.95
    assert np.abs(q_recon.astype(int) - recon.astype(int)).mean() < 4.0  # grey levels
    np.testing.assert_array_equal(q_recon[:, q.face_size // 2 :], faces[:, q.face_size // 2 :])  # visible kept
    assert np.corrcoef(q_latents.ravel(), latents.ravel())[0, 1] > 0.95


def test_a_modified_int8_file_is_refused_naming_its_manifest_field(int8_models_dir, tmp_path):
    shutil.copytree(int8_models_dir, tmp_path / "m")
    path = tmp_path / "m" / "occlusion.int8.onnx"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelError, match=r"occlusion\.int8\.onnx: sha256 .* 'models\.occlusion\.int8\.sha256'"):
        load_models(RuntimeConfig(models_dir=tmp_path / "m", precision="int8"))
    with load_models(RuntimeConfig(models_dir=tmp_path / "m", precision="fp32")) as fp32:  # never reads the int8 file
        assert fp32.precision == "fp32"


def test_int8_without_variants_loads_fp32_and_bad_precision_is_one_line(tiny_models_dir):
    with load_models(RuntimeConfig(models_dir=tiny_models_dir, precision="int8")) as models:
        assert models.precision == "fp32"
    with pytest.raises(UserError, match=r"RuntimeConfig\.precision must be one of auto, fp32, int8, got 'int4'"):
        RuntimeConfig(precision="int4")


def test_auto_precision_is_int8_on_the_cpu_and_fp32_on_a_gpu(int8_models_dir):
    assert RuntimeConfig().precision == "auto"
    with load_models(RuntimeConfig(models_dir=int8_models_dir)) as models:  # this machine: the CPU provider
        assert models.provider == "CPUExecutionProvider"
        assert models.precisions == {"occlusion": "int8", "reconstructor": "int8", "expression": "fp32"}
    assert resolve_precision("auto", ["CPUExecutionProvider"]) == "int8"
    assert resolve_precision("auto", ["cpu"]) == "int8"
    assert resolve_precision("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "fp32"
    assert resolve_precision("auto", ["cuda:1", "CPUExecutionProvider"]) == "fp32"
    assert resolve_precision("fp32", ["CPUExecutionProvider"]) == "fp32"


def test_reexport_drops_the_stale_variant(int8_models_dir, tmp_path, capsys):
    """Re-exporting a model leaves its old int8 file unlisted (it would not match), and says so."""
    import torch

    from ofer_live.cli import main
    from ofer_live.training.checkpoint import save_checkpoint
    from ofer_live.training.models import create_model

    shutil.copytree(int8_models_dir, tmp_path / "m")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "occ.pt", create_model("vit_svdd_tiny"), metrics={}, trained_on="test", preset="tiny")
    assert main(["export", "--runs", str(tmp_path / "occ.pt"), "--out", str(tmp_path / "m")]) == 0
    assert "int8 variants of occlusion were dropped" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "m" / contracts.MANIFEST_NAME).read_text())["models"]
    assert "int8" not in manifest["occlusion"] and "int8" in manifest["reconstructor"]
