"""The self-assembly layer on hand-made tensors."""

from __future__ import annotations

import pytest
import torch

from ofer_live.training.models import SelfAssembly
from ofer_live.training.models.self_assembly import self_assembly_reference


def _upsample(grid_map: torch.Tensor, f: int) -> torch.Tensor:
    """(N, C, G, G) -> (N, C, G*f, G*f), every feature patch constant inside."""
    return grid_map.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)


def test_weights_sum_to_one_on_masked_patches_and_zero_elsewhere():
    torch.manual_seed(0)
    layer = SelfAssembly(patch_grid=4)
    feat = torch.rand(2, 5, 8, 8) + 0.1  # positive features: all cosine similarities > 0
    mask = torch.zeros(2, 4, 4)
    mask[0, 1, 1:3] = 1
    mask[1, 2:, 0] = 1
    _, weights = layer.assemble(feat, mask)
    m = mask.reshape(2, 16).bool()
    assert torch.allclose(weights[m].sum(dim=-1), torch.ones(int(m.sum())), atol=1e-6)
    assert (weights >= 0).all()
    assert torch.equal(weights[~m], torch.zeros_like(weights[~m]))
    # the first masked patch of each image has no previously generated patch: S_0 = 0
    assert weights[0, 5, 2] == 0 and weights[0, 6, 2] > 0


def test_unmasked_patches_pass_through_unchanged():
    torch.manual_seed(1)
    layer = SelfAssembly(patch_grid=4)
    feat = torch.randn(2, 3, 8, 8)
    mask = torch.zeros(2, 4, 4)
    mask[:, 0, 3] = 1
    mask[1, 3, :] = 1
    out = layer(feat, mask)
    pix = mask.repeat_interleave(2, 1).repeat_interleave(2, 2).bool()[:, None].expand_as(feat)
    assert torch.equal(out[~pix], feat[~pix])
    assert not torch.allclose(out[pix], feat[pix])
    # no mask at all: identity
    assert torch.equal(layer(feat, torch.zeros(2, 4, 4)), feat)


def test_symmetric_face_reconstructs_the_mirrored_patch():
    """A left-right symmetric map whose masked patch holds a faded copy of the truth: the output is the mirror."""
    torch.manual_seed(2)
    g, f, c = 4, 2, 6
    half = torch.rand(1, c, g, g) + 0.5
    truth = _upsample(half + half.flip(-1), f)  # symmetric, every patch distinct from its row neighbours
    mask = torch.zeros(1, g, g)
    mask[0, 1, 2] = 1  # mirror position: (1, 1), unmasked
    feat = truth.clone()
    feat[:, :, 2:4, 4:6] *= 0.3  # the masked patch: the ViT's faded guess of the truth
    layer = SelfAssembly(patch_grid=g, sym_kernel=1)
    out, weights = layer.assemble(feat, mask)
    assert torch.allclose(out[:, :, 2:4, 4:6], truth[:, :, 2:4, 2:4].flip(-1), atol=1e-5)
    assert torch.allclose(out, truth, atol=1e-5)
    assert weights[0, 6, 0] > 0.4  # the symmetric candidate carries (about) half the weight


def test_symmetric_candidate_is_the_flipped_neighbourhood_mean():
    """Default layer (3x3 binomial neighbourhood of the flipped map): p_s of patch (r, c) averages the mirrored
    patches around (r, G-1-c), not the patches around (r, c)."""
    g, f = 4, 1
    grid = torch.zeros(1, 1, g, g)
    grid[0, 0, 1, 0] = 16.0  # a single bump at (1, 0); its mirror position is (1, 3)
    layer = SelfAssembly(patch_grid=g, sym_kernel=3)
    p_s = layer.symmetric_candidates(_upsample(grid, f))[0, 0]
    assert p_s[1, 3] == pytest.approx(16.0 * 4 / 12)  # centre weight 4 of the 12 that exist at the border
    assert p_s[1, 0] == 0.0 and p_s[1, 1] == 0.0  # nothing leaks to the un-mirrored side
    assert p_s[0, 3] > 0 and p_s[1, 2] > 0 and p_s[3, 3] == 0.0


def test_batch_equals_per_sample():
    torch.manual_seed(3)
    layer = SelfAssembly(patch_grid=4, steps=3)
    feat = torch.randn(4, 3, 8, 8)
    mask = (torch.rand(4, 4, 4) < 0.4).float()
    mask[3] = 1.0  # everything masked: no known patch
    batch = layer(feat, mask)
    single = torch.cat([layer(feat[i : i + 1], mask[i : i + 1]) for i in range(4)])
    assert torch.allclose(batch, single, atol=1e-6)
    assert torch.isfinite(batch).all()


def test_unrolled_sweeps_equal_the_sequential_recursion():
    """With G*G - 1 sweeps the vectorised layer equals the paper's patch-by-patch loop."""
    torch.manual_seed(4)
    g = 4
    feat = torch.randn(3, 2, 8, 8)
    mask = (torch.rand(3, g, g) < 0.5).float()
    mask[0, 1, :] = 1.0  # a chain of masked patches
    exact = SelfAssembly(patch_grid=g, steps=g * g - 1)
    out = exact(feat, mask)
    for i in range(3):
        ref = self_assembly_reference(exact, feat[i], mask[i])
        assert torch.allclose(out[i], ref, atol=1e-5)


def test_default_steps_are_exact_for_short_chains():
    torch.manual_seed(5)
    feat = torch.randn(1, 2, 8, 8)
    mask = torch.zeros(1, 4, 4)
    mask[0, 1, 1] = mask[0, 2, 1] = mask[0, 3, 2] = 1.0  # chain of 3 masked patches in raster order
    layer = SelfAssembly(patch_grid=4, steps=2)
    assert torch.allclose(layer(feat, mask)[0], self_assembly_reference(layer, feat[0], mask[0]), atol=1e-5)


def test_gradient_flows_through_the_layer():
    feat = torch.randn(2, 3, 8, 8, requires_grad=True)
    mask = torch.zeros(2, 4, 4)
    mask[:, 1, 1] = 1
    SelfAssembly(patch_grid=4)(feat, mask).sum().backward()
    assert feat.grad is not None and feat.grad.abs().sum() > 0
