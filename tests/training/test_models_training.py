"""One short training run on 8 synthetic samples per architecture: finite, decreasing loss; L_sc reaches the
generator."""

from __future__ import annotations

import pytest
import torch

from ofer_live.training.losses import (
    FeatureConsistency,
    ReconstructionWeights,
    consistency_loss,
    deep_sad_loss,
    discriminator_losses,
    expression_loss,
    generator_losses,
    semantic_consistency_loss,
)
from ofer_live.training.models import (
    FeaturePatchDiscriminator,
    PatchDiscriminator,
    create_model,
    init_center,
)

STEPS = 6


def clean_faces(n: int, gen: torch.Generator) -> torch.Tensor:
    """-> (n, 32, 32, 3) uint8 random faces."""
    return torch.randint(0, 256, (n, 32, 32, 3), generator=gen, dtype=torch.uint8)


def unit(faces: torch.Tensor) -> torch.Tensor:
    """(n, S, S, 3) uint8 -> (n, 3, S, S) float in [0, 1]."""
    return faces.permute(0, 3, 1, 2).float() / 255.0


def _decreasing(losses: list[float]) -> bool:
    return all(map(lambda v: v == v and abs(v) != float("inf"), losses)) and losses[-1] < losses[0]


def test_vit_svdd_training_steps():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = create_model("vit_svdd_tiny")
    faces = clean_faces(8, gen)
    labels = (torch.rand(8, 4, 4, generator=gen) < 0.2).float()  # "pasted" patches
    init_center(model, [clean_faces(8, gen)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    losses = []
    for _ in range(STEPS):
        loss = deep_sad_loss(model.distances(model.forward_features(unit(faces))), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert _decreasing(losses), losses


def _fer(expression, latents):
    def fer(image):
        return expression.forward_head(expression.forward_features(image, latents))

    return fer


def test_reconstructor_training_steps_with_all_losses():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = create_model("reconstructor_tiny")
    expression = create_model("expression_tiny").eval().requires_grad_(False)
    d_patch, d_feat = PatchDiscriminator(base=8, n_down=2), FeaturePatchDiscriminator(patch_grid=4, base=8)
    target = unit(clean_faces(8, gen))
    mask = (torch.rand(8, 4, 4, generator=gen) < 0.3).float()
    opt_g = torch.optim.Adam(model.parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(list(d_patch.parameters()) + list(d_feat.parameters()), lr=1e-4)
    fer = _fer(expression, torch.zeros(8, 16, 16))
    with torch.no_grad():
        target_features = expression.stem_features(target)  # L_c: the frozen FER net's features of the target
        assembled = model.forward_features(target, mask)["assembled"]
    consistency = FeatureConsistency(assembled.shape[1], target_features.shape[1])
    opt_g.add_param_group({"params": list(consistency.parameters())})
    losses, l_c = [], []
    for _ in range(STEPS):
        out = model.forward_features(target, mask)
        terms = generator_losses(
            out,
            target,
            mask,
            consistency=consistency(out["assembled"], target_features),
            fer=fer,
            patch_disc=d_patch,
            feature_disc=d_feat,
        )
        opt_g.zero_grad()
        terms["total"].backward()
        opt_g.step()
        d_terms = discriminator_losses(out, target, patch_disc=d_patch, feature_disc=d_feat)
        opt_d.zero_grad()
        d_terms["total"].backward()
        opt_d.step()
        assert all(torch.isfinite(v) for v in (*terms.values(), *d_terms.values()))
        losses.append(terms["total"].item())
        l_c.append(terms["c"].item())
    assert _decreasing(losses), losses
    assert 0.05 < l_c[0] < 20.0 and l_c[-1] < l_c[0], l_c  # relative: about 1 untrained, and it learns
    assert ReconstructionWeights() == ReconstructionWeights(re=1.0, c=0.01, sc=1.0, d=0.002)


def test_expression_training_steps():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    model = create_model("expression_tiny", dropout=0.0)
    faces = unit(clean_faces(8, gen))
    latents = torch.randn(8, 16, 16, generator=gen)
    labels = torch.arange(8) % 7
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(STEPS):
        loss = expression_loss(model.forward_head(model.forward_features(faces, latents)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert _decreasing(losses), losses
    soft = torch.softmax(torch.randn(8, 7), dim=1)
    assert torch.isfinite(expression_loss(torch.randn(8, 7), soft))


def test_semantic_consistency_gradient_reaches_the_generator():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    model = create_model("reconstructor_tiny")
    expression = create_model("expression_tiny").eval().requires_grad_(False)
    target = unit(clean_faces(4, gen))
    mask = torch.zeros(4, 4, 4)
    mask[:, 1:3, 1:3] = 1.0
    out = model.forward_features(target, mask)
    fer = _fer(expression, out["latents"].detach())
    loss = semantic_consistency_loss(fer(out["output"]), fer(target))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    # the ViT decoder and the U-Net output layer both get gradient from L_sc alone
    assert grads["decoder.pred.weight"] is not None and grads["decoder.pred.weight"].abs().sum() > 0
    assert grads["refiner.out.weight"] is not None and grads["refiner.out.weight"].abs().sum() > 0
    assert all(p.grad is None for p in expression.parameters())  # the FER net stays frozen


def test_consistency_loss_is_relative_and_cannot_be_lowered_by_shrinking():
    """L_c is the masked MSE over the target's masked energy: a zero prediction scores 1 at any feature scale,
    and only the masked patches count."""
    gen = torch.Generator().manual_seed(4)
    target = torch.randn(2, 5, 8, 8, generator=gen)
    mask = torch.zeros(2, 4, 4)
    mask[:, :2] = 1.0
    zero = torch.zeros_like(target)
    assert consistency_loss(zero, target, mask).item() == pytest.approx(1.0)
    assert consistency_loss(zero, 1e-3 * target, mask).item() == pytest.approx(1.0)
    assert consistency_loss(target, target, mask).item() == pytest.approx(0.0)
    outside = target.clone()
    outside[..., 4:, :] += 5.0  # rows 4-7 of the 8x8 map are patch rows 2-3: unmasked
    assert consistency_loss(outside, target, mask).item() == pytest.approx(0.0)
