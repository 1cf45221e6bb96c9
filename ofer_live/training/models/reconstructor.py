"""Hybrid reconstruction network (Latent-OFER section 3.2): an MAE-style ViT encoder/decoder fills the masked
patches from the visible ones, then a CNN U-Net with a self-assembly layer in its encoder refines the image.

Masking keeps the sequence length fixed: the tokens of masked patches are replaced by a learned mask token before
the position embedding (MAE drops them instead, which gives variable-length sequences that do not export with a
dynamic batch). The masked pixels therefore never reach the network.

Data flow (x: (N, 3, S, S) float in [0, 1], mask: (N, G, G), M = mask upsampled to pixels):

    latents  = ViTEncoder(normalize(x), mask)                    (N, G*G, D)   -> contract output ``latents``
    coarse   = unpatchify(ViTDecoder(latents))                   (N, 3, S, S)
    composed = x * (1 - M) + coarse * M
    refined  = composed + UNet(composed, M)  [self-assembly at S/4] (N, 3, S, S)
    output   = x * (1 - M) + refined * M -> uint8 (clamp + round) -> contract output ``reconstruction``
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ofer_live import contracts
from ofer_live.training.models.registry import ModelConfig, register_model
from ofer_live.training.models.self_assembly import SelfAssembly
from ofer_live.training.models.vit import (
    Normalize,
    ViTDecoder,
    ViTEncoder,
    mask_to_pixels,
    patchify,
    to_uint8_image,
    to_unit_image,
    unpatchify,
)
from ofer_live.training.presets import SIZES

__all__ = ["HybridReconstructor", "RefinerUNet", "patchify", "unpatchify"]


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.LeakyReLU(0.2),
    )


class RefinerUNet(nn.Module):
    """CNN U-Net refiner with the self-assembly layer after the second down-sampling (resolution S/4).

    ``encode``: x (N, 4, S, S) (image + pixel mask) -> (e0 (N, c, S, S), e1 (N, 2c, S/2, S/2), e2 (N, 4c, S/4, S/4)).
    ``forward``: x (N, 4, S, S), mask (N, G, G) -> (residual (N, 3, S, S), assembled e2 (N, 4c, S/4, S/4)).
    """

    def __init__(self, patch_grid: int, face_size: int, base: int = 16, sa_steps: int = 2, sym_kernel: int = 3) -> None:
        super().__init__()
        if (face_size // 4) % patch_grid:
            raise ValueError(f"the self-assembly grid needs S/4 ({face_size // 4}) divisible by G ({patch_grid})")
        c = base
        self.enc0 = nn.Sequential(_conv(4, c), _conv(c, c))
        self.enc1 = nn.Sequential(_conv(c, 2 * c, stride=2), _conv(2 * c, 2 * c))
        self.enc2 = nn.Sequential(_conv(2 * c, 4 * c, stride=2), _conv(4 * c, 4 * c))
        self.self_assembly = SelfAssembly(patch_grid, sym_kernel=sym_kernel, steps=sa_steps)
        self.bottleneck = nn.Sequential(
            _conv(4 * c, 4 * c, stride=2), _conv(4 * c, 4 * c, dilation=2), _conv(4 * c, 4 * c)
        )
        # One conv per decoder level: the skip concatenations make decoder convs the most expensive part at 112 px.
        self.dec2 = _conv(8 * c, 4 * c)
        self.dec1 = _conv(6 * c, 2 * c)
        self.dec0 = _conv(3 * c, c)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (N, 4, S, S) -> encoder features at S, S/2, S/4 (before self-assembly)."""
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        return e0, e1, self.enc2(e1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """x: (N, 4, S, S), mask: (N, G, G) -> (residual (N, 3, S, S), assembled (N, 4c, S/4, S/4))."""
        e0, e1, e2 = self.encode(x)
        a2 = self.self_assembly(e2, mask)
        b = self.bottleneck(a2)
        d2 = self.dec2(torch.cat([F.interpolate(b, scale_factor=2.0, mode="nearest"), a2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], dim=1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, scale_factor=2.0, mode="nearest"), e0], dim=1))
        return self.out(d0), a2


class HybridReconstructor(nn.Module):
    """(face (N, S, S, 3) uint8, mask (N, G, G) float, 1 = occluded) -> (reconstruction (N, S, S, 3) uint8,
    latents (N, G*G, D) float32).

    ``forward_features(x, mask)``: x (N, 3, S, S) float in [0, 1] -> dict of float tensors (differentiable):
    ``latents`` (N, G*G, D), ``coarse`` (N, 3, S, S) raw ViT output, ``refined`` (N, 3, S, S) raw U-Net output,
    ``output`` (N, 3, S, S) composited (visible pixels from ``x``), ``assembled`` (N, 4c, S/4, S/4) self-assembly
    features, ``pixel_mask`` (N, 1, S, S).
    ``forward_head(features)`` -> (reconstruction uint8, latents).
    """

    def __init__(
        self,
        face_size: int = SIZES["default"].face_size,
        patch_grid: int = SIZES["default"].patch_grid,
        latent_dim: int = SIZES["default"].latent_dim,
        depth: int = 4,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        unet_base: int = 12,
        sa_steps: int = 2,
        sym_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.config = ModelConfig(contracts.RECONSTRUCTOR, face_size, patch_grid, latent_dim)
        self.patch_grid = patch_grid
        self.patch_size = face_size // patch_grid
        self.normalize = Normalize()
        self.encoder = ViTEncoder(face_size, patch_grid, latent_dim, depth, num_heads, mlp_ratio, use_mask_token=True)
        self.decoder = ViTDecoder(
            latent_dim, patch_grid, self.patch_size, decoder_dim, decoder_depth, decoder_heads, mlp_ratio
        )
        self.refiner = RefinerUNet(patch_grid, face_size, base=unet_base, sa_steps=sa_steps, sym_kernel=sym_kernel)

    def vit_stage(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """x: (N, 3, S, S) in [0, 1], mask: (N, G, G) -> (latents (N, G*G, D), coarse (N, 3, S, S))."""
        latents = self.encoder(self.normalize(x), mask)
        coarse = unpatchify(self.decoder(latents), self.patch_size, self.patch_grid)
        return latents, coarse

    def forward_features(self, x: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """x: (N, 3, S, S) float in [0, 1], mask: (N, G, G) float -> dict (see class docstring)."""
        mask = mask.to(x.dtype)
        pix = mask_to_pixels(mask, self.patch_size)
        latents, coarse = self.vit_stage(x, mask)
        composed = x * (1.0 - pix) + coarse * pix
        residual, assembled = self.refiner(torch.cat([composed, pix], dim=1), mask)
        refined = composed + residual
        output = x * (1.0 - pix) + refined * pix
        return {
            "latents": latents,
            "coarse": coarse,
            "refined": refined,
            "output": output,
            "assembled": assembled,
            "pixel_mask": pix,
        }

    def forward_head(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """features -> (reconstruction (N, S, S, 3) uint8, latents (N, G*G, D) float32)."""
        return to_uint8_image(features["output"]), features["latents"]

    def forward(self, face: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """face: (N, S, S, 3) uint8, mask: (N, G, G) float -> (reconstruction (N, S, S, 3) uint8,
        latents (N, G*G, D) float32)."""
        return self.forward_head(self.forward_features(to_unit_image(face), mask))


@register_model
def reconstructor_tiny(**kwargs) -> HybridReconstructor:
    """Test fixture size: S=32, G=4 (patch 8), D=16, 1 encoder + 1 decoder block, U-Net base 4."""
    cfg = dict(
        **SIZES["tiny"]._asdict(),
        depth=1,
        num_heads=2,
        mlp_ratio=2.0,
        decoder_dim=16,
        decoder_depth=1,
        decoder_heads=2,
        unet_base=4,
    )
    cfg.update(kwargs)
    return HybridReconstructor(**cfg)


@register_model
def reconstructor_default(**kwargs) -> HybridReconstructor:
    """2-core CPU size: S=112, G=14, D=192 (ViT-Tiny width), 4 encoder blocks, 2 decoder blocks (dim 128), U-Net
    base 12 (about 1.3 GFLOPs; ``depth=6`` buys better latents for about 3 ms more on 2 cores)."""
    cfg = dict(
        **SIZES["default"]._asdict(),
        depth=4,
        num_heads=3,
        mlp_ratio=4.0,
        decoder_dim=128,
        decoder_depth=2,
        decoder_heads=4,
        unet_base=12,
    )
    cfg.update(kwargs)
    return HybridReconstructor(**cfg)


@register_model
def reconstructor_paper(**kwargs) -> HybridReconstructor:
    """Paper size: MAE ViT-B/16 at 224 (D=768, 12 blocks) with an MAE decoder (512, 8 blocks), U-Net base 64."""
    cfg = dict(
        **SIZES["paper"]._asdict(),
        depth=12,
        num_heads=12,
        mlp_ratio=4.0,
        decoder_dim=512,
        decoder_depth=8,
        decoder_heads=16,
        unet_base=64,
    )
    cfg.update(kwargs)
    return HybridReconstructor(**cfg)
