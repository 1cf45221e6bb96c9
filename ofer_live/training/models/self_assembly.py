"""Self-assembly layer (Latent-OFER section 3.2.2, Eq. 2-3), vectorised, batched and ONNX-exportable.

For every **masked** feature patch ``p_i`` (the feature map is cut into the same G x G grid as the face) three
candidates are mixed::

    p_i <- (S_sym * p_s + S_known * p_k + S_prev * p_prev) / (S_sym + S_known + S_prev)

- ``p_s``: the patch at the same grid position of the horizontally **flipped** feature map (i.e. the mirrored
  position's content, mirrored), averaged with its 8 neighbouring patches of the flipped map using binomial
  weights ``[1, 2, 1] x [1, 2, 1] / 16`` (the mirrored patch itself weighs 4/16; borders renormalise over the
  patches that exist). ``sym_kernel=1`` uses the mirrored patch alone.
- ``p_k``: the most similar **unmasked** patch (cosine similarity over the flattened ``C * f * f`` patch vector,
  ``argmax`` + ``gather``). With no unmasked patch at all, ``S_known = 0``.
- ``p_prev``: the previously generated patch, i.e. the output at the previous **masked** position in raster order
  (``S_0 = 0`` for the first masked patch of an image).

Similarities ``S(p_i, p_x)`` are cosine similarities (Eq. 2) between the candidate and the *incoming* content of
``p_i`` (the ViT-filled features), clamped at 0 so an anti-correlated candidate gets no weight, then divided by
their sum ("normalised"), so the three weights sum to 1. If all three are 0 the patch keeps its incoming content.
Unmasked patches pass through unchanged.

**The sequential term, vectorised.** In the paper ``p_prev`` is the output of the previous step, a chain that
cannot be computed in one parallel pass. We unroll it as a fixed number of Jacobi sweeps: sweep 0 mixes only
``p_s`` and ``p_k``; sweep ``t`` recomputes every masked patch with ``p_prev`` taken from sweep ``t - 1``
(previous masked position found with a strictly-lower-triangular max, no loop over patches). After ``t`` sweeps the
first ``t + 1`` patches of every chain of masked patches equal the exact sequential recursion, so
``steps = G*G - 1`` is exact and the default ``steps = 2`` keeps the dependence on the two previous generated
patches, which is where nearly all of its weight comes from. The layer has no parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ofer_live.training.models.vit import patchify, unpatchify

__all__ = ["SelfAssembly", "self_assembly_reference"]

_BINOMIAL = torch.tensor([1.0, 2.0, 1.0])


def _cosine(a: Tensor, b: Tensor, eps: float) -> Tensor:
    """a, b: (N, L, V) -> (N, L) cosine similarity along V."""
    return (F.normalize(a, dim=-1, eps=eps) * F.normalize(b, dim=-1, eps=eps)).sum(dim=-1)


class SelfAssembly(nn.Module):
    """feat (N, C, H, W), mask (N, G, G) float (1 = masked) -> (N, C, H, W); ``H``, ``W`` multiples of G.

    ``assemble`` also returns the normalised weights (N, G*G, 3) in the order (sym, known, prev); rows of
    unmasked patches are 0.
    """

    def __init__(self, patch_grid: int, sym_kernel: int = 3, steps: int = 2, eps: float = 1e-6) -> None:
        super().__init__()
        if sym_kernel not in (1, 3):
            raise ValueError(f"sym_kernel must be 1 or 3, got {sym_kernel}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.patch_grid = patch_grid
        self.sym_kernel = sym_kernel
        self.steps = steps
        self.eps = eps
        n = patch_grid * patch_grid
        # earlier[i, j] = j + 1 if j < i (strictly lower triangle): used to find the previous masked position.
        earlier = torch.tril(torch.ones(n, n), diagonal=-1) * (torch.arange(n, dtype=torch.float32) + 1.0)[None]
        self.register_buffer("earlier", earlier, persistent=False)
        k = torch.outer(_BINOMIAL, _BINOMIAL) if sym_kernel == 3 else torch.ones(1, 1)
        self.register_buffer("sym_weight", k[None, None], persistent=False)

    def symmetric_candidates(self, feat: Tensor) -> Tensor:
        """feat: (N, C, H, W) -> p_s map (N, C, H, W): flipped map, neighbourhood-averaged at patch level."""
        n, c, h, w = feat.shape
        flipped = torch.flip(feat, dims=[3])
        if self.sym_kernel == 1:
            return flipped
        f = h // self.patch_grid
        # Depthwise patch-level average as a 1-channel dilated conv over (N*C, 1, H, W): the kernel shape stays
        # static for the exporter whatever C is.
        summed = F.conv2d(flipped.reshape(-1, 1, h, w), self.sym_weight, padding=f, dilation=f)
        norm = F.conv2d(torch.ones_like(flipped[:1, :1]), self.sym_weight, padding=f, dilation=f)
        return (summed / norm).reshape(-1, c, h, w)

    def assemble(self, feat: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """feat: (N, C, H, W), mask: (N, G, G) -> (out (N, C, H, W), weights (N, G*G, 3))."""
        n, c, h, w = feat.shape
        g = self.patch_grid
        f = h // g
        eps = self.eps
        m = (mask.reshape(mask.shape[0], g * g) > 0.5).to(feat.dtype)  # N, L
        p = patchify(feat, f)  # N, L, V
        p_s = patchify(self.symmetric_candidates(feat), f)

        s_sym = _cosine(p, p_s, eps).clamp(min=0.0)

        pn = F.normalize(p, dim=-1, eps=eps)
        sim = torch.matmul(pn, pn.transpose(1, 2))  # N, L, L (row: query i, column: candidate j)
        sim = sim - 4.0 * m[:, None, :]  # masked candidates can never win (cosine >= -1)
        s_known, k_idx = sim.max(dim=-1)
        any_known = ((1.0 - m).sum(dim=-1, keepdim=True) > 0).to(feat.dtype)
        s_known = s_known.clamp(min=0.0) * any_known
        p_k = torch.gather(p, 1, k_idx[..., None].expand(-1, -1, p.shape[-1]))

        prev_pos = (self.earlier[None] * m[:, None, :]).max(dim=-1).values  # N, L: previous masked j + 1, 0 = none
        has_prev = (prev_pos > 0).to(feat.dtype)
        prev_idx = (prev_pos - 1.0).clamp(min=0.0).to(torch.int64)
        gather_prev = prev_idx[..., None].expand(-1, -1, p.shape[-1])

        base = s_sym[..., None] * p_s + s_known[..., None] * p_k
        base_w = s_sym + s_known
        cur = self._mix(base, base_w, p)
        s_prev = torch.zeros_like(s_sym)
        for _ in range(self.steps):  # fixed, small number of sweeps (unrolled in the graph), not a loop over patches
            p_prev = torch.gather(cur, 1, gather_prev)
            s_prev = _cosine(p, p_prev, eps).clamp(min=0.0) * has_prev
            cur = self._mix(base + s_prev[..., None] * p_prev, base_w + s_prev, p)

        out = p * (1.0 - m[..., None]) + cur * m[..., None]
        weights = torch.stack([s_sym, s_known, s_prev], dim=-1)
        total = weights.sum(dim=-1, keepdim=True)
        weights = torch.where(total > eps, weights / total.clamp(min=eps), torch.zeros_like(weights)) * m[..., None]
        return unpatchify(out, f, g, channels=c), weights

    def _mix(self, weighted_sum: Tensor, weight_total: Tensor, fallback: Tensor) -> Tensor:
        """weighted_sum (N, L, V), weight_total (N, L), fallback (N, L, V) -> (N, L, V) normalised mix."""
        ok = (weight_total > self.eps)[..., None]
        return torch.where(ok, weighted_sum / weight_total.clamp(min=self.eps)[..., None], fallback)

    def forward(self, feat: Tensor, mask: Tensor) -> Tensor:
        """feat: (N, C, H, W), mask: (N, G, G) float (1 = masked) -> (N, C, H, W)."""
        return self.assemble(feat, mask)[0]


@torch.no_grad()
def self_assembly_reference(layer: SelfAssembly, feat: Tensor, mask: Tensor) -> Tensor:
    """The paper's sequential recursion with Python loops (slow; for tests only).

    feat: (C, H, W) one sample, mask: (G, G) -> (C, H, W). Uses ``layer``'s p_s and similarity definitions, and the
    exact previously generated patch (the output of the previous masked patch in raster order).
    """
    g = layer.patch_grid
    c, h, _ = feat.shape
    f = h // g
    p = patchify(feat[None], f)[0]  # L, V
    p_s = patchify(layer.symmetric_candidates(feat[None]), f)[0]
    m = mask.reshape(-1) > 0.5
    out = p.clone()
    eps = layer.eps

    def cos(a: Tensor, b: Tensor) -> float:
        return float((F.normalize(a, dim=0, eps=eps) * F.normalize(b, dim=0, eps=eps)).sum().clamp(min=0.0))

    prev: Tensor | None = None
    for i in range(g * g):
        if not m[i]:
            continue
        s_sym = cos(p[i], p_s[i])
        known = [j for j in range(g * g) if not m[j]]
        if known:
            sims = [float((F.normalize(p[i], dim=0, eps=eps) * F.normalize(p[j], dim=0, eps=eps)).sum()) for j in known]
            best = known[max(range(len(known)), key=lambda t: sims[t])]
            s_known, p_k = max(sims[known.index(best)], 0.0), p[best]
        else:
            s_known, p_k = 0.0, torch.zeros_like(p[i])
        if prev is None:
            s_prev, p_prev = 0.0, torch.zeros_like(p[i])
        else:
            s_prev, p_prev = cos(p[i], prev), prev
        total = s_sym + s_known + s_prev
        out[i] = (s_sym * p_s[i] + s_known * p_k + s_prev * p_prev) / total if total > eps else p[i]
        prev = out[i]
    return unpatchify(out[None], f, g, channels=c)[0]
