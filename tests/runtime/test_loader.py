"""load_models: checksums, contract checks, cross-model agreement; one-line errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ofer_live import contracts as C
from ofer_live.config import RuntimeConfig
from ofer_live.errors import ModelError
from ofer_live.runtime import check_models, load_models


def _load(models_dir: Path, **kw):
    return load_models(RuntimeConfig(models_dir=models_dir, **kw))


def _error(models_dir: Path, **kw) -> str:
    with pytest.raises(ModelError) as info:
        _load(models_dir, **kw)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_loads_and_reports(make_model_dir):
    with _load(make_model_dir(), intra_op_threads=1) as models:
        assert models.provider == "CPUExecutionProvider"
        assert (models.face_size, models.patch_grid, models.latent_dim) == (32, 4, 16)
        assert models.threshold == pytest.approx(0.9)
        assert all(m.sha256 and len(m.sha256) == 64 for m in models.all())


def test_batched_calls_and_shapes(make_model_dir):
    models = _load(make_model_dir())
    faces = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    score = models.occlusion(faces)
    assert score.shape == (3, 4, 4) and score.dtype == np.float32
    recon, latents = models.reconstructor(faces, score > 1.0)
    assert recon.shape == (3, 32, 32, 3) and recon.dtype == np.uint8
    assert latents.shape == (3, 16, 16) and latents.dtype == np.float32
    logits, cam = models.expression(recon, latents)
    assert logits.shape == (3, 7) and cam.shape == (3, 4, 4)
    # one batch == the same faces one by one
    single = np.concatenate([models.occlusion(faces[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(single, score, rtol=1e-6)


def test_empty_batch_never_calls_ort(make_model_dir, monkeypatch):
    models = _load(make_model_dir())

    class Boom:
        def run(self, *a, **k):
            raise AssertionError("ORT must not run for N=0")

    for m in models.all():
        monkeypatch.setattr(m, "_session", Boom())
    none = np.zeros((0, 32, 32, 3), np.uint8)
    assert models.occlusion(none).shape == (0, 4, 4)
    recon, latents = models.reconstructor(none, np.zeros((0, 4, 4), np.float32))
    assert recon.shape == (0, 32, 32, 3) and recon.dtype == np.uint8 and latents.shape == (0, 16, 16)
    logits, cam = models.expression(none, latents)
    assert logits.shape == (0, 7) and logits.dtype == np.float32 and cam.shape == (0, 4, 4)


def test_wrong_input_shape_is_a_programming_error(make_model_dir):
    models = _load(make_model_dir())
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\) uint8"):
        models.occlusion(np.zeros((1, 31, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        models.occlusion(np.zeros((1, 32, 32, 3), np.float32))


def test_missing_models_dir(tmp_path):
    assert "models folder not found" in _error(tmp_path / "nope")


def test_missing_manifest(make_model_dir):
    d = make_model_dir()
    (d / "manifest.json").unlink()
    message = _error(d)
    assert "manifest.json: file not found" in message
    # ... which is fine when checksums are off
    _load(d, verify_checksums=False).close()


def test_manifest_not_json(make_model_dir):
    d = make_model_dir()
    (d / "manifest.json").write_text("{oops")
    assert "manifest.json: not valid JSON" in _error(d)


def test_manifest_entry_missing(make_model_dir):
    d = make_model_dir()
    manifest = json.loads((d / "manifest.json").read_text())
    del manifest["models"]["reconstructor"]
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert "field 'models.reconstructor' is missing" in _error(d)


def test_manifest_sha_missing(make_model_dir):
    d = make_model_dir()
    manifest = json.loads((d / "manifest.json").read_text())
    del manifest["models"]["expression"]["sha256"]
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert "field 'models.expression.sha256' is missing" in _error(d)


def test_missing_model_file(make_model_dir):
    d = make_model_dir()
    (d / "expression.onnx").unlink()
    message = _error(d)
    assert "expression.onnx: model file not found" in message


def test_empty_model_file(make_model_dir):
    d = make_model_dir()
    (d / "occlusion.onnx").write_bytes(b"")
    assert "occlusion.onnx: file is empty" in _error(d)


def test_tampered_model(make_model_dir):
    d = make_model_dir()
    data = bytearray((d / "reconstructor.onnx").read_bytes())
    data[-1] ^= 0xFF
    (d / "reconstructor.onnx").write_bytes(bytes(data))
    message = _error(d)
    assert "reconstructor.onnx: sha256" in message
    assert "'models.reconstructor.sha256'" in message


def _rewrite(d: Path, kind: str, data: bytes) -> None:
    """Replace one model file and keep the manifest consistent (so the contract check is what fails)."""
    import hashlib

    (d / C.MODEL_FILES[kind]).write_bytes(data)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["models"][kind]["sha256"] = hashlib.sha256(data).hexdigest()
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_not_an_onnx_file(make_model_dir):
    d = make_model_dir()
    _rewrite(d, "occlusion", b"this is not a protobuf at all")
    assert "occlusion.onnx: onnxruntime cannot load it" in _error(d)


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("occlusion", {"rename": {"face": "image"}}, "input names are ['image'], expected ['face']"),
        ("reconstructor", {"rename": {"latents": "tokens"}}, "output names are"),
        ("occlusion", {"dtypes": {"face": "float32"}}, "input 'face' has dtype float32, expected uint8"),
        ("expression", {"dtypes": {"cam": "float64"}}, "output 'cam' has dtype float64, expected float32"),
        ("occlusion", {"batch": 1}, "axis 0 (batch) is fixed at 1, expected dynamic"),
        ("expression", {"drop_field": "threshold"}, "metadata field 'threshold' is missing"),
        ("reconstructor", {"drop_field": "*"}, "metadata key 'ofer_live' is missing"),
        ("expression", {"meta": {"model": "occlusion"}}, "metadata field 'model' is 'occlusion'"),
        ("occlusion", {"meta": {"labels": ["a"] * 7}}, "metadata field 'labels'"),
    ],
)
def test_wrong_contract(make_model_dir, kind, kwargs, expected):
    d = make_model_dir(overrides={kind: kwargs})
    message = _error(d)
    assert f"{C.MODEL_FILES[kind]}:" in message
    assert expected in message


def test_models_must_agree(make_model_dir):
    d = make_model_dir(overrides={"expression": {"D": 8}})
    message = _error(d)
    assert "expression.onnx: metadata field 'latent_dim' is 8, but occlusion.onnx has 16" in message


def test_wrong_output_size_at_run_time(make_model_dir, monkeypatch):
    # a model whose declared shapes pass but whose actual output does not (e.g. all axes symbolic)
    models = _load(make_model_dir())
    real = models.occlusion.session

    class Lying:
        def get_providers(self):
            return real.get_providers()

        def run(self, names, feeds):
            return [np.zeros((1, 5, 5), np.float32)]

    monkeypatch.setattr(models.occlusion, "_session", Lying())
    with pytest.raises(ModelError, match=r"occlusion.onnx: output 'patch_score' has shape \(1, 5, 5\), expected"):
        models.occlusion(np.zeros((1, 32, 32, 3), np.uint8))


def test_unknown_provider_when_loading(make_model_dir):
    message = _error(make_model_dir(), providers=("NoSuchExecutionProvider",))
    assert "NoSuchExecutionProvider is not available" in message and "CPUExecutionProvider" in message


def test_check_models_reports_each_file(make_model_dir):
    d = make_model_dir()
    data = bytearray((d / "expression.onnx").read_bytes())
    data[-1] ^= 0xFF
    (d / "expression.onnx").write_bytes(bytes(data))
    manifest_error, checks = check_models(d)
    assert manifest_error is None
    status = {c.name: c for c in checks}
    assert status["occlusion"].ok and status["reconstructor"].ok
    assert status["occlusion"].metadata["face_size"] == 32
    assert not status["expression"].ok and "sha256" in status["expression"].error
    assert len(status["expression"].sha256) == 64


def test_check_models_without_manifest(make_model_dir):
    d = make_model_dir()
    (d / "manifest.json").unlink()
    manifest_error, checks = check_models(d)
    assert "manifest.json: file not found" in manifest_error
    assert not any(c.ok for c in checks)
