"""Registry and forward shapes of every architecture's tiny variant."""

from __future__ import annotations

import pytest
import torch

from ofer_live import contracts
from ofer_live.training.models import (
    ExpressionNet,
    HybridReconstructor,
    ViTSVDD,
    create_model,
    list_models,
    patchify,
    unpatchify,
)

ARCHS = ("vit_svdd", "reconstructor", "expression")


def test_registry_has_every_variant():
    names = list_models()
    for arch in ARCHS:
        for variant in ("tiny", "default", "paper"):
            assert f"{arch}_{variant}" in names
    assert list_models("*_tiny") == ["expression_tiny", "reconstructor_tiny", "vit_svdd_tiny"]
    with pytest.raises(KeyError, match="unknown model"):
        create_model("nope_tiny")


def test_create_model_records_name_kwargs_and_config():
    model = create_model("vit_svdd_tiny", rep_dim=8)
    assert model.model_name == "vit_svdd_tiny"
    assert model.model_kwargs == {"rep_dim": 8}
    assert (model.config.face_size, model.config.patch_grid, model.config.latent_dim) == (32, 4, 16)
    assert model.config.contract == contracts.OCCLUSION


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("vit_svdd_default", (112, 14, 192)),
        ("reconstructor_default", (112, 14, 192)),
        ("expression_default", (112, 14, 192)),
    ],
)
def test_default_and_paper_configs(name, sizes):
    # Building is cheap at the default sizes (the paper sizes take seconds and are not built here).
    model = create_model(name)
    assert (model.config.face_size, model.config.patch_grid, model.config.latent_dim) == sizes


def _faces(n, s=32):
    return torch.randint(0, 256, (n, s, s, 3), dtype=torch.uint8)


@pytest.mark.parametrize("n", [1, 3])
def test_vit_svdd_tiny_shapes(n):
    model = create_model("vit_svdd_tiny").eval()
    assert isinstance(model, ViTSVDD)
    face = _faces(n)
    score = model(face)
    assert score.shape == (n, 4, 4) and score.dtype == torch.float32
    phi = model.forward_features(face.permute(0, 3, 1, 2).float() / 255)
    assert phi.shape == (n, 16, model.rep_dim)
    assert torch.equal(model.forward_head(phi), score)
    assert (score >= 0).all()


def test_vit_svdd_projection_has_no_bias():
    model = create_model("vit_svdd_tiny")
    assert all("bias" not in name for name, _ in model.phi.named_parameters())
    assert all(m.bias is None for m in model.phi.modules() if isinstance(m, torch.nn.Linear))
    assert "center" not in dict(model.named_parameters()) and "center" in dict(model.named_buffers())


@pytest.mark.parametrize("n", [1, 3])
def test_reconstructor_tiny_shapes_and_compositing(n):
    model = create_model("reconstructor_tiny").eval()
    assert isinstance(model, HybridReconstructor)
    face = _faces(n)
    mask = torch.zeros(n, 4, 4)
    mask[:, 1:3, 0:2] = 1.0
    rec, latents = model(face, mask)
    assert rec.shape == (n, 32, 32, 3) and rec.dtype == torch.uint8
    assert latents.shape == (n, 16, 16) and latents.dtype == torch.float32
    visible = torch.ones(32, 32, dtype=torch.bool)
    visible[8:24, 0:16] = False
    assert torch.equal(rec[:, visible], face[:, visible])  # visible pixels are the input's, bit for bit
    feats = model.forward_features(face.permute(0, 3, 1, 2).float() / 255, mask)
    assert feats["assembled"].shape == (n, 16, 8, 8)
    assert feats["coarse"].shape == feats["refined"].shape == feats["output"].shape == (n, 3, 32, 32)


def test_reconstructor_ignores_masked_pixels():
    model = create_model("reconstructor_tiny").eval()
    face = _faces(2)
    mask = torch.zeros(2, 4, 4)
    mask[:, 0, 0] = 1.0
    other = face.clone()
    other[:, 0:8, 0:8] = 0  # change only the masked patch
    with torch.no_grad():
        a, la = model(face, mask)
        b, lb = model(other, mask)
    assert torch.equal(a, b) and torch.allclose(la, lb)


@pytest.mark.parametrize("mode", ["selected", "all", "none"])
def test_expression_tiny_shapes(mode):
    model = create_model("expression_tiny", latent_mode=mode).eval()
    assert isinstance(model, ExpressionNet)
    logits, cam = model(_faces(3), torch.randn(3, 16, 16))
    assert logits.shape == (3, 7) and cam.shape == (3, 4, 4)
    assert (cam >= 0).all() and (cam <= 1).all()


def test_expression_vgg8_trunk_is_cheaper_with_the_same_contract():
    resnet = create_model("expression_default")
    vgg = create_model("expression_default", trunk="vgg8", widths=(32, 64, 128, 256)).eval()
    convs = [m for m in vgg.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 8  # the trunk's eight 3x3 convolutions (CBAM's 7x7 and 1x1 convolutions aside)
    assert sum(p.numel() for p in vgg.parameters()) < sum(p.numel() for p in resnet.parameters()) / 5
    logits, cam = vgg(_faces(2, 112), torch.randn(2, 196, 192))
    assert logits.shape == (2, 7) and cam.shape == (2, 14, 14)
    assert (cam >= 0).all() and (cam <= 1).all()
    with pytest.raises(ValueError, match="trunk"):
        create_model("expression_tiny", trunk="vgg16")


def test_expression_selects_top_half_of_cam():
    model = create_model("expression_tiny").eval()
    assert model.k == 8
    cam = torch.rand(2, 4, 4)
    latents = torch.arange(16, dtype=torch.float32)[None, :, None].expand(2, 16, 16)
    picked = model.select_latents(latents, cam)[..., 0]
    top = torch.topk(cam.reshape(2, -1), 8).indices.float()
    assert torch.equal(picked.sort(dim=1).values, top.sort(dim=1).values)


def test_expression_default_resizes_in_graph():
    model = create_model("expression_default", widths=(8, 16, 32, 64)).eval()
    logits, cam = model(_faces(1, 112), torch.randn(1, 196, 192))
    assert logits.shape == (1, 7) and cam.shape == (1, 14, 14)


def test_patchify_roundtrip():
    x = torch.randn(2, 3, 32, 32)
    p = patchify(x, 8)
    assert p.shape == (2, 16, 192)
    assert torch.equal(unpatchify(p, 8, 4), x)
    # patch 1 is row 0, column 1, its pixels stored as (p, p, C) like MAE
    assert torch.equal(p[:, 1].reshape(2, 8, 8, 3).permute(0, 3, 1, 2), x[:, :, 0:8, 8:16])


def test_svdd_encoder_initialised_from_the_reconstructor():
    rec = create_model("reconstructor_tiny")
    svdd = create_model("vit_svdd_tiny")
    svdd.load_encoder_from(rec.encoder.state_dict())
    assert torch.equal(svdd.encoder.blocks[0].attn.qkv.weight, rec.encoder.blocks[0].attn.qkv.weight)
