"""Training objectives of the three Latent-OFER models.

Occlusion detector (section 3.1):
- :func:`deep_svdd_loss`: mean ||phi - c||^2 over clean patches (Eq. 1; the weight-decay term is the optimiser's
  ``weight_decay``).
- :func:`deep_sad_loss`: Deep SAD (Ruff et al. 2019): clean patches are pulled to c, labelled anomalous patches
  (pasted occluders) are pushed away with ``eta / (dist + eps)``.

Hybrid reconstructor (section 3.2.3, Eq. 5; default weights from the paper: re 1, c 0.01, sc 1, d 0.002):
- :func:`reconstruction_loss` L_re: L1 on the masked and on the visible region (each averaged over its own pixels).
- :func:`consistency_loss` L_c: at the masked patches, the self-assembly features of the masked input (read out
  by a learnt 1x1 convolution, :class:`FeatureConsistency`) should match a *frozen* network's features of the
  ground truth (the consistency loss of CSA, which uses a frozen VGG; here the project's own frozen FER net,
  its layer-2 features). Relative MSE, so the loss is about 1 before training and lambda_c = 0.01 means
  something. An earlier version used the refiner's own detached features as the target, which the generator
  could lower by shrinking them (it measured about 1e-6). Gradients reach the generator through the
  prediction, unlike the authors' code, which detaches the whole loss.
- :func:`semantic_consistency_loss` L_sc: cross-entropy between a pretrained FER net's class distribution on the
  ground truth (target, detached) and on the reconstruction (**not** detached: its gradient reaches the
  generator through the frozen FER net).
- :func:`d_hinge_loss` / :func:`g_hinge_loss`: hinge GAN losses for L_d (patch discriminator) and L_df
  (feature-patch discriminator).
- :func:`generator_losses` / :func:`discriminator_losses` put them together.

FER net: :func:`expression_loss` (cross-entropy with hard labels or soft label distributions, e.g. FER+ votes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FeatureConsistency",
    "ReconstructionWeights",
    "consistency_loss",
    "d_hinge_loss",
    "deep_sad_loss",
    "deep_svdd_loss",
    "discriminator_losses",
    "expression_loss",
    "g_hinge_loss",
    "generator_losses",
    "reconstruction_loss",
    "semantic_consistency_loss",
]


# -- occlusion detector --------------------------------------------------------------------------------------------
def deep_svdd_loss(dist: Tensor) -> Tensor:
    """dist: (N, G*G) squared distances ||phi - c||^2 of clean patches -> scalar mean (one-class Deep SVDD)."""
    return dist.mean()


def deep_sad_loss(dist: Tensor, anomalous: Tensor, eta: float = 1.0, eps: float = 1e-6) -> Tensor:
    """dist: (N, G*G) squared distances, anomalous: (N, G*G) or (N, G, G) in {0, 1} (1 = labelled anomaly, e.g. a
    pasted occluder covers the patch) -> scalar.

    Per patch: ``dist`` for normal patches, ``eta / (dist + eps)`` for anomalies (Deep SAD with unlabelled = normal).
    Fractional labels (partly covered patches) blend the two.
    """
    a = anomalous.reshape(dist.shape).to(dist.dtype)
    return ((1.0 - a) * dist + a * eta / (dist + eps)).mean()


# -- reconstructor --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReconstructionWeights:
    """Eq. (5) trade-off weights; defaults are the paper's."""

    re: float = 1.0
    c: float = 0.01
    sc: float = 1.0
    d: float = 0.002
    hole: float = 1.0  # relative weight of the masked region inside L_re
    valid: float = 1.0  # relative weight of the visible region inside L_re


def _masked_l1(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """pred, target: (N, 3, S, S), weight: (N, 1, S, S) -> scalar mean |pred - target| over the weighted pixels."""
    denom = (weight.sum() * pred.shape[1]).clamp(min=1.0)
    return ((pred - target).abs() * weight).sum() / denom


def reconstruction_loss(
    pred: Tensor, target: Tensor, pixel_mask: Tensor, hole: float = 1.0, valid: float = 1.0
) -> Tensor:
    """pred, target: (N, 3, S, S) in [0, 1], pixel_mask: (N, 1, S, S) (1 = masked) -> scalar
    ``hole * L1(masked) + valid * L1(visible)``. Use the raw (uncomposited) network output as ``pred``."""
    return hole * _masked_l1(pred, target, pixel_mask) + valid * _masked_l1(pred, target, 1.0 - pixel_mask)


def consistency_loss(predicted: Tensor, target_features: Tensor, mask: Tensor) -> Tensor:
    """predicted: (N, C, H, W) features predicted from the self-assembly output, target_features: (N, C, H, W) a
    frozen network's features of the ground truth, mask: (N, G, G) with H, W multiples of G -> scalar relative MSE
    over the masked feature patches: ``sum m (p - t)^2 / sum m t^2`` (target detached).

    Relative to the target's energy, so the loss is about 1 for a prediction of zeros whatever the feature scale,
    and ``lambda_c = 0.01`` weighs it against L_re as the paper intends. The target comes from a frozen network, so
    it cannot be lowered by shrinking the generator's features.
    """
    g = mask.shape[-1]
    fh, fw = predicted.shape[-2] // g, predicted.shape[-1] // g
    m = mask[:, None, :, None, :, None].expand(-1, 1, -1, fh, -1, fw).reshape(mask.shape[0], 1, g * fh, g * fw)
    m = m.to(predicted.dtype)
    target = target_features.detach().to(predicted.dtype)
    energy = ((target**2) * m).sum().clamp(min=1e-6)
    return (((predicted - target) ** 2) * m).sum() / energy


class FeatureConsistency(nn.Module):
    """L_c's read-out: a 1x1 convolution that predicts a frozen network's features of the ground truth from the
    self-assembly output. It trains with the generator; the frozen target keeps the loss from collapsing."""

    def __init__(self, assembled_channels: int, feature_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(assembled_channels, feature_channels, 1)

    def forward(self, assembled: Tensor, target_features: Tensor) -> tuple[Tensor, Tensor]:
        """assembled: (N, Ca, h, w), target_features: (N, Cf, h', w') -> (prediction (N, Cf, h, w), target resized
        to (N, Cf, h, w)), the two arguments of ``consistency_loss``."""
        predicted = self.proj(assembled)
        target = F.interpolate(target_features, size=predicted.shape[-2:], mode="bilinear", align_corners=False)
        return predicted, target


def semantic_consistency_loss(logits_rec: Tensor, logits_gt: Tensor) -> Tensor:
    """logits_rec: (N, 7) FER logits on the reconstruction (keeps its graph), logits_gt: (N, 7) on the ground truth
    (detached) -> scalar ``-sum_c p_c(gt) log p_c(rec)`` averaged over the batch (Eq. 4 as a cross-entropy)."""
    target = F.softmax(logits_gt.detach(), dim=1)
    return -(target * F.log_softmax(logits_rec, dim=1)).sum(dim=1).mean()


def d_hinge_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """real_logits, fake_logits: any shape -> scalar hinge loss for the discriminator."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: Tensor) -> Tensor:
    """fake_logits: any shape -> scalar hinge loss for the generator."""
    return -fake_logits.mean()


def generator_losses(
    out: dict[str, Tensor],
    target: Tensor,
    mask: Tensor,
    *,
    consistency: tuple[Tensor, Tensor] | None = None,
    fer: Callable[[Tensor], Tensor] | None = None,
    patch_disc: nn.Module | None = None,
    feature_disc: nn.Module | None = None,
    weights: ReconstructionWeights = ReconstructionWeights(),
) -> dict[str, Tensor]:
    """The generator objective of Eq. (5).

    out: ``HybridReconstructor.forward_features`` dict; target: (N, 3, S, S) ground truth in [0, 1];
    mask: (N, G, G); consistency: (features predicted from ``out["assembled"]``, a frozen network's features of the
    target), both (N, C, H, W), for L_c (skipped if None);
    fer: image (N, 3, S, S) in [0, 1] -> logits (N, 7), a frozen pretrained FER net, for L_sc (skipped if None);
    discriminators for L_d / L_df (skipped if None). Returns {"total", "re", "c", "sc", "adv"} scalars.
    """
    zero = target.new_zeros(())
    pix = out["pixel_mask"]
    l_re = reconstruction_loss(out["refined"], target, pix, weights.hole, weights.valid) + reconstruction_loss(
        out["coarse"], target, pix, weights.hole, weights.valid
    )
    l_c = consistency_loss(*consistency, mask) if consistency is not None else zero
    if fer is not None:
        with torch.no_grad():
            logits_gt = fer(target)
        l_sc = semantic_consistency_loss(fer(out["output"]), logits_gt)
    else:
        l_sc = zero
    l_adv = zero
    if patch_disc is not None:
        l_adv = l_adv + g_hinge_loss(patch_disc(out["output"]))
    if feature_disc is not None:
        l_adv = l_adv + g_hinge_loss(feature_disc(out["output"]))
    total = weights.re * l_re + weights.c * l_c + weights.sc * l_sc + weights.d * l_adv
    return {"total": total, "re": l_re, "c": l_c, "sc": l_sc, "adv": l_adv}


def discriminator_losses(
    out: dict[str, Tensor],
    target: Tensor,
    *,
    patch_disc: nn.Module | None = None,
    feature_disc: nn.Module | None = None,
) -> dict[str, Tensor]:
    """out: generator features (the fake ``output`` is detached), target: (N, 3, S, S) real images ->
    {"total", "d", "df"} hinge losses (L_d for the patch discriminator, L_df for the feature-patch one)."""
    fake = out["output"].detach()
    zero = target.new_zeros(())
    l_d = d_hinge_loss(patch_disc(target), patch_disc(fake)) if patch_disc is not None else zero
    l_df = d_hinge_loss(feature_disc(target), feature_disc(fake)) if feature_disc is not None else zero
    return {"total": l_d + l_df, "d": l_d, "df": l_df}


# -- FER net --------------------------------------------------------------------------------------------------------
def expression_loss(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """logits: (N, 7); target: (N,) int64 class indices or (N, 7) label distributions -> scalar cross-entropy."""
    if target.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(logits, target.long(), label_smoothing=label_smoothing)
    return F.cross_entropy(logits, target.to(logits.dtype), label_smoothing=label_smoothing)
