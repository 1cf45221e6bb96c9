"""Presets, TOML overrides and resolved configs."""

from __future__ import annotations

import pytest

from ofer_live.errors import UserError
from ofer_live.training.models import create_model
from ofer_live.training.presets import (
    MODEL_KINDS,
    PRESETS,
    config_from_dict,
    preset_config,
    resolve_config,
)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_presets_name_registered_models(preset, kind):
    config = preset_config(preset, kind)
    assert config.model.name == f"{ {'occlusion': 'vit_svdd'}.get(kind, kind) }_{preset}"
    assert config.run.batch_size > 0 and config.run.epochs > 0
    assert config_from_dict(config.to_dict()) == config


def test_default_preset_sizes():
    model = create_model(preset_config("default", "occlusion").model.name)
    assert (model.config.face_size, model.config.patch_grid, model.config.latent_dim) == (112, 14, 192)
    assert preset_config("default", "expression").face_size == 112
    assert preset_config("paper", "reconstructor").face_size == 224


def test_toml_overrides(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[run]\nepochs = 3\n[optim]\nlr = 1\n[model.kwargs]\ndepth = 2\n"
        '[data]\nheldout_kinds = ["objects", "misc"]\n[synth.paste]\nscale = [0.5, 1.0]\n[task]\nnu = 0.1\n',
        encoding="utf-8",
    )
    config = resolve_config("occlusion", "default", toml, {"run": {"batch_size": 8}})
    assert config.run.epochs == 3 and config.run.batch_size == 8
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.model.kwargs == {"depth": 2}
    assert config.data.heldout_kinds == ("objects", "misc")
    assert config.synth.paste.scale == (0.5, 1.0)
    assert config.task.nu == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\nepoch = 3\n", "run.epoch: unknown key"),
        ("[run]\nepochs = 'x'\n", "run.epochs: expected int"),
        ("[data]\nuse_ferplus = 1\n", "data.use_ferplus: expected true/false"),
        ("[run]\nprecision = 16\n", "run.precision: expected str"),
        ("[task]\nlambda_re = 1.0\n", "task.lambda_re: unknown key"),
        ("kind = 'expression'\n", "cannot change"),
        ("[run\n", "not valid TOML"),
    ],
)
def test_bad_overrides(tmp_path, text, message):
    toml = tmp_path / "bad.toml"
    toml.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        resolve_config("occlusion", "tiny", toml)


def test_unknown_preset_and_model():
    with pytest.raises(UserError, match="unknown preset"):
        preset_config("huge", "occlusion")
    with pytest.raises(UserError, match="unknown model"):
        preset_config("tiny", "detector")


def test_one_size_table_and_face_size_override():
    """The factories, the class defaults and TrainConfig.face_size read presets.SIZES; a [model.kwargs]
    face_size override wins."""
    from ofer_live.training.models import create_model
    from ofer_live.training.models.vit_svdd import ViTSVDD
    from ofer_live.training.presets import SIZES

    for preset in ("tiny", "default"):
        for kind in ("occlusion", "reconstructor", "expression"):
            cfg = resolve_config(kind, preset)
            assert cfg.face_size == SIZES[preset].face_size
            model = create_model(cfg.model.name)
            assert (model.config.face_size, model.config.patch_grid, model.config.latent_dim) == SIZES[preset]
    assert ViTSVDD(depth=1, num_heads=2).config.face_size == SIZES["default"].face_size
    override = resolve_config("occlusion", "tiny", overrides={"model": {"kwargs": {"face_size": 64}}})
    assert override.face_size == 64
