"""Missing, tampered and wrong-contract model files, and unknown providers: one-line errors naming the cause."""

from __future__ import annotations

import json

import pytest


def _video(ofer, models, tmp_path, *extra):
    return ofer("video", "demo:2", "-o", tmp_path / "out.avi", "--models", models, *extra)


def test_missing_models_folder(ofer, one_line_error, tmp_path):
    one_line_error(_video(ofer, tmp_path / "nowhere", tmp_path), "models folder not found", "nowhere")


def test_missing_model_file(ofer, one_line_error, models_copy, tmp_path):
    (models_copy / "reconstructor.onnx").unlink()
    one_line_error(_video(ofer, models_copy, tmp_path), "reconstructor.onnx: model file not found")


def test_missing_manifest(ofer, one_line_error, models_copy, tmp_path):
    (models_copy / "manifest.json").unlink()
    one_line_error(_video(ofer, models_copy, tmp_path), "manifest.json: file not found")


def test_tampered_model(ofer, one_line_error, models_copy, tmp_path):
    path = models_copy / "occlusion.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    one_line_error(
        _video(ofer, models_copy, tmp_path), "occlusion.onnx: sha256", "manifest.json field 'models.occlusion.sha256'"
    )


def test_tampered_manifest_in_subprocess(ofer_subprocess, one_line_error, models_copy, tmp_path):
    manifest = json.loads((models_copy / "manifest.json").read_text())
    manifest["models"]["expression"]["sha256"] = "0" * 64
    (models_copy / "manifest.json").write_text(json.dumps(manifest))
    result = ofer_subprocess("video", "demo:2", "-o", tmp_path / "o.avi", "--models", models_copy)
    one_line_error(result, "expression.onnx: sha256")


def _rename_first_output(proto):
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = ["scores" if o == old else o for o in node.output]
    proto.graph.output[0].name = "scores"


def _drop_metadata_key(proto):
    keep = [p for p in proto.metadata_props if p.key != "ofer_live"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)


@pytest.mark.parametrize(
    ("kind", "edit", "fragments"),
    [
        ("occlusion", _rename_first_output, ["occlusion.onnx: output names are ['scores'], expected ['patch_score']"]),
        ("reconstructor", _drop_metadata_key, ["reconstructor.onnx: metadata key 'ofer_live' is missing"]),
        ("expression", ("face_size", 64), ["expression.onnx: input 'face' axis 1 is 32, expected 64"]),
        ("expression", ("labels", ["happy", "sad"]), ["expression.onnx: metadata field 'labels'"]),
        ("occlusion", ("threshold", -1), ["occlusion.onnx: metadata field 'threshold' must be a positive number"]),
    ],
    ids=["output-name", "no-metadata", "face-size", "labels", "threshold"],
)
def test_wrong_contract(ofer, one_line_error, edit_model, set_meta, models_copy, tmp_path, kind, edit, fragments):
    if isinstance(edit, tuple):
        field, value = edit
        edit_model(models_copy, kind, lambda proto: set_meta(proto, field, value))
    else:
        edit_model(models_copy, kind, edit)
    one_line_error(_video(ofer, models_copy, tmp_path), *fragments)


def test_not_an_onnx_file(ofer, one_line_error, models_copy, tmp_path):
    import hashlib

    (models_copy / "expression.onnx").write_bytes(b"PK\x03\x04 a zip file, not a model")
    manifest = json.loads((models_copy / "manifest.json").read_text())
    digest = hashlib.sha256((models_copy / "expression.onnx").read_bytes()).hexdigest()
    manifest["models"]["expression"]["sha256"] = digest
    (models_copy / "manifest.json").write_text(json.dumps(manifest))
    one_line_error(_video(ofer, models_copy, tmp_path), "expression.onnx: onnxruntime cannot load it")


def test_unknown_provider(ofer, one_line_error, tiny_models_dir, tmp_path):
    result = _video(ofer, tiny_models_dir, tmp_path, "--providers", "WarpDriveExecutionProvider")
    one_line_error(result, "WarpDriveExecutionProvider is not available", "available:", "CPUExecutionProvider")


def test_explicit_cpu_provider_and_threads(ofer, tiny_models_dir, tmp_path):
    result = _video(ofer, tiny_models_dir, tmp_path, "--providers", "CPUExecutionProvider", "--threads", "1")
    assert result.code == 0, result.err
    assert "CPUExecutionProvider" in result.out


def test_images_command_reports_bad_models_too(ofer, one_line_error, models_copy, tmp_path):
    (models_copy / "occlusion.onnx").unlink()
    image = tmp_path / "x.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    result = ofer("images", image, "--out", tmp_path / "r.csv", "--models", models_copy)
    one_line_error(result, "occlusion.onnx: model file not found")
