"""Tiny training runs of the three models on generated data: files, exact resume, NaN guard, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ofer_live.errors import UserError
from ofer_live.training.checkpoint import build_model, load_checkpoint
from ofer_live.training.data.fake import write_fake_data
from ofer_live.training.presets import resolve_config
from ofer_live.training.trainers import NonFiniteLossError, run_training
from ofer_live.training.trainers.common import EpochSampler, lr_factor, read_metrics

KINDS = ("occlusion", "reconstructor", "expression")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_fake_data(tmp_path_factory.mktemp("data"), n_train=24, n_valid=12, n_utk=12)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def tiny(kind, data_root, cache_dir, **sections):
    over = {"data": {"data_root": str(data_root), "cache_dir": str(cache_dir), "align": "none"}}
    for key, value in sections.items():
        over.setdefault(key, {}).update(value)
    return resolve_config(kind, "tiny", overrides=over)


def state(path):
    return load_checkpoint(path)["state_dict"]


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_run_writes_files_and_resumes_exactly(kind, data_root, cache_dir, tmp_path):
    config = tiny(kind, data_root, cache_dir)
    full = run_training(config, tmp_path / "full")
    assert full.status == "finished" and full.epoch == 2 and full.global_step == 4
    for name in ("config.json", "metrics.jsonl", "last.pt", "best.pt"):
        assert (tmp_path / "full" / name).is_file(), name
    cfg = json.loads((tmp_path / "full" / "config.json").read_text())
    assert cfg["kind"] == kind and cfg["preset"] == "tiny" and cfg["model"]["name"] == f"{config.model.name}"
    records = read_metrics(tmp_path / "full" / "metrics.jsonl")
    splits = [r["split"] for r in records]
    assert splits.count("train") == 4 and splits.count("val") == 2 and records[-1]["event"] == "finished"
    assert all(np.isfinite(r["loss"]) for r in records if r["split"] == "train")
    ckpt = load_checkpoint(tmp_path / "full" / "best.pt")
    model = build_model(ckpt)
    assert model.config.contract == kind
    assert ckpt["preset"] == "tiny" and ckpt["trained_on"] and ckpt["metrics"]

    # A run stopped after its first step (time budget) and resumed ends with the same weights.
    part = run_training(config, tmp_path / "part", max_minutes=1e-9)
    assert part.status == "time_budget" and part.global_step == 1
    resumed = run_training(config, tmp_path / "part", resume=True)
    assert resumed.status == "finished" and resumed.global_step == 4
    a, b = state(tmp_path / "full" / "last.pt"), state(tmp_path / "part" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    events = [r.get("event") for r in read_metrics(tmp_path / "part" / "metrics.jsonl") if r["split"] == "event"]
    assert events == ["time_budget", "resume", "finished"]


def test_occlusion_checkpoint_has_calibrated_radius(data_root, cache_dir, tmp_path):
    result = run_training(tiny("occlusion", data_root, cache_dir), tmp_path / "occ")
    ckpt = load_checkpoint(tmp_path / "occ" / "best.pt")
    assert ckpt["threshold"] == 1.0
    model = build_model(ckpt)
    assert float(model.radius_sq) == pytest.approx(ckpt["metrics"]["radius_sq"])  # R^2 saved with the model
    assert bool(model.center_initialized)
    assert 0 <= result.last_val["val_clean_fpr"] <= 1


def test_existing_run_needs_resume(data_root, cache_dir, tmp_path):
    config = tiny("occlusion", data_root, cache_dir, run={"epochs": 1})
    run_training(config, tmp_path / "run")
    with pytest.raises(UserError, match="--resume"):
        run_training(config, tmp_path / "run")
    # resuming a finished run is a no-op
    again = run_training(config, tmp_path / "run", resume=True)
    assert again.status == "finished" and again.global_step == 2
    # ... unless more epochs are asked for: then the finished run goes on from where it stopped
    longer = run_training(tiny("occlusion", data_root, cache_dir, run={"epochs": 2}), tmp_path / "run", resume=True)
    assert longer.status == "finished" and longer.epoch == 2 and longer.global_step == 4


def test_nan_loss_stops_loudly(data_root, cache_dir, tmp_path, monkeypatch):
    import ofer_live.training.trainers.occlusion as occlusion

    def nan_loss(dist, anomalous, eta=1.0, eps=1e-6):
        return dist.sum() * float("nan")

    monkeypatch.setattr(occlusion, "deep_sad_loss", nan_loss)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at epoch 1 step 0"):
        run_training(tiny("occlusion", data_root, cache_dir), tmp_path / "nan")
    assert not (tmp_path / "nan" / "best.pt").exists()


def test_expression_through_reconstructor_and_sc_teacher(data_root, cache_dir, tmp_path):
    expr = run_training(tiny("expression", data_root, cache_dir, run={"epochs": 1}), tmp_path / "expr0")
    assert expr.status == "finished"
    rec_cfg = tiny(
        "reconstructor", data_root, cache_dir, run={"epochs": 1}, task={"sc_teacher": str(tmp_path / "expr0")}
    )
    rec = run_training(rec_cfg, tmp_path / "rec")
    sc = [r["l_sc"] for r in read_metrics(tmp_path / "rec" / "metrics.jsonl") if r["split"] == "train"]
    assert sc and all(v > 0 for v in sc)  # the semantic-consistency term is active
    assert "L_sc teacher" in load_checkpoint(tmp_path / "rec" / "best.pt")["trained_on"]
    expr_cfg = tiny(
        "expression",
        data_root,
        cache_dir,
        run={"epochs": 1},
        task={"reconstructor": str(tmp_path / "rec"), "label_mode": "majority", "mixup_alpha": 0.2},
    )
    result = run_training(expr_cfg, tmp_path / "expr1")
    assert result.status == "finished" and 0 <= result.last_val["val_occluded_acc"] <= 1
    assert rec.status == "finished"


def test_sampler_and_schedule():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=4)
    assert list(s) == full[4:]
    s.set_epoch(3)
    assert sorted(s) == list(range(10)) and list(s) != full
    assert lr_factor(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, 0.05) == pytest.approx(0.05)


def test_cli_train_and_nan_message(data_root, cache_dir, tmp_path, capsys, monkeypatch):
    from ofer_live.cli import main

    toml = tmp_path / "t.toml"
    toml.write_text('[data]\nalign = "none"\n[run]\nepochs = 1\n', encoding="utf-8")
    argv = [
        "train",
        "expression",
        "--preset",
        "tiny",
        "--data",
        str(data_root),
        "--cache",
        str(cache_dir),
        "--config",
        str(toml),
        "--out",
        str(tmp_path / "cli"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert '"status": "finished"' in out
    assert (tmp_path / "cli" / "best.pt").is_file()
    assert main([*argv[:-1], str(tmp_path / "cli")]) == 2  # exists without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "occlusion", "--preset", "tiny", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nepoch = 3\n", encoding="utf-8")
    assert main(["train", "occlusion", "--preset", "tiny", "--config", str(bad)]) == 2
    assert "run.epoch: unknown key" in capsys.readouterr().err

    import ofer_live.training.trainers.expression as expression

    monkeypatch.setattr(expression, "expression_loss", lambda *a, **k: torch.tensor(float("inf"), requires_grad=True))
    assert main([*argv[:-1], str(tmp_path / "cli_nan")]) == 2
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "last good checkpoint" in err


def test_cli_resume_uses_the_saved_config(data_root, cache_dir, tmp_path, capsys):
    from ofer_live.cli import main

    toml = tmp_path / "t.toml"
    toml.write_text('[data]\nalign = "none"\n[run]\nepochs = 2\n', encoding="utf-8")
    out = tmp_path / "run"
    base = ["train", "occlusion", "--data", str(data_root), "--cache", str(cache_dir), "--out", str(out)]
    assert main([*base, "--preset", "tiny", "--config", str(toml), "--max-minutes", "0.0000001"]) == 0
    assert "--resume" in capsys.readouterr().out
    # no --preset / --config now: the saved tiny config (align none, 2 epochs) is used
    assert main([*base, "--resume"]) == 0
    assert '"status": "finished", "epoch": 2' in capsys.readouterr().out
    assert main([*base, "--resume", "--preset", "default"]) == 2
    assert "trained with --preset tiny" in capsys.readouterr().err


def test_expression_init_from_and_milder_class_balance(data_root, cache_dir, tmp_path):
    from ofer_live.training.trainers.expression import ExpressionTask

    run_training(tiny("expression", data_root, cache_dir, run={"epochs": 1}), tmp_path / "src")
    cfg = tiny(
        "expression",
        data_root,
        cache_dir,
        run={"init_from": str(tmp_path / "src")},
        task={"class_balance": True, "class_balance_power": 0.5},
    )
    task = ExpressionTask(cfg, torch.device("cpu"))
    source = state(tmp_path / "src" / "best.pt")
    assert all(torch.equal(value, source[name]) for name, value in task.model.state_dict().items())
    assert f"fine-tuned from {tmp_path / 'src'}" in task.trained_on
    full = ExpressionTask(tiny("expression", data_root, cache_dir, task={"class_balance": True}), torch.device("cpu"))
    ratio = task.class_weights**2 / full.class_weights  # (w ** 0.5) ** 2 / w is the same for every class
    assert float(ratio.std()) < 1e-5 and float(task.class_weights.mean()) == pytest.approx(1.0)
    assert float(task.class_weights.max() / task.class_weights.min()) < float(
        full.class_weights.max() / full.class_weights.min()
    )
    other = tiny(
        "expression",
        data_root,
        cache_dir,
        model={"kwargs": {"latent_hidden": 8}},
        run={"init_from": str(tmp_path / "src")},
    )
    with pytest.raises(UserError, match="does not match"):
        ExpressionTask(other, torch.device("cpu"))


def test_expression_through_an_exported_reconstructor(data_root, cache_dir, tmp_path, tiny_models_dir):
    from ofer_live.runtime.loader import load_model
    from ofer_live.training.trainers.expression import ExpressionTask

    onnx_path = str(tiny_models_dir / "reconstructor.onnx")
    cfg = tiny("expression", data_root, cache_dir, run={"epochs": 1}, task={"reconstructor": onnx_path})
    task = ExpressionTask(cfg, torch.device("cpu"))
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    coverage = np.zeros((3, 4, 4), np.float32)
    coverage[:, 1:3, 1:3] = 1.0
    image, latents, flagged = task.prepare_inputs(torch.from_numpy(face), torch.from_numpy(coverage))
    assert flagged.tolist() == [True, True, True]
    recon, expected_latents = load_model("reconstructor", onnx_path)(face, coverage)
    assert image.shape == (3, 3, 32, 32) and torch.equal(image, torch.from_numpy(recon).permute(0, 3, 1, 2) / 255.0)
    assert np.array_equal(latents.numpy(), expected_latents)
    result = run_training(cfg, tmp_path / "expr_onnx")
    assert (
        result.status == "finished"
        and "reconstructor.onnx" in load_checkpoint(tmp_path / "expr_onnx" / "best.pt")["trained_on"]
    )


def test_expression_with_masks_from_an_exported_detector(data_root, cache_dir, tmp_path, tiny_models_dir):
    from ofer_live.runtime.loader import load_model
    from ofer_live.training.trainers.expression import ExpressionTask

    detector_path, rec_path = str(tiny_models_dir / "occlusion.onnx"), str(tiny_models_dir / "reconstructor.onnx")
    cfg = tiny(
        "expression",
        data_root,
        cache_dir,
        run={"epochs": 1},
        task={"reconstructor": rec_path, "mask_source": "occlusion", "occlusion": detector_path},
    )
    task = ExpressionTask(cfg, torch.device("cpu"))
    face = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    detector = load_model("occlusion", detector_path)
    mask = (detector(face) > detector.threshold).astype(np.float32)
    ignored_truth = torch.from_numpy(1.0 - mask)  # the opposite mask: mask_source = occlusion must ignore it
    image, latents, flagged = task.prepare_inputs(torch.from_numpy(face), ignored_truth)
    assert flagged.tolist() == mask.reshape(4, -1).any(axis=1).tolist()
    recon, expected_latents = load_model("reconstructor", rec_path)(face, mask)
    assert torch.equal(image, torch.from_numpy(recon).permute(0, 3, 1, 2) / 255.0)
    assert np.array_equal(latents.numpy(), expected_latents)
    assert run_training(cfg, tmp_path / "expr_det").status == "finished"


def test_direct_view_averages_the_reconstruction_and_the_face_for_flagged_faces(
    data_root, cache_dir, tmp_path, tiny_models_dir
):
    """task.direct_view: flagged faces get the mean of the logits of their reconstruction and of the face as it is
    (as the pipeline predicts); unflagged faces only their reconstruction's. Training and validation run with it."""
    from ofer_live.training.trainers.expression import ExpressionTask

    rec_path = str(tiny_models_dir / "reconstructor.onnx")
    # bf16: in fp32, oneDNN's weight gradient for the tiny net's channels_last convolutions corrupts the heap at odd
    # batch sizes (torch 2.14.1, checked with plain batches of 5, 7 and 9 and no direct view; the default net is
    # unaffected), and the direct view's batch is the faces plus the flagged ones
    cfg = tiny(
        "expression",
        data_root,
        cache_dir,
        run={"epochs": 1, "precision": "bf16"},
        task={"reconstructor": rec_path, "direct_view": True},
    )
    task = ExpressionTask(cfg, torch.device("cpu"))
    model = task.model.eval()
    face = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    coverage = torch.zeros(3, 4, 4)
    coverage[1, 0:2, 0:2] = 1.0  # only the second face has masked patches
    image, latents, flagged = task.prepare_inputs(face, coverage)
    assert flagged.tolist() == [False, True, False]

    def forward(x, z):
        return model.forward_head(model.forward_features(x, z))

    with torch.no_grad():
        logits = task.logits_of(forward, image, latents, face, flagged)
        with task.autocast():  # the same bf16 arithmetic, one view at a time
            recon_logits = forward(image, latents).float()
            direct_logits = forward(face.permute(0, 3, 1, 2).float() / 255.0, latents).float()
    expected = recon_logits.clone()
    expected[1] = 0.5 * (recon_logits[1] + direct_logits[1])
    torch.testing.assert_close(logits, expected, rtol=1e-2, atol=2e-3)
    assert (logits[1] - recon_logits[1]).abs().max() > 1e-2  # the direct view moved the flagged face's logits
    assert run_training(cfg, tmp_path / "direct").status == "finished"
    mixed = tiny(
        "expression", data_root, cache_dir, task={"reconstructor": rec_path, "direct_view": True, "mixup_alpha": 0.2}
    )
    with pytest.raises(ValueError, match="direct_view needs"):
        ExpressionTask(mixed, torch.device("cpu"))


def test_the_manifest_names_a_teacher_inside_the_project_relative_to_it(tmp_path):
    from ofer_live.config import DEFAULT_MODELS_DIR
    from ofer_live.training.trainers.reconstructor import project_relative

    assert project_relative(str(DEFAULT_MODELS_DIR / "expression.onnx")) == "exported_models/expression.onnx"
    outside = str(tmp_path / "teacher.pt")
    assert project_relative(outside) == outside
