"""ViT-SVDD occlusion detector (Latent-OFER section 3.1): per-patch ViT latents -> bias-free projection phi ->
``patch_score = ||phi - c||^2 / R^2`` (> 1 means occluded).

Design (following Ruff et al., Deep SVDD 2018 / Deep SAD 2019):

- phi has **no bias terms** and a positively homogeneous activation (LeakyReLU), so it cannot map every input to
  ``c`` with zero weights plus a bias (the "hypersphere collapse" of Deep SVDD). The ViT encoder's final
  LayerNorm has no affine parameters, so the encoder output keeps unit variance per token.
- ``c`` is set once from an initial forward pass (:func:`init_center`) and stays fixed: it is a buffer, not a
  parameter. Near-zero coordinates are pushed to ``+-eps`` as in the reference code. Centres are per patch
  position by default (faces are aligned, so position ``(r, c)`` always sees the same facial part).
- ``R^2`` is the ``(1 - nu)`` quantile of the squared distances of held-out clean patches
  (:func:`calibrate_radius`), stored as a buffer so the score is normalised in-graph.
- The objectives live in ``ofer_live.training.losses`` (``deep_svdd_loss``, ``deep_sad_loss``). Weight decay is the
  optimiser's job (``torch.optim.AdamW(weight_decay=...)``), as Eq. (1)'s second term.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ofer_live import contracts
from ofer_live.training.models.registry import ModelConfig, register_model
from ofer_live.training.models.vit import Normalize, ViTEncoder, patchify, to_unit_image, unpatchify
from ofer_live.training.presets import SIZES

__all__ = ["ViTSVDD", "calibrate_radius", "init_center", "patchify", "unpatchify"]


class ViTSVDD(nn.Module):
    """face (N, S, S, 3) uint8 RGB -> patch_score (N, G, G) float32.

    ``forward_features``: x (N, 3, S, S) float in [0, 1] -> phi (N, G*G, K).
    ``forward_head``: phi (N, G*G, K) -> patch_score (N, G, G).
    """

    def __init__(
        self,
        face_size: int = SIZES["default"].face_size,
        patch_grid: int = SIZES["default"].patch_grid,
        latent_dim: int = SIZES["default"].latent_dim,
        depth: int = 4,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        proj_hidden: int = 192,
        rep_dim: int = 64,
        per_position_center: bool = True,
        per_position_radius: bool = False,
    ) -> None:
        super().__init__()
        self.config = ModelConfig(contracts.OCCLUSION, face_size, patch_grid, latent_dim)
        self.patch_grid = patch_grid
        self.rep_dim = rep_dim
        self.normalize = Normalize()
        self.encoder = ViTEncoder(
            face_size, patch_grid, latent_dim, depth, num_heads, mlp_ratio=mlp_ratio, norm_affine=False
        )
        # phi: bias-free by construction (Ruff et al.): no bias anywhere, LeakyReLU(0) = 0.
        self.phi = nn.Sequential(
            nn.Linear(latent_dim, proj_hidden, bias=False),
            nn.LeakyReLU(0.1),
            nn.Linear(proj_hidden, rep_dim, bias=False),
        )
        n_centers = patch_grid * patch_grid if per_position_center else 1
        self.register_buffer("center", torch.zeros(n_centers, rep_dim))
        # One R^2 for every position, or one per position (edges and the mouth vary more on clean faces).
        radius_shape = (patch_grid * patch_grid,) if per_position_radius else ()
        self.register_buffer("radius_sq", torch.ones(radius_shape))
        self.register_buffer("center_initialized", torch.zeros((), dtype=torch.bool))

    # -- pieces -------------------------------------------------------------------------------------------------
    def latents(self, x: Tensor) -> Tensor:
        """x: (N, 3, S, S) float in [0, 1] -> ViT latents (N, G*G, D)."""
        return self.encoder(self.normalize(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (N, 3, S, S) float in [0, 1] -> phi (N, G*G, K)."""
        return self.phi(self.latents(x))

    def distances(self, phi: Tensor) -> Tensor:
        """phi: (N, G*G, K) -> squared distances to the centre(s) (N, G*G)."""
        return ((phi - self.center) ** 2).sum(dim=-1)

    def forward_head(self, phi: Tensor) -> Tensor:
        """phi: (N, G*G, K) -> patch_score (N, G, G) = ||phi - c||^2 / R^2."""
        score = self.distances(phi) / self.radius_sq
        return score.reshape(-1, self.patch_grid, self.patch_grid)

    def forward(self, face: Tensor) -> Tensor:
        """face: (N, S, S, 3) uint8 RGB -> patch_score (N, G, G) float32."""
        return self.forward_head(self.forward_features(to_unit_image(face)))

    def set_radius(self, radius_sq: float | Tensor) -> None:
        """Store R^2 in the buffer used by ``forward_head``: a positive float, or (G*G,) positive values for a
        model with ``per_position_radius`` (a float then fills every position)."""
        value = torch.as_tensor(radius_sq, dtype=self.radius_sq.dtype).reshape(-1)
        if not bool((value > 0).all()):
            raise ValueError(f"radius_sq must be positive, got {radius_sq}")
        if value.numel() == 1:
            self.radius_sq.fill_(float(value[0]))
        elif value.numel() == self.radius_sq.numel():
            self.radius_sq.copy_(value.reshape(self.radius_sq.shape))
        else:
            raise ValueError(f"radius_sq has {value.numel()} values, the model {self.radius_sq.numel()}")

    def load_encoder_from(self, encoder_state: dict[str, Tensor]) -> None:
        """Initialise the ViT encoder from another encoder's state dict (e.g. the MAE-trained reconstructor's
        ``model.encoder.state_dict()``); its mask token and the final norm's affine parameters are ignored."""
        own = self.encoder.state_dict()
        picked = {k: v for k, v in encoder_state.items() if k in own and own[k].shape == v.shape}
        missing = [k for k in own if k not in picked]
        if missing:
            raise ValueError(f"encoder state lacks {len(missing)} tensors, e.g. {missing[0]!r}")
        self.encoder.load_state_dict(picked, strict=True)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.phi.parameters())


@torch.no_grad()
def init_center(model: ViTSVDD, images: Iterable[Tensor], eps: float = 0.1) -> Tensor:
    """Set ``model.center`` to the mean phi over clean ``images`` and return it.

    images: iterable of (N, 3, S, S) float in [0, 1] (or (N, S, S, 3) uint8, converted) -> center (P, K), with
    P = G*G for per-position centres, else 1. Coordinates with ``|c| < eps`` become ``+-eps`` (sign kept, 0 -> +eps),
    as in the Deep SVDD reference, so that a zero-weight phi cannot reach ``c`` trivially.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros_like(model.center)
    count = 0
    for batch in images:
        x = to_unit_image(batch) if batch.dtype == torch.uint8 else batch
        x = x.to(model.center.device)
        phi = model.forward_features(x)  # N, L, K
        if model.center.shape[0] == 1:
            total += phi.sum(dim=(0, 1))[None]
            count += phi.shape[0] * phi.shape[1]
        else:
            total += phi.sum(dim=0)
            count += phi.shape[0]
    if count == 0:
        raise ValueError("init_center needs at least one image")
    c = total / count
    c[(c.abs() < eps) & (c < 0)] = -eps
    c[(c.abs() < eps) & (c >= 0)] = eps
    model.center.copy_(c)
    model.center_initialized.fill_(True)
    model.train(was_training)
    return model.center.clone()


def calibrate_radius(distances: Tensor, nu: float = 0.05) -> float:
    """distances: any-shape float tensor of squared distances of held-out **clean** patches -> R^2 (float).

    R^2 is the ``(1 - nu)`` quantile, so about a fraction ``nu`` of clean patches score above 1.
    """
    if not 0.0 <= nu < 1.0:
        raise ValueError(f"nu must be in [0, 1), got {nu}")
    flat = distances.detach().reshape(-1).to(torch.float64)
    if flat.numel() == 0:
        raise ValueError("calibrate_radius needs at least one distance")
    r2 = float(torch.quantile(flat, 1.0 - nu))
    return max(r2, 1e-12)


def calibrate_radius_per_position(distances: Tensor, nu: float = 0.05, shrink: float = 0.25) -> Tensor:
    """distances: (N, G, G) or (N, P) squared distances of held-out clean patches -> R^2 per position (P,).

    Each position's ``(1 - nu)`` quantile, pulled towards the global one by ``shrink`` (a quantile of N values
    per position is noisy): R^2_p = (1 - shrink) q_p + shrink q. Positions that vary more on clean faces (the
    mouth, the edges) get a larger radius, so they stop raising false alarms.
    """
    flat = distances.detach().reshape(distances.shape[0], -1).to(torch.float64)
    if flat.shape[0] < 2:
        raise ValueError("per-position calibration needs at least two faces")
    per_position = torch.quantile(flat, 1.0 - nu, dim=0)
    overall = calibrate_radius(flat, nu)
    return ((1 - shrink) * per_position + shrink * overall).clamp(min=1e-12).to(torch.float32)


@register_model
def vit_svdd_tiny(**kwargs) -> ViTSVDD:
    """Test fixture size: S=32, G=4 (patch 8), D=16, 1 block."""
    cfg = dict(**SIZES["tiny"]._asdict(), depth=1, num_heads=2, mlp_ratio=2.0, proj_hidden=32, rep_dim=16)
    cfg.update(kwargs)
    return ViTSVDD(**cfg)


@register_model
def vit_svdd_default(**kwargs) -> ViTSVDD:
    """2-core CPU size: S=112, G=14 (patch 8), D=192 (ViT-Tiny width), 4 blocks, 3 heads."""
    cfg = dict(**SIZES["default"]._asdict(), depth=4, num_heads=3, mlp_ratio=4.0, proj_hidden=192, rep_dim=64)
    cfg.update(kwargs)
    return ViTSVDD(**cfg)


@register_model
def vit_svdd_paper(**kwargs) -> ViTSVDD:
    """Paper size: ViT-B/16 at 224 (S=224, G=14, D=768, 12 blocks, 12 heads)."""
    cfg = dict(
        **SIZES["paper"]._asdict(),
        depth=12,
        num_heads=12,
        mlp_ratio=4.0,
        proj_hidden=768,
        rep_dim=128,
    )
    cfg.update(kwargs)
    return ViTSVDD(**cfg)
