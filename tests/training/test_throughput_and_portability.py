"""bf16 precision, starting runs from shipped weights (ONNX or compact checkpoints), the data pack, train all, and
the training-speed benchmark, on tiny models and generated faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ofer_live.errors import InputError, OutputError, UserError
from ofer_live.training.checkpoint import load_checkpoint, save_compact_checkpoint
from ofer_live.training.data.fake import write_fake_data
from ofer_live.training.presets import config_from_dict, load_toml, resolve_config
from ofer_live.training.trainers import run_training
from ofer_live.training.trainers.common import cpu_has_bf16, read_metrics, resolve_precision

KINDS = ("occlusion", "reconstructor", "expression")
AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n"
NO_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_fake_data(tmp_path_factory.mktemp("data"), n_train=24, n_valid=12, n_utk=12)


def tiny(kind, data, cache_dir=None, **sections):
    over = {"data": {"data_root": str(data), "align": "none"}}
    if cache_dir is not None:
        over["data"]["cache_dir"] = str(cache_dir)
    for key, value in sections.items():
        over.setdefault(key, {}).update(value)
    return resolve_config(kind, "tiny", overrides=over)


# -- precision ---------------------------------------------------------------------------------------------------


def test_precision_auto_follows_the_cpu_flags():
    cpu = torch.device("cpu")
    assert cpu_has_bf16(AVX512_BF16) and not cpu_has_bf16(NO_BF16)
    assert cpu_has_bf16("flags : amx_bf16 amx_tile\n")
    assert resolve_precision("auto", cpu, AVX512_BF16) == "bf16"
    assert resolve_precision("auto", cpu, NO_BF16) == "fp32"
    assert resolve_precision("fp32", cpu, AVX512_BF16) == "fp32"
    assert resolve_precision("bf16", cpu, NO_BF16) == "bf16"
    with pytest.raises(UserError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", cpu)


def test_bf16_run_autocasts_but_keeps_fp32_weights_and_channels_last(data_root, tmp_path):
    from ofer_live.training.trainers.expression import ExpressionTask

    config = tiny("expression", data_root, tmp_path / "cache", run={"precision": "bf16", "epochs": 1})
    task = ExpressionTask(config, torch.device("cpu"))
    assert task.precision == "bf16" and task.channels_last
    conv = task.model.conv1.weight
    assert conv.dtype == torch.float32 and conv.is_contiguous(memory_format=torch.channels_last)
    with task.autocast():
        out = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert out.dtype == torch.bfloat16
    result = run_training(config, tmp_path / "run")
    assert result.status == "finished"
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert all(v.dtype in (torch.float32, torch.int64) for v in ckpt["state_dict"].values())
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    assert train and all(r["precision"] == "bf16" and 0.0 <= r["data_wait_fraction"] <= 1.0 for r in train)


def test_old_run_configs_still_load():
    config = resolve_config("expression", "tiny")
    data = config.to_dict()
    data["run"].pop("precision")
    data["run"].pop("init_from")
    data["run"]["amp"] = True
    data["task"]["init_from"] = "runs/old"
    again = config_from_dict(data)
    assert again.run.precision == "bf16" and again.run.init_from == "runs/old"


def test_shipped_stage2_config_starts_from_stage1():
    from ofer_live.training.presets import apply_overrides

    repo = Path(__file__).resolve().parents[2]
    config = apply_overrides(
        resolve_config("expression", "default"), load_toml(repo / "configs" / "shipped" / "expression.toml")
    )
    assert config.run.init_from == "runs/expr_stage1"


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "configs" / "shipped").glob("*.toml")), ids=lambda p: p.stem
)
def test_every_shipped_config_resolves_and_builds_its_model(path):
    from ofer_live.training.models import create_model
    from ofer_live.training.presets import apply_overrides

    kind = next(k for k in ("occlusion", "reconstructor", "expression") if path.stem.startswith(k))
    config = apply_overrides(resolve_config(kind, "default"), load_toml(path))  # unknown keys raise
    model = create_model(config.model.name, **config.model.kwargs)
    assert model.config.contract == kind


# -- weights back from ONNX --------------------------------------------------------------------------------------


def _trained_batchnorm(model):
    """Give every BatchNorm non-trivial statistics, as training would."""
    gen = torch.Generator().manual_seed(5)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen))
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.weight.data.copy_(torch.randn(module.num_features, generator=gen))
    return model


@pytest.mark.parametrize(
    ("kind", "kwargs"), [(kind, {}) for kind in KINDS] + [("expression", {"trunk": "vgg8"})], ids=[*KINDS, "vgg8"]
)
def test_onnx_weights_come_back_exactly(kind, kwargs, tmp_path):
    from ofer_live.export.onnx_export import example_inputs, export_model, make_model_metadata
    from ofer_live.training.models import create_model
    from ofer_live.training.onnx_weights import checkpoint_from_onnx, conv_batchnorm_pairs

    torch.manual_seed(3)
    model = _trained_batchnorm(create_model(f"{ARCH[kind]}_tiny", **kwargs)).eval()
    path = export_model(model, kind, tmp_path / f"{kind}.onnx", make_model_metadata(model, trained_on="test"))
    ckpt = checkpoint_from_onnx(path)  # also checks the imported module against ONNX Runtime
    assert ckpt["model_name"] == f"{ARCH[kind]}_tiny" and ckpt["trained_on"] == "test"
    assert ckpt["model_kwargs"] == kwargs
    folded = {bn for _, bn in conv_batchnorm_pairs(model)}
    assert set(ckpt["extra"]["folded_batchnorm"]) == folded
    original = model.state_dict()
    for key, value in ckpt["state_dict"].items():
        if key.rsplit(".", 1)[0] in folded or not value.is_floating_point():
            continue
        conv_of_folded = any(key.startswith(f"{c}.") for c, bn in conv_batchnorm_pairs(model))
        if not conv_of_folded:
            torch.testing.assert_close(value, original[key], rtol=0, atol=0, msg=key)
    from ofer_live.training.checkpoint import build_model

    rebuilt = build_model(ckpt)
    with torch.no_grad():
        inputs = example_inputs(model, batch=3, seed=11)
        want, got = model(*inputs), rebuilt(*inputs)
    for a, b in zip(
        want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,), strict=True
    ):
        if a.dtype == torch.uint8:
            assert (a.int() - b.int()).abs().max() <= 1
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


ARCH = {"occlusion": "vit_svdd", "reconstructor": "reconstructor", "expression": "expression"}


def test_recalibrated_batchnorm_keeps_the_function_and_gets_real_statistics():
    from ofer_live.training.models import create_model
    from ofer_live.training.onnx_weights import recalibrate_folded_batchnorm

    torch.manual_seed(0)
    model = create_model("expression_tiny").eval()
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for name in names:  # as checkpoint_from_onnx leaves them: identity + the folded shift
        bn = model.get_submodule(name)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.data.fill_(1.0)
        bn.bias.data.copy_(torch.randn(bn.num_features) * 0.1)
    x = torch.rand(6, 3, 32, 32)
    latents = torch.zeros(6, 16, model.config.latent_dim)
    with torch.no_grad():
        before = model.forward_head(model.forward_features(x, latents))
    recalibrate_folded_batchnorm(model, names, lambda batch: model.forward_features(x, latents))
    with torch.no_grad():
        after = model.forward_head(model.forward_features(x, latents))
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)
    bn = model.bn1
    assert float(bn.running_var.std()) > 0 and not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    for name in names:  # BatchNorms in train mode (batch statistics) now compute what eval mode does
        model.get_submodule(name).train()
    with torch.no_grad():
        train_mode = model.forward_head(model.forward_features(x, latents))
    torch.testing.assert_close(train_mode, after, rtol=1e-3, atol=1e-4)


def test_broken_or_foreign_onnx_is_a_one_line_error(tmp_path, tiny_models_dir):
    from ofer_live.training.onnx_weights import checkpoint_from_onnx

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a readable ONNX file"):
        checkpoint_from_onnx(bad)
    with pytest.raises(UserError, match="model file not found"):
        checkpoint_from_onnx(tmp_path / "missing.onnx")


# -- --init-from: a new run from shipped weights -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_init_from_shipped_onnx_first_validation_matches(kind, data_root, tmp_path):
    """A clone with no runs/ starts from the exported file; its epoch-0 validation is the source model's."""
    from ofer_live.export.bundle import export_runs

    cache = tmp_path / "cache"
    source = run_training(tiny(kind, data_root, cache, run={"epochs": 1}), tmp_path / "source")
    export_runs([tmp_path / "source"], tmp_path / "models")
    onnx_path = tmp_path / "models" / f"{kind}.onnx"
    result = run_training(
        tiny(kind, data_root, cache, run={"epochs": 1, "init_from": str(onnx_path)}), tmp_path / "continued"
    )
    assert result.status == "finished"
    records = read_metrics(tmp_path / "continued" / "metrics.jsonl")
    first = next(r for r in records if r["split"] == "val")
    assert first["epoch"] == 0 and first["init_from"] == str(onnx_path)
    metric = resolve_config(kind, "tiny").task.select_metric
    assert first[metric] == pytest.approx(source.last_val[metric], rel=1e-3, abs=1e-4)
    assert f"fine-tuned from {onnx_path}" in load_checkpoint(tmp_path / "continued" / "best.pt")["trained_on"]


def test_init_from_compact_checkpoint_and_mismatch(data_root, tmp_path):
    cache = tmp_path / "cache"
    run_training(tiny("reconstructor", data_root, cache, run={"epochs": 1}), tmp_path / "source")
    full = load_checkpoint(tmp_path / "source" / "best.pt")
    compact = save_compact_checkpoint(tmp_path / "reconstructor_fp16.pt", full)
    assert compact.stat().st_size < (tmp_path / "source" / "best.pt").stat().st_size
    assert all(
        v.dtype == torch.float16 for v in load_checkpoint(compact)["state_dict"].values() if v.is_floating_point()
    )
    result = run_training(
        tiny("reconstructor", data_root, cache, run={"epochs": 1, "init_from": str(compact)}), tmp_path / "continued"
    )
    first = next(r for r in read_metrics(tmp_path / "continued" / "metrics.jsonl") if r["split"] == "val")
    assert result.status == "finished"
    assert first["val_psnr"] == pytest.approx(full["metrics"]["val_psnr"], abs=0.05)  # fp16 weights: close
    other = tiny("reconstructor", data_root, cache, run={"init_from": str(compact)}, model={"kwargs": {"unet_base": 8}})
    with pytest.raises(UserError, match="does not match"):
        run_training(other, tmp_path / "mismatch")


# -- data pack and train all -------------------------------------------------------------------------------------


def test_pack_is_read_in_place_of_the_data(data_root, tmp_path):
    from ofer_live.training.data.pack import PACK_FILE, read_pack, write_pack
    from ofer_live.training.presets import DataConfig
    from ofer_live.training.trainers.setup import cache_settings

    pack = tmp_path / "pack"
    info = write_pack(data_root, pack, face_size=32, align="none")
    assert (pack / PACK_FILE).is_file() and read_pack(pack)["encoding"] == "webp"
    assert set(info["files"]) == {
        "ferplus_train_64_webp85.npz",
        "ferplus_valid_64_webp85.npz",
        "utkface_32_webp85.npz",
        "occluders.npz",
    }
    assert info["total_bytes"] == sum(f.stat().st_size for f in pack.glob("*.npz"))
    settings = cache_settings(DataConfig(data_root=str(pack), cache_dir=str(tmp_path / "unused")))
    assert settings.cache_dir == pack and settings.encoding == "webp" and settings.pack_utk_size == 32
    # Any --data accepts the pack; nothing is written into it and no cache folder is made.
    result = run_training(tiny("occlusion", pack, tmp_path / "unused", run={"epochs": 1}), tmp_path / "run")
    assert result.status == "finished" and not (tmp_path / "unused").exists()
    assert sorted(p.name for p in pack.iterdir()) == sorted([*info["files"], PACK_FILE])
    (pack / "occluders.npz").unlink()
    with pytest.raises(InputError, match="the data pack has no occluder file"):
        run_training(tiny("occlusion", pack, run={"epochs": 1}), tmp_path / "run2")
    with pytest.raises(OutputError, match="not empty and not a data pack"):
        write_pack(data_root, tmp_path / "run", face_size=32, align="none")


def test_train_all_on_a_tiny_pack_exports_loadable_models(data_root, tmp_path):
    from ofer_live.export.train_all import STAGES, train_all
    from ofer_live.runtime.loader import load_models
    from ofer_live.training.data.pack import write_pack

    pack = tmp_path / "pack"
    write_pack(data_root, pack, face_size=32, align="none")
    summary = train_all(str(pack), tmp_path / "all", preset="tiny", common={"run": {"device": "cpu"}})
    assert list(summary["stages"]) == list(STAGES)
    assert all(stage["status"] == "finished" for stage in summary["stages"].values())
    saved = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert saved["exported"].keys() == {"occlusion", "reconstructor", "expression"}
    from ofer_live.config import RuntimeConfig

    models = load_models(RuntimeConfig(models_dir=tmp_path / "all" / "exported_models"))
    face = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert models.occlusion(face).shape == (2, 4, 4)
    assert "fine-tuned from" in load_checkpoint(tmp_path / "all" / "expression" / "best.pt")["trained_on"]
    again = train_all(str(pack), tmp_path / "all", preset="tiny", common={"run": {"device": "cpu"}})
    assert all(stage["steps"] == summary["stages"][name]["steps"] for name, stage in again["stages"].items())


def test_train_bench_reports_both_precisions(capsys):
    from ofer_live.cli import main

    assert (
        main(
            [
                "train",
                "bench",
                "--preset",
                "tiny",
                "--models",
                "expression",
                "--steps",
                "1",
                "--batch-size",
                "4",
                "--precision",
                "bf16",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    row = report["models"]["expression"]
    assert report["precision"] == "bf16" and row["batch"] == 4
    assert row["fp32_images_per_s"] > 0 and row["bf16_images_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["bf16_images_per_s"] / row["fp32_images_per_s"], rel=0.02)
    assert main(["train", "bench", "--models", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_ema_weights_are_validated_saved_as_best_and_resume_exactly(data_root, tmp_path):
    cache = tmp_path / "cache"
    one = tiny("expression", data_root, cache, run={"ema_decay": 0.9, "epochs": 1})
    run_training(one, tmp_path / "one")
    best, last = load_checkpoint(tmp_path / "one" / "best.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    ema = last["extra"]["ema"]
    assert ema["updates"] == 2
    assert "bn1.running_mean" in ema["shadow"]  # BatchNorm statistics are averaged with the weights they belong to
    for name, value in ema["shadow"].items():  # last.pt: live weights + the average; best.pt: the average
        torch.testing.assert_close(best["state_dict"][name], value)
    assert any(not torch.equal(last["state_dict"][k], v) for k, v in ema["shadow"].items())
    from ofer_live.training.checkpoint import load_weights

    started = load_weights(tmp_path / "one" / "last.pt")["state_dict"]  # --init-from last.pt: the average
    for name, value in ema["shadow"].items():
        torch.testing.assert_close(started[name], value)
    from ofer_live.export.bundle import export_runs
    from ofer_live.training.onnx_weights import checkpoint_from_onnx

    export_runs([tmp_path / "one" / "last.pt"], tmp_path / "exported")  # export last.pt: the average too
    exported = checkpoint_from_onnx(tmp_path / "exported" / "expression.onnx")["state_dict"]
    head = "classifier.4.weight"  # not folded into a convolution, so it comes back exactly
    assert not torch.equal(last["state_dict"][head], ema["shadow"][head])
    torch.testing.assert_close(exported[head], ema["shadow"][head])
    config = tiny("expression", data_root, cache, run={"ema_decay": 0.9, "epochs": 2})
    run_training(config, tmp_path / "full")
    ema = load_checkpoint(tmp_path / "full" / "last.pt")["extra"]["ema"]
    run_training(config, tmp_path / "part", max_minutes=1e-9)
    run_training(config, tmp_path / "part", resume=True)
    resumed = load_checkpoint(tmp_path / "part" / "last.pt")["extra"]["ema"]
    assert resumed["updates"] == 4
    for name, value in ema["shadow"].items():
        torch.testing.assert_close(resumed["shadow"][name], value, rtol=1e-5, atol=1e-6)


def test_gray_input_makes_colour_and_its_gray_copy_agree():
    import cv2

    from ofer_live.training.models import create_model

    torch.manual_seed(0)
    model = create_model("expression_tiny", gray_input=True).eval()
    colour = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    gray = np.stack([cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for f in colour])
    latents = torch.randn(3, 16, model.config.latent_dim)
    with torch.no_grad():
        a, _ = model(torch.from_numpy(colour), latents)
        b, _ = model(torch.from_numpy(gray), latents)
    torch.testing.assert_close(a, b, rtol=0, atol=0.02)  # OpenCV rounds the luma to uint8: < 0.5 grey level


def test_export_option_flip_average_averages_the_mirror(data_root, tmp_path):
    import onnxruntime as ort

    from ofer_live.cli import main

    run_training(tiny("expression", data_root, tmp_path / "cache", run={"epochs": 1}), tmp_path / "run")
    assert main(["export", "--runs", str(tmp_path / "run"), "--out", str(tmp_path / "plain")]) == 0
    assert (
        main(["export", "--runs", str(tmp_path / "run"), "--out", str(tmp_path / "flip"), "--set", "flip_average=true"])
        == 0
    )
    face = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    latents = np.random.default_rng(2).standard_normal((2, 16, 16)).astype(np.float32)
    mirrored = latents.reshape(2, 4, 4, 16)[:, :, ::-1].reshape(2, 16, 16)

    def logits(folder, f, z):
        session = ort.InferenceSession(str(tmp_path / folder / "expression.onnx"), providers=["CPUExecutionProvider"])
        return session.run(["logits"], {"face": f, "latents": np.ascontiguousarray(z)})[0]

    expected = 0.5 * (logits("plain", face, latents) + logits("plain", face[:, :, ::-1].copy(), mirrored))
    np.testing.assert_allclose(logits("flip", face, latents), expected, rtol=1e-4, atol=1e-5)
    assert main(["export", "--runs", str(tmp_path / "run"), "--out", str(tmp_path / "bad"), "--set", "nope=1"]) == 2

    # flip_batched: the face and its mirror in one batch of 2N -- the same logits; both files import back.
    batched_argv = ["--set", "flip_average=true", "--set", "flip_batched=true"]
    assert main(["export", "--runs", str(tmp_path / "run"), "--out", str(tmp_path / "batched"), *batched_argv]) == 0
    np.testing.assert_allclose(logits("batched", face, latents), expected, rtol=1e-4, atol=1e-5)
    from ofer_live.training.onnx_weights import checkpoint_from_onnx

    for folder, kwargs in (("flip", {"flip_average": True}), ("batched", {"flip_average": True, "flip_batched": True})):
        back = checkpoint_from_onnx(tmp_path / folder / "expression.onnx")
        assert {k: back["model_kwargs"][k] for k in kwargs} == kwargs


def test_two_fer_runs_export_as_one_ensemble_and_a_member_continues(data_root, tmp_path):
    """Two expression runs -> one expression.onnx whose logits and CAM are the mean of the two single files; a run
    started from the ensemble file takes the member of its own architecture, with that member's validation."""
    import onnxruntime as ort

    from ofer_live.cli import main

    cache = tmp_path / "cache"
    run_training(tiny("expression", data_root, cache, run={"epochs": 1}), tmp_path / "resnet")
    second_config = tiny("expression", data_root, cache, run={"epochs": 1}, model={"kwargs": {"trunk": "vgg8"}})
    run_training(second_config, tmp_path / "vgg8")
    runs = [str(tmp_path / "resnet"), str(tmp_path / "vgg8")]
    for folder, run in (("one", runs[0]), ("two", runs[1])):
        assert main(["export", "--runs", run, "--out", str(tmp_path / folder), "--set", "flip_average=true"]) == 0
    assert main(["export", "--runs", *runs, "--out", str(tmp_path / "both"), "--set", "flip_average=true"]) == 0

    face = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    latents = np.random.default_rng(2).standard_normal((3, 16, 16)).astype(np.float32)

    def outputs(folder):
        session = ort.InferenceSession(str(tmp_path / folder / "expression.onnx"), providers=["CPUExecutionProvider"])
        return session.run(["logits", "cam"], {"face": face, "latents": latents})

    (l1, c1), (l2, c2), (both_logits, both_cam) = outputs("one"), outputs("two"), outputs("both")
    assert not np.allclose(l1, l2, atol=1e-3)  # two different nets
    np.testing.assert_allclose(both_logits, 0.5 * (l1 + l2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both_cam, 0.5 * (c1 + c2), rtol=1e-4, atol=1e-5)
    manifest = json.loads((tmp_path / "both" / "manifest.json").read_text())["models"]["expression"]
    assert len(manifest["metrics"]["members"]) == 2 and "vgg8" in manifest["trained_on"]

    # --init-from the ensemble file: a vgg8 net takes the vgg8 member's weights; a net no member matches is an error.
    from ofer_live.training.checkpoint import load_weights
    from ofer_live.training.models import create_model
    from ofer_live.training.trainers.common import matching_member

    ensemble = load_weights(tmp_path / "both" / "expression.onnx")
    vgg8 = create_model("expression_tiny", trunk="vgg8", flip_average=True)
    member = matching_member(ensemble, vgg8, "both/expression.onnx")
    assert member["model_kwargs"]["trunk"] == "vgg8"
    folded = member["extra"]["folded_batchnorm"]  # BatchNorms the exporter folded come back as identities
    assert folded and not any(name.startswith("members.") for name in folded)
    vgg8.load_state_dict(member["state_dict"])
    with torch.no_grad():
        member_logits = vgg8.eval()(torch.from_numpy(face), torch.from_numpy(latents))[0].numpy()
    np.testing.assert_allclose(member_logits, l2, rtol=1e-3, atol=1e-4)  # the vgg8 run's own exported file
    with pytest.raises(UserError, match="no member of this ensemble"):
        matching_member(ensemble, create_model("expression_tiny", widths=(4, 8, 8, 8)), "both/expression.onnx")


def test_detector_with_per_position_radius_trains_and_exports(data_root, tmp_path):
    from ofer_live.export.bundle import export_runs
    from ofer_live.training.onnx_weights import checkpoint_from_onnx

    config = tiny(
        "occlusion",
        data_root,
        tmp_path / "cache",
        run={"epochs": 1},
        model={"kwargs": {"per_position_radius": True}},
        synth={"hands": 0.3, "cutpaste": 0.2},
    )
    result = run_training(config, tmp_path / "occ")
    ckpt = load_checkpoint(tmp_path / "occ" / "best.pt")
    radius = ckpt["state_dict"]["radius_sq"]
    assert radius.shape == (16,) and float(radius.min()) > 0
    assert float(radius.mean()) == pytest.approx(result.last_val["radius_sq"], rel=1e-5)
    export_runs([tmp_path / "occ"], tmp_path / "models")
    back = checkpoint_from_onnx(tmp_path / "models" / "occlusion.onnx")  # the option survives the round trip
    assert back["model_kwargs"] == {"per_position_radius": True}
    torch.testing.assert_close(back["state_dict"]["radius_sq"], radius)


def test_detector_encoder_from_a_shipped_reconstructor(data_root, tmp_path, tiny_models_dir):
    from ofer_live.training.checkpoint import build_model, load_weights
    from ofer_live.training.trainers.occlusion import OcclusionTask

    spec = str(tiny_models_dir / "reconstructor.onnx")
    task = OcclusionTask(
        tiny("occlusion", data_root, tmp_path / "cache", task={"encoder_init": spec}), torch.device("cpu")
    )
    source = build_model(load_weights(spec)).encoder.state_dict()
    own = task.model.encoder.state_dict()
    shared = [k for k in own if k in source and own[k].shape == source[k].shape]
    assert len(shared) == len(own)
    assert all(torch.equal(own[k], source[k]) for k in shared)
    assert f"encoder from {spec}" in task.trained_on
    with pytest.raises(UserError, match="a reconstructor is needed"):
        OcclusionTask(
            tiny(
                "occlusion",
                data_root,
                tmp_path / "cache",
                task={"encoder_init": str(tiny_models_dir / "expression.onnx")},
            ),
            torch.device("cpu"),
        )
