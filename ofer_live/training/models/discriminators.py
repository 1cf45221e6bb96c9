"""Discriminators for the reconstructor's adversarial losses (training only, never exported).

- :class:`PatchDiscriminator` (L_d): a PatchGAN on images, one logit per receptive-field patch.
- :class:`FeaturePatchDiscriminator` (L_df): logits on the G x G face-patch grid computed from a feature map.
  The feature-patch discriminator of the literature runs on frozen VGG features; nothing may be downloaded here, so
  by default it learns its own small conv feature stem, or takes any frozen ``feature_extractor`` (for example the
  pretrained FER net's stem, ``ExpressionNet.stem_features``).
Both use spectral normalisation and are meant for hinge losses (``ofer_live.training.losses``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

__all__ = ["FeaturePatchDiscriminator", "PatchDiscriminator"]


def _sn_conv(cin: int, cout: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, 4 if stride == 2 else 3, stride=stride, padding=1))


class PatchDiscriminator(nn.Module):
    """image (N, 3, S, S) float in [0, 1] -> logits (N, 1, h, w), h = S / 2^n_down (roughly)."""

    def __init__(self, base: int = 32, n_down: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i in range(n_down):
            cout = base * 2**i
            layers += [_sn_conv(cin, cout, 2), nn.LeakyReLU(0.2)]
            cin = cout
        layers += [_sn_conv(cin, cin, 1), nn.LeakyReLU(0.2), nn.Conv2d(cin, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        """image: (N, 3, S, S) in [0, 1] -> (N, 1, h, w) logits."""
        return self.net(image * 2.0 - 1.0)


class FeaturePatchDiscriminator(nn.Module):
    """image (N, 3, S, S) float in [0, 1] -> logits (N, G, G), one per face patch (aligned with the occlusion mask)."""

    def __init__(
        self,
        patch_grid: int,
        base: int = 32,
        feature_extractor: nn.Module | None = None,
        feature_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.patch_grid = patch_grid
        self.own_features = feature_extractor is None
        if feature_extractor is None:
            self.features: nn.Module = nn.Sequential(
                _sn_conv(3, base, 2), nn.LeakyReLU(0.2), _sn_conv(base, 2 * base, 2), nn.LeakyReLU(0.2)
            )
            cin = 2 * base
        else:
            if feature_channels is None:
                raise ValueError("feature_channels is required with a feature_extractor")
            self.features = feature_extractor
            for p in feature_extractor.parameters():
                p.requires_grad_(False)
            cin = feature_channels
        self.head = nn.Sequential(
            _sn_conv(cin, 4 * base, 1),
            nn.LeakyReLU(0.2),
            _sn_conv(4 * base, 4 * base, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * base, 1, 1),
        )

    def forward(self, image: Tensor) -> Tensor:
        """image: (N, 3, S, S) in [0, 1] -> (N, G, G) logits (a given extractor receives the [0, 1] image)."""
        feat = self.features(image * 2.0 - 1.0) if self.own_features else self.features(image)
        logits = self.head(feat)
        return F.adaptive_avg_pool2d(logits, self.patch_grid)[:, 0]
