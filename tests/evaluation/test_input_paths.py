"""`ofer-live eval --input-paths` measurements, on tiny models and the astronaut photo."""

from __future__ import annotations

import json

import cv2
import numpy as np

from ofer_live.config import AppConfig, RuntimeConfig
from ofer_live.evaluation.input_paths import measure_input_paths, write_input_paths
from ofer_live.pipeline.frame_pipeline import FramePipeline


def test_crop_detection_and_colour_paths(tiny_models_dir, astronaut_bgr, tmp_path):
    crop = cv2.cvtColor(astronaut_bgr[40:240, 150:350], cv2.COLOR_BGR2GRAY)
    faces = np.stack([cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA), np.zeros((48, 48), np.uint8)])
    labels = np.array([3, 6])
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    gray = np.repeat(colour[..., :1], 3, axis=3)
    config = AppConfig(runtime=RuntimeConfig(models_dir=tiny_models_dir))
    with FramePipeline.create(config, detect=True, track=False) as pipeline:
        report = measure_input_paths(pipeline, faces, labels, colour, batch=2)
        gray_report = measure_input_paths(pipeline, faces, labels, gray, batch=2)
        expected = [r.label_index for r in pipeline.process_aligned(colour)]
    crop_path = report["crop_path"]
    assert crop_path["n"] == 2 and crop_path["aligned"] == 1 and crop_path["centre_cropped"] == 1  # blank: no face
    assert report["detection_path"]["found"] <= 1 and report["on_faces_both_find"]["n"] <= 1
    assert gray_report["colour_vs_gray"] == {"faces": 5, "same_class": 1.0}  # gray faces are their own gray copy
    assert 0.0 <= report["colour_vs_gray"]["same_class"] <= 1.0 and len(expected) == 5
    markdown = write_input_paths(report, tmp_path / "report")
    assert "1 aligned, 1 centre-cropped" in markdown.read_text()
    assert json.loads((tmp_path / "report" / "input_paths.json").read_text())["faces"] == 2
