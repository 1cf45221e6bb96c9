"""Shared ViT pieces: in-graph preprocessing, patchify/unpatchify (as in MAE), sin-cos position embeddings and
a timm-``Block`` patch encoder with an optional learned mask token.

Conventions used by every model in this package:

- Contract inputs are aligned faces, ``uint8`` RGB, NHWC: ``(N, S, S, 3)``.
- ``to_unit_image`` turns them into float images in [0, 1], NCHW: ``(N, 3, S, S)``. This is the differentiable
  interface between models (the reconstructor's float output feeds the FER net during training).
- ``normalize`` applies the ImageNet mean/std inside the graph.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_unit_image(face: Tensor) -> Tensor:
    """face: (N, S, S, 3) uint8 RGB (or float in [0, 255]) -> (N, 3, S, S) float32 in [0, 1]."""
    return face.permute(0, 3, 1, 2).to(torch.float32) / 255.0


def to_uint8_image(image: Tensor) -> Tensor:
    """image: (N, 3, S, S) float in [0, 1] -> (N, S, S, 3) uint8 (clamped and rounded in-graph)."""
    return torch.round(image.clamp(0.0, 1.0) * 255.0).to(torch.uint8).permute(0, 2, 3, 1)


class Normalize(nn.Module):
    """(N, 3, H, W) float in [0, 1] -> (N, 3, H, W) float, ImageNet-normalised (constants stored as buffers)."""

    def __init__(self, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """images: (N, C, H, W) -> (N, (H/p)*(W/p), p*p*C), patches in raster order, pixels (p, p, C) inside (MAE)."""
    n, c, h, w = images.shape
    p = patch_size
    gh, gw = h // p, w // p
    x = images.reshape(n, c, gh, p, gw, p)
    x = x.permute(0, 2, 4, 3, 5, 1)  # N, gh, gw, p, p, C
    return x.reshape(n, gh * gw, p * p * c)


def unpatchify(patches: Tensor, patch_size: int, grid: int, channels: int = 3) -> Tensor:
    """patches: (N, G*G, p*p*C) -> (N, C, G*p, G*p); inverse of ``patchify`` for a square grid."""
    p = patch_size
    x = patches.reshape(-1, grid, grid, p, p, channels)
    x = x.permute(0, 5, 1, 3, 2, 4)  # N, C, G, p, G, p
    return x.reshape(-1, channels, grid * p, grid * p)


def mask_to_pixels(mask: Tensor, patch_size: int) -> Tensor:
    """mask: (N, G, G) float (1 = occluded) -> (N, 1, G*p, G*p) float, nearest-neighbour upsampling."""
    g = mask.shape[-1]
    m = mask[:, :, None, :, None].expand(-1, -1, patch_size, -1, patch_size)
    return m.reshape(-1, 1, g * patch_size, g * patch_size)


def sincos_pos_embed_2d(dim: int, grid: int) -> Tensor:
    """-> (G*G, dim) float32 fixed 2-D sin-cos position embedding (MAE), raster order. ``dim`` divisible by 4."""
    if dim % 4 != 0:
        raise ValueError(f"sin-cos position embedding needs dim divisible by 4, got {dim}")
    coords = torch.arange(grid, dtype=torch.float64)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))

    def embed(pos: Tensor) -> Tensor:
        out = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    return torch.cat([embed(yy), embed(xx)], dim=1).to(torch.float32)


class ViTEncoder(nn.Module):
    """Patch embedding + fixed sin-cos positions + ``depth`` timm ``Block``s + final LayerNorm. No class token.

    ``forward(x, mask=None)``: x (N, 3, S, S) normalised float, mask (N, G, G) float or None
    -> latents (N, G*G, D). Masked tokens (mask = 1) are replaced by a learned mask token *before* the
    position embedding is added, so the sequence length is fixed (dynamic batch exports cleanly).
    ``norm_affine=False`` gives a final LayerNorm without learnable scale/shift (used by the SVDD detector so the
    encoder cannot collapse its output onto a constant through the norm's bias).
    """

    def __init__(
        self,
        face_size: int,
        patch_grid: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        use_mask_token: bool = False,
        norm_affine: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if face_size % patch_grid != 0:
            raise ValueError(f"patch_grid {patch_grid} does not divide face_size {face_size}")
        self.face_size = face_size
        self.patch_grid = patch_grid
        self.patch_size = face_size // patch_grid
        self.dim = dim
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(dim, patch_grid)[None], persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim)) if use_mask_token else None
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *[Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=r) for r in rates]
        )
        self.norm = nn.LayerNorm(dim, elementwise_affine=norm_affine)
        self._init_weights()

    def _init_weights(self) -> None:
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def embed(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x: (N, 3, S, S), mask: (N, G, G) or None -> tokens (N, G*G, D) with mask tokens and positions."""
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        if mask is not None and self.mask_token is not None:
            m = mask.reshape(mask.shape[0], -1, 1).to(tokens.dtype)
            tokens = tokens * (1.0 - m) + self.mask_token * m
        return tokens + self.pos_embed

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x: (N, 3, S, S) normalised float, mask: (N, G, G) float or None -> (N, G*G, D) float."""
        return self.norm(self.blocks(self.embed(x, mask)))


class ViTDecoder(nn.Module):
    """MAE-style decoder: latents (N, G*G, D) -> pixel patches (N, G*G, p*p*3) (in [0, 1] image units)."""

    def __init__(
        self,
        in_dim: int,
        patch_grid: int,
        patch_size: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, dim)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(dim, patch_grid)[None], persistent=False)
        self.blocks = nn.Sequential(*[Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, patch_size * patch_size * 3)
        nn.init.zeros_(self.pred.weight)
        nn.init.constant_(self.pred.bias, 0.5)

    def forward(self, latents: Tensor) -> Tensor:
        """latents: (N, G*G, D) -> (N, G*G, p*p*3) float."""
        x = self.embed(latents) + self.pos_embed
        return self.pred(self.norm(self.blocks(x)))


def heads_for(dim: int) -> int:
    """A sensible head count for ``dim`` (64-dim heads, at least 1, dividing ``dim``)."""
    heads = max(1, dim // 64)
    while dim % heads:
        heads -= 1
    return max(heads, 1)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def check_divisible(value: int, by: int, what: str) -> None:
    """Raise ValueError unless ``by`` divides ``value``."""
    if value % by:
        raise ValueError(f"{what}: {value} is not divisible by {by}")


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Normalize",
    "ViTDecoder",
    "ViTEncoder",
    "check_divisible",
    "count_parameters",
    "heads_for",
    "mask_to_pixels",
    "patchify",
    "sincos_pos_embed_2d",
    "to_uint8_image",
    "to_unit_image",
    "unpatchify",
]
