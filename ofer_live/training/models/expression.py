"""FER network (Latent-OFER section 3.3): ResNet-18 with CBAM channel + spatial attention, a CAM from the spatial
attention, and expression-relevant ViT latents selected where the CAM is in its top 50 %.

- Trunk: ResNet-18 layout (BasicBlock x [2, 2, 2, 2]); widths are configurable so the test variant is tiny; the
  default widths are torchvision's (64, 128, 256, 512), and the module names match ``torchvision.models.resnet18``
  (``conv1``, ``bn1``, ``layer1``..``layer4``) so its state dict can be loaded (``strict=False``). Random init:
  nothing is downloaded.
- ``trunk="vgg8"``: the cheaper CNN the throughput issue asked to compare at equal training time: 8 plain 3x3
  convolutions (stem and layer1 at full resolution, then 2x2 max-pool + 2 convolutions per layer), the same
  ``conv1`` / ``layer1``..``layer4`` names, CBAMs and head. With widths (32, 64, 128, 256) at 48 px it costs 0.25
  GFLOPs per face and 1.3 M parameters, against the ResNet-18's 0.64 GFLOPs and 11.4 M (``export.cost.model_cost``).
- The face may be resized inside the graph (``net_size``; bilinear) so the default preset's 112 px face runs the
  CNN at a cheaper size.
- CBAM (Woo et al. 2018) after ``layer3`` and after ``layer4``. The CAM is the spatial attention map of the CBAM
  after ``cam_stage`` (sigmoid output, so in [0, 1]), resized bilinearly to (G, G).
- Latent selection (``latent_mode``): ``"selected"`` takes the k = ceil(select_ratio * G*G) positions with the
  highest CAM (``topk`` + ``gather``: fixed k, exports with a dynamic batch), ``"all"`` uses every position,
  ``"none"`` ignores the latents (CNN-only ablation). Selected latents go through a per-token MLP and are mean
  pooled (order-free: ``topk`` order does not matter), then concatenated with the CNN's pooled feature and
  classified by a small MLP (about 0.2 M parameters at the default size, against the authors' 399 M).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from ofer_live import contracts
from ofer_live.training.models.registry import ModelConfig, register_model
from ofer_live.training.models.vit import Normalize, to_unit_image
from ofer_live.training.presets import SIZES

__all__ = ["CBAM", "ExpressionNet", "LATENT_MODES", "TRUNKS"]

LATENT_MODES = ("selected", "all", "none")
TRUNKS = ("resnet18", "vgg8")


class ChannelAttention(nn.Module):
    """x (N, C, H, W) -> channel weights (N, C, 1, 1) in [0, 1] (shared MLP on avg- and max-pooled features)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """x (N, C, H, W) -> spatial weights (N, 1, H, W) in [0, 1] (7x7 conv on channel mean and max)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)))


class CBAM(nn.Module):
    """x (N, C, H, W) -> (refined (N, C, H, W), spatial attention (N, 1, H, W) in [0, 1])."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x * self.channel(x)
        att = self.spatial(x)
        return x * att, att


def _vgg_stage(in_channels: int, out_channels: int, convs: int, pool: bool) -> nn.Sequential:
    """(N, in, H, W) -> (N, out, H', W'): optional 2x2 max-pool (H' = H // 2), then ``convs`` x (3x3 conv, BN, ReLU)."""
    layers: list[nn.Module] = [nn.MaxPool2d(2)] if pool else []
    for i in range(convs):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class ExpressionNet(nn.Module):
    """(face (N, S, S, 3) uint8, latents (N, G*G, D) float) -> (logits (N, 7), cam (N, G, G) in [0, 1]).

    ``forward_features(x, latents)``: x (N, 3, S, S) float in [0, 1] -> dict with ``cnn`` (N, W), ``cam`` (N, G, G),
    ``latent`` (N, H) (absent for ``latent_mode="none"``). ``forward_head(features)`` -> logits (N, 7).
    """

    def __init__(
        self,
        face_size: int = SIZES["default"].face_size,
        patch_grid: int = SIZES["default"].patch_grid,
        latent_dim: int = SIZES["default"].latent_dim,
        net_size: int = 64,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        maxpool: bool = False,
        cam_stage: int = 3,
        latent_mode: str = "selected",
        select_ratio: float = 0.5,
        latent_hidden: int = 128,
        fuse_hidden: int = 256,
        dropout: float = 0.3,
        num_classes: int = contracts.NUM_CLASSES,
        gray_input: bool = False,
        flip_average: bool = False,
        flip_batched: bool = False,
        trunk: str = "resnet18",
    ) -> None:
        super().__init__()
        if trunk not in TRUNKS:
            raise ValueError(f"trunk must be one of {TRUNKS}, got {trunk!r}")
        if latent_mode not in LATENT_MODES:
            raise ValueError(f"latent_mode must be one of {LATENT_MODES}, got {latent_mode!r}")
        if cam_stage not in (3, 4):
            raise ValueError(f"cam_stage must be 3 or 4, got {cam_stage}")
        self.config = ModelConfig(contracts.EXPRESSION, face_size, patch_grid, latent_dim)
        self.face_size = face_size
        self.patch_grid = patch_grid
        self.net_size = net_size
        self.cam_stage = cam_stage
        self.latent_mode = latent_mode
        self.gray_input = gray_input
        self.flip_average = flip_average
        # flip_batched: run the face and its mirror as one batch of 2N instead of two passes of N. The same numbers;
        # faster for several faces in a one-off trial (time an export with benchmarks/model_latency.py --batch 3). Off
        # by default because the weight importer must trace the graph a file was exported with (files exported before
        # the option have two passes); export new FER nets with --set flip_batched=true.
        self.flip_batched = flip_batched
        n_tokens = patch_grid * patch_grid
        self.k = max(1, min(n_tokens, math.ceil(select_ratio * n_tokens)))
        self.normalize = Normalize()

        w1, w2, w3, w4 = widths
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if maxpool else nn.Identity()
        if trunk == "resnet18":
            self.conv1 = nn.Conv2d(3, w1, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(w1)
            self._inplanes = w1
            self.layer1 = self._make_layer(w1, 2, 1)
            self.layer2 = self._make_layer(w2, 2, 2)
            self.layer3 = self._make_layer(w3, 2, 2)
            self.layer4 = self._make_layer(w4, 2, 2)
        else:  # vgg8: 8 plain 3x3 convolutions, full resolution first, a 2x2 max-pool before layers 2, 3 and 4
            self.conv1 = nn.Conv2d(3, w1, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(w1)
            self.layer1 = _vgg_stage(w1, w1, convs=1, pool=False)
            self.layer2 = _vgg_stage(w1, w2, convs=2, pool=True)
            self.layer3 = _vgg_stage(w2, w3, convs=2, pool=True)
            self.layer4 = _vgg_stage(w3, w4, convs=2, pool=True)
        self.cbam3 = CBAM(w3)
        self.cbam4 = CBAM(w4)
        self.cnn_dim = w4

        if latent_mode != "none":
            self.latent_mlp = nn.Sequential(
                nn.LayerNorm(latent_dim),
                nn.Linear(latent_dim, latent_hidden),
                nn.GELU(),
                nn.Linear(latent_hidden, latent_hidden),
            )
            fuse_in = w4 + latent_hidden
        else:
            self.latent_mlp = None
            fuse_in = w4
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(fuse_in, fuse_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(fuse_hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    # -- pieces -------------------------------------------------------------------------------------------------
    def prepare(self, x: Tensor) -> Tensor:
        """x: (N, 3, S, S) float in [0, 1] -> (N, 3, net_size, net_size) normalised.

        With ``gray_input`` the face is first turned into its luma (ITU-R BT.601, as OpenCV's RGB2GRAY) on all
        three channels, so a colour webcam face and its gray copy give the same result, and the net sees what it
        was trained on (gray FER+ faces, whose luma is themselves)."""
        if self.gray_input:
            luma = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
            x = luma.expand(-1, 3, -1, -1)
        if self.net_size != x.shape[-1]:
            x = F.interpolate(x, size=(self.net_size, self.net_size), mode="bilinear", align_corners=False)
        return self.normalize(x)

    def stem_features(self, x: Tensor) -> Tensor:
        """x: (N, 3, S, S) float in [0, 1] -> layer2 features (N, w2, h, w) (e.g. for a feature-patch discriminator)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.prepare(x)))))
        return self.layer2(self.layer1(x))

    def cnn_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (N, 3, S, S) in [0, 1] -> (pooled (N, W), cam (N, G, G) in [0, 1])."""
        f3, att3 = self.cbam3(self.layer3(self.stem_features(x)))
        f4, att4 = self.cbam4(self.layer4(f3))
        att = att3 if self.cam_stage == 3 else att4
        g = self.patch_grid
        if att.shape[-1] != g:
            att = F.interpolate(att, size=(g, g), mode="bilinear", align_corners=False)
        return f4.mean(dim=(2, 3)), att[:, 0]

    def select_latents(self, latents: Tensor, cam: Tensor) -> Tensor:
        """latents: (N, G*G, D), cam: (N, G, G) -> (N, k, D) latents at the k highest-CAM positions (any order)."""
        idx = torch.topk(cam.reshape(cam.shape[0], -1), self.k, dim=1).indices  # N, k
        return torch.gather(latents, 1, idx[..., None].expand(-1, -1, latents.shape[-1]))

    def forward_features(self, x: Tensor, latents: Tensor) -> dict[str, Tensor]:
        """x: (N, 3, S, S) float in [0, 1], latents: (N, G*G, D) -> {"cnn", "cam", "latent"} (see class docstring)."""
        cnn, cam = self.cnn_features(x)
        out = {"cnn": cnn, "cam": cam}
        if self.latent_mlp is not None:
            tokens = self.select_latents(latents, cam) if self.latent_mode == "selected" else latents
            out["latent"] = self.latent_mlp(tokens).mean(dim=1)
        return out

    def forward_head(self, features: dict[str, Tensor]) -> Tensor:
        """features -> logits (N, 7)."""
        if "latent" in features:
            return self.classifier(torch.cat([features["cnn"], features["latent"]], dim=1))
        return self.classifier(features["cnn"])

    def _mirror(self, latents: Tensor) -> Tensor:
        """latents: (N, G*G, D) -> the same grid mirrored left-right (the latents of the flipped face's positions)."""
        n, t, d = latents.shape
        g = self.patch_grid
        return latents.reshape(n, g, g, d).flip(2).reshape(n, t, d)

    def forward(self, face: Tensor, latents: Tensor) -> tuple[Tensor, Tensor]:
        """face: (N, S, S, 3) uint8 RGB, latents: (N, G*G, D) -> (logits (N, 7) float32, cam (N, G, G) float32)."""
        x = to_unit_image(face)
        if self.flip_average and self.flip_batched:
            # The face and its mirror in one batch of 2N (BatchNorm is in eval mode, so the batch mixes nothing).
            n = latents.shape[0]
            both = self.forward_features(torch.cat([x, x.flip(3)]), torch.cat([latents, self._mirror(latents)]))
            both_logits = self.forward_head(both)
            logits = 0.5 * (both_logits[:n] + both_logits[n:])
            features = {"cam": both["cam"][:n]}
        else:
            features = self.forward_features(x, latents)
            logits = self.forward_head(features)
            if self.flip_average:  # test-time flip: average with the mirrored face (and mirrored latent grid)
                mirrored = self._mirror(latents)  # before x.flip: the node order of the files exported so far
                logits = 0.5 * (logits + self.forward_head(self.forward_features(x.flip(3), mirrored)))
        if self.latent_mlp is None:
            # Keep the contract's ``latents`` input alive in the exported graph (its value does not matter).
            logits = logits + 0.0 * latents[:, :1, :1].reshape(-1, 1)
        return logits, features["cam"]


@register_model
def expression_tiny(**kwargs) -> ExpressionNet:
    """Test fixture size: S=32, G=4, D=16; ResNet-18 layout with widths (8, 16, 32, 64), no resize."""
    cfg = dict(
        **SIZES["tiny"]._asdict(),
        net_size=32,
        widths=(8, 16, 32, 64),
        maxpool=False,
        latent_hidden=16,
        fuse_hidden=32,
    )
    cfg.update(kwargs)
    return ExpressionNet(**cfg)


@register_model
def expression_default(**kwargs) -> ExpressionNet:
    """2-core CPU size: 112 px face, ResNet-18 (torchvision widths) at 48 px without max-pool (layer3: 6x6).

    FER2013 faces hold about 48 px of detail, and 48 px trains 1.65x faster on the CPU than 64 px (66 against 40
    images/s), so a session fits 1.65x more epochs.
    """
    cfg = dict(**SIZES["default"]._asdict(), net_size=48, widths=(64, 128, 256, 512), maxpool=False)
    cfg.update(kwargs)
    return ExpressionNet(**cfg)


@register_model
def expression_paper(**kwargs) -> ExpressionNet:
    """Paper size: 224 px face, ResNet-18 at 224 with max-pool (layer3: 14x14 = G), D=768 latents."""
    cfg = dict(
        **SIZES["paper"]._asdict(),
        net_size=224,
        widths=(64, 128, 256, 512),
        maxpool=True,
        latent_hidden=256,
        fuse_hidden=512,
    )
    cfg.update(kwargs)
    return ExpressionNet(**cfg)
