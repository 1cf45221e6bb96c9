"""`ofer-live eval` on the tiny exported models and generated data, through FramePipeline; metric helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ofer_live.commands.eval import heldout_from_metadata
from ofer_live.training.data.fake import write_fake_data
from ofer_live.training.metrics import auroc, classification_metrics, detection_metrics, psnr, ssim


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_fake_data(tmp_path_factory.mktemp("data"), n_train=8, n_valid=16, n_utk=30)


def eval_argv(data_root, tiny_models_dir, out, cache, *extra):
    return [
        "eval",
        "--data",
        str(data_root),
        "--models",
        str(tiny_models_dir),
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--align",
        "none",
        "--baselines",
        "none",
        *extra,
    ]


def test_eval_writes_report_and_is_deterministic(data_root, tiny_models_dir, tmp_path, capsys):
    from ofer_live.cli import main

    cache = tmp_path / "cache"
    extra = ["--variant", f"copy={tiny_models_dir / 'expression.onnx'}", "--seed", "3"]
    assert main(eval_argv(data_root, tiny_models_dir, tmp_path / "r1", cache, *extra)) == 0
    assert "report written" in capsys.readouterr().out
    for name in ("report.md", "report.json", "accuracy_vs_occlusion.png", "confusion_clean.png"):
        assert (tmp_path / "r1" / name).stat().st_size > 0, name
    assert (tmp_path / "r1" / "accuracy_vs_occlusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert report["meta"]["n_faces"] == 13  # 16 valid faces minus 3 without a majority label
    assert report["meta"]["heldout_kinds"] == ["scarves"]
    assert len(report["curves"]["random"]["accuracy"]["pipeline"]) == 6
    assert set(report["pasted"]) == {"all", "seen", "heldout"}
    assert 0.1 < report["pasted"]["all"]["coverage_mean"] < 0.4
    assert set(report["detection"]) >= {"seen", "heldout", "clean_flagged_fraction"}
    assert report["reconstruction"]["n"] > 0 and report["reconstruction"]["psnr"] > 0
    rows = [(row["expression"], row["reconstruction"], row["direct_view"]) for row in report["ablation"]]
    assert rows == [
        ("shipped FER net", True, True),
        ("shipped FER net", True, False),
        ("shipped FER net", False, False),
        ("shipped FER net, latents zeroed", True, True),
        ("shipped FER net, latents zeroed", False, False),
        ("copy", True, True),
        ("copy", False, False),
    ]
    clean = report["clean"]["pipeline"]
    assert np.asarray(clean["confusion"]).sum() == 13
    md = (tmp_path / "r1" / "report.md").read_text()
    assert "| accuracy, clean faces |" in md and "![" in md

    assert main(eval_argv(data_root, tiny_models_dir, tmp_path / "r2", cache, *extra)) == 0
    again = json.loads((tmp_path / "r2" / "report.json").read_text())
    for key in ("clean", "curves", "pasted", "detection", "reconstruction", "ablation"):
        assert again[key] == report[key], key


def test_eval_with_baseline_callables(data_root, tiny_models_dir, tmp_path):
    from ofer_live.config import AppConfig, RuntimeConfig
    from ofer_live.evaluation.measure import Baseline, EvalSettings, evaluate, load_eval_data
    from ofer_live.pipeline.frame_pipeline import FramePipeline
    from ofer_live.training.data.cache import CacheSettings

    with FramePipeline.create(AppConfig(runtime=RuntimeConfig(models_dir=tiny_models_dir)), detect=False) as pipeline:
        data = load_eval_data(
            CacheSettings(data_root, tmp_path / "cache", align="none"),
            pipeline.face_size,
            ("objects",),
            max_images=8,
            seed=0,
        )
        always_happy = Baseline("always_happy", lambda faces: np.tile(np.eye(7)[3], (len(faces), 1)))
        report = evaluate(pipeline, data, EvalSettings(proportions=(0.0, 0.5)), [always_happy])
    expected = float((data.labels == 3).mean())
    assert report["clean"]["baselines"]["always_happy"]["accuracy"] == pytest.approx(expected)
    assert report["curves"]["gradcam"]["accuracy"]["always_happy"] == [pytest.approx(expected)] * 2
    assert report["meta"]["heldout_kinds"] == ["objects"]


def test_eval_measures_what_the_pipeline_runs(tiny_models_dir):
    """The eval's three modes are FramePipeline.process_aligned: the detector's mask at the pipeline's own
    threshold, the no-reconstruction ablation, and a given (oracle) mask."""
    from ofer_live.config import AppConfig, PipelineConfig, RuntimeConfig
    from ofer_live.evaluation.measure import through_pipeline
    from ofer_live.pipeline.frame_pipeline import FramePipeline

    config = AppConfig(runtime=RuntimeConfig(models_dir=tiny_models_dir), pipeline=PipelineConfig(sensitivity=2.0))
    with FramePipeline.create(config, detect=False) as pipeline:
        s, g = pipeline.face_size, pipeline.models.patch_grid
        faces = np.random.default_rng(0).integers(0, 256, (5, s, s, 3), dtype=np.uint8)
        full = through_pipeline(pipeline, faces, batch=2)
        assert full["probs"].shape == (5, 7) and full["reconstruction"].shape == (5, s, s, 3)
        assert pipeline.mask_threshold == pytest.approx(pipeline.threshold / 2.0)
        np.testing.assert_array_equal(full["mask"], full["scores"] > pipeline.mask_threshold)
        one_by_one = [pipeline.process_aligned(faces[i : i + 1])[0].probs for i in range(5)]
        np.testing.assert_allclose(full["probs"], np.stack(one_by_one), atol=1e-5)

        direct = through_pipeline(pipeline, faces, batch=2, use_reconstruction=False)
        np.testing.assert_array_equal(direct["reconstruction"], faces)  # the FER net saw the faces as they are
        assert pipeline.config.use_reconstruction  # the override was for that call only

        oracle_mask = np.zeros((5, g, g), np.float32)
        oracle_mask[:, : g // 2] = 1.0
        oracle = through_pipeline(pipeline, faces, batch=2, mask=oracle_mask)
        np.testing.assert_array_equal(oracle["mask"], oracle_mask)
        assert not oracle["scores"].any()
        top = s // 2
        np.testing.assert_array_equal(oracle["reconstruction"][:, top:], faces[:, top:])  # visible pixels kept
        with pytest.raises(ValueError, match="mask must be"):
            pipeline.process_aligned(faces, mask=oracle_mask[:2])


def test_eval_bad_flags(data_root, tiny_models_dir, tmp_path, capsys):
    from ofer_live.cli import main

    argv = eval_argv(data_root, tiny_models_dir, tmp_path / "r", tmp_path / "c", "--variant", "nonsense")
    assert main(argv) == 2
    assert "--variant expects NAME=PATH.onnx" in capsys.readouterr().err
    argv = eval_argv(data_root, tmp_path / "no_models", tmp_path / "r", tmp_path / "c")
    assert main(argv) == 2


def test_heldout_from_metadata():
    assert heldout_from_metadata("FER+ train; held-out kinds: scarves, misc") == ("scarves", "misc")
    assert heldout_from_metadata("x; held-out kinds: none") == ()
    assert heldout_from_metadata("random-init") is None


def test_metric_helpers():
    m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    assert m["accuracy"] == 0.75 and m["macro_recall"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["confusion"][0][1] == 1
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    cov = np.zeros((1, 2, 2))
    cov[0, 0, 0], cov[0, 1, 1] = 1.0, 0.3
    scores = np.array([[[2.0, 0.1], [0.2, 1.5]]])
    d = detection_metrics(scores, cov)
    assert d["recall"] == 1.0 and d["precision"] == 0.5 and d["accuracy"] == 0.75
    assert d["strict_precision"] == 1.0  # the 30 %-covered patch is left out of the strict metrics
    a = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert psnr(a, a)[0] == 100.0 and ssim(a, a)[0] == pytest.approx(1.0)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 25 < psnr(a, b)[0] < 30 and ssim(a, b)[0] < 1.0


def test_grad_cam_on_a_small_conv_net():
    import torch
    from torch import nn

    from ofer_live.training.gradcam import GradCam

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 7),
    )

    def logits(faces):
        return net(faces.permute(0, 3, 1, 2) / 255.0)

    cam = GradCam(net, logits)
    faces = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    maps = cam(faces)
    assert maps.shape == (3, 8, 8) and maps.dtype == np.float32
    assert (maps >= 0).all() and np.allclose(maps.reshape(3, -1).max(axis=1), 1.0)
    assert isinstance(cam.layer, nn.Conv2d) and cam.layer.out_channels == 8


def test_without_latents_feeds_zeros_and_keeps_the_faces():
    from ofer_live.evaluation.measure import without_latents

    seen = {}

    def expression(faces, latents):
        seen["faces"], seen["latents"] = faces, latents
        return latents.sum(axis=(1, 2))[:, None], None

    faces = np.full((2, 8, 8, 3), 7, np.uint8)
    latents = np.ones((2, 4, 3), np.float32)
    logits, _ = without_latents(expression)(faces, latents)
    assert seen["faces"] is faces
    assert seen["latents"].shape == latents.shape and not seen["latents"].any()
    assert logits.tolist() == [[0.0], [0.0]]
    assert latents.all()  # the caller's array is untouched


def test_outside_eval_subset_is_the_rest_of_the_labelled_faces():
    from ofer_live.evaluation.measure import outside_eval_subset
    from ofer_live.training.data.sources import subsample

    labels = np.array([0, -1, 3, 2, -1, 6, 1, 1, 0, 4, 5, -1])
    labelled = np.flatnonzero(labels >= 0)
    in_eval = subsample(labelled, 4, 7)  # the subset load_eval_data takes with max_images 4, seed 7
    rest = outside_eval_subset(labels, 4, 7)
    assert len(in_eval) == 4 and not set(rest) & set(in_eval.tolist())
    assert sorted([*rest.tolist(), *in_eval.tolist()]) == labelled.tolist()
    assert rest.tolist() == sorted(rest.tolist())
    assert outside_eval_subset(labels, 0, 7).size == 0  # no subset: make eval takes every labelled face
