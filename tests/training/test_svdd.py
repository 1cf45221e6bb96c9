"""ViT-SVDD / Deep SAD: fixed centre, quantile radius, pasted patches score > 1 after a short training."""

from __future__ import annotations

import pytest
import torch

from ofer_live.training.losses import deep_sad_loss, deep_svdd_loss
from ofer_live.training.models import calibrate_radius, create_model, init_center


def clean_faces(n: int, gen: torch.Generator, size: int = 32) -> torch.Tensor:
    """-> (n, size, size, 3) uint8: a skin-tone base with darker eye and mouth bands and mild noise."""
    s = size / 32
    base = torch.tensor([200.0, 150.0, 120.0])[None, :, None, None] + 20 * torch.randn(n, 3, 1, 1, generator=gen)
    img = base.expand(n, 3, size, size).clone()
    img[:, :, int(9 * s) : int(13 * s), int(6 * s) : int(26 * s)] -= 60
    img[:, :, int(22 * s) : int(25 * s), int(10 * s) : int(22 * s)] -= 40
    img += 6 * torch.randn(n, 3, size, size, generator=gen)
    return img.clamp(0, 255).permute(0, 2, 3, 1).to(torch.uint8)


def paste_occluders(faces: torch.Tensor, gen: torch.Generator, grid: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """faces (n, S, S, 3) uint8 -> (faces with one flat random-colour patch pasted each, labels (n, G, G) float)."""
    faces = faces.clone()
    n, size = faces.shape[0], faces.shape[1]
    p = size // grid
    labels = torch.zeros(n, grid, grid)
    for i in range(n):
        r, c = torch.randint(0, grid, (2,), generator=gen).tolist()
        faces[i, r * p : (r + 1) * p, c * p : (c + 1) * p] = torch.randint(0, 256, (3,), generator=gen).to(torch.uint8)
        labels[i, r, c] = 1.0
    return faces, labels


def unit(faces: torch.Tensor) -> torch.Tensor:
    """(n, S, S, 3) uint8 -> (n, 3, S, S) float in [0, 1]."""
    return faces.permute(0, 3, 1, 2).float() / 255.0


def test_init_center_is_the_mean_with_eps_clamp():
    torch.manual_seed(0)
    model = create_model("vit_svdd_tiny").eval()
    faces = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    c = init_center(model, [faces[:3], faces[3:]], eps=0.1)
    with torch.no_grad():
        mean = model.forward_features(unit(faces)).mean(dim=0)
    expected = torch.where(mean.abs() < 0.1, torch.where(mean < 0, -0.1, 0.1), mean)
    assert torch.allclose(c, expected, atol=1e-5)
    assert (c.abs() >= 0.1 - 1e-7).all()
    assert bool(model.center_initialized)


def test_shared_center_option():
    model = create_model("vit_svdd_tiny", per_position_center=False).eval()
    c = init_center(model, [torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)])
    assert c.shape == (1, model.rep_dim)
    assert model(torch.zeros(1, 32, 32, 3, dtype=torch.uint8)).shape == (1, 4, 4)


def test_calibrate_radius_is_the_quantile():
    d = torch.arange(1, 101, dtype=torch.float32)
    assert calibrate_radius(d, nu=0.1) == pytest.approx(float(torch.quantile(d, 0.9)))
    assert calibrate_radius(d.reshape(10, 10), nu=0.0) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        calibrate_radius(d, nu=1.0)
    model = create_model("vit_svdd_tiny")
    model.set_radius(4.0)
    phi = torch.zeros(1, 16, model.rep_dim)
    model.center.fill_(0.0)
    model.center[:, 0] = 2.0  # distance^2 = 4 everywhere
    assert torch.allclose(model.forward_head(phi), torch.ones(1, 4, 4))


def test_losses():
    dist = torch.tensor([[1.0, 4.0]])
    assert deep_svdd_loss(dist) == pytest.approx(2.5)
    assert deep_sad_loss(dist, torch.tensor([[0.0, 1.0]]), eta=2.0, eps=0.0) == pytest.approx((1.0 + 0.5) / 2)


def test_short_deep_sad_training_flags_pasted_patches():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = create_model("vit_svdd_tiny")
    init_center(model, [clean_faces(32, gen)])
    center = model.center.clone()
    assert all(p is not model.center for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    model.train()
    losses = []
    for _ in range(60):
        occluded, labels = paste_occluders(clean_faces(32, gen), gen)
        x = torch.cat([clean_faces(16, gen), occluded])
        y = torch.cat([torch.zeros(16, 4, 4), labels])
        loss = deep_sad_loss(model.distances(model.forward_features(unit(x))), y)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert torch.equal(model.center, center)  # c stays fixed
    assert sum(losses[-10:]) < sum(losses[:10])
    model.eval()
    with torch.no_grad():
        held_out = clean_faces(64, gen)
        dist = model.distances(model.forward_features(unit(held_out)))
        model.set_radius(calibrate_radius(dist, nu=0.05))
        assert (model(held_out) > 1).float().mean() == pytest.approx(0.05, abs=0.01)
        test, labels = paste_occluders(clean_faces(16, gen), gen)
        score = model(test)
    assert (score[labels > 0] > 1).all()  # every pasted patch is flagged
    assert (score[labels == 0] > 1).float().mean() < 0.2  # and most clean patches are not


def test_per_position_radius_flags_the_same_share_everywhere(tmp_path):
    import numpy as np
    import onnxruntime as ort

    from ofer_live.export.onnx_export import export_model, make_model_metadata
    from ofer_live.training.models import create_model
    from ofer_live.training.models.vit_svdd import calibrate_radius, calibrate_radius_per_position

    gen = torch.Generator().manual_seed(0)
    spread = torch.linspace(0.5, 4.0, 16)  # positions whose clean distances vary 8x more than others
    clean = torch.rand(2000, 4, 4, generator=gen) * spread.reshape(4, 4)
    per_position = calibrate_radius_per_position(clean, nu=0.05, shrink=0.0)
    single = calibrate_radius(clean, nu=0.05)
    fpr_per_position = (clean / per_position.reshape(4, 4) > 1).float().mean(dim=0)
    fpr_single = (clean / single > 1).float().mean(dim=0)
    assert float(fpr_per_position.max() - fpr_per_position.min()) < 0.02  # about nu at every position
    assert float(fpr_single.max()) > 0.2 and float(fpr_single.min()) == 0.0  # one radius: the wide ones alarm
    shrunk = calibrate_radius_per_position(clean, nu=0.05, shrink=0.25)
    torch.testing.assert_close(shrunk, (0.75 * per_position + 0.25 * single).float())

    model = create_model("vit_svdd_tiny", per_position_radius=True).eval()
    model.set_radius(per_position)
    torch.testing.assert_close(model.radius_sq, per_position)
    path = export_model(model, "occlusion", tmp_path / "occlusion.onnx", make_model_metadata(model))
    face = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8, generator=gen)
    (onnx_score,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"face": face.numpy()}
    )
    with torch.no_grad():
        expected = model(face).numpy()
    np.testing.assert_allclose(onnx_score, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="has 3 values"):
        model.set_radius(torch.ones(3))
