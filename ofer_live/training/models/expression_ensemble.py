"""Several FER nets as one: the expression contract with the members' logits and CAMs averaged.

Two nets trained apart (different trunks, different runs) are partly wrong on different faces, so the mean of their
logits can be right more often than either (README, "Two more candidates", measures one such pair). The ensemble
keeps the expression contract, ``(face (N, S, S, 3) uint8, latents (N, G*G, D)) -> (logits (N, 7), cam (N, G,
G))``, so it exports to one ``expression.onnx`` that the app loads as it loads a single net. Each member runs its
own options (``gray_input``, ``flip_average``...); every member reads the same latents and selects them with its
own CAM.

``expression_ensemble(members=[{"name": "expression_default", "kwargs": {...}}, ...])`` builds it from registered
member factories, so a checkpoint or an exported file rebuilds it from JSON like any registered model. Its state
dict holds the members' under ``members.<i>.``; ``member_state(state, i)`` takes one member's back out (for
``--init-from`` of one member from an ensemble file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ofer_live.training.models.expression import ExpressionNet
from ofer_live.training.models.registry import create_model, register_model

__all__ = ["ENSEMBLE_NAME", "ExpressionEnsemble", "member_state"]

ENSEMBLE_NAME = "expression_ensemble"


class ExpressionEnsemble(nn.Module):
    """(face (N, S, S, 3) uint8, latents (N, G*G, D)) -> (mean logits (N, 7), mean cam (N, G, G) in [0, 1]).

    ``forward_features(x, latents)`` -> {"members": one feature dict per member, "cam": (N, G, G) mean}, and
    ``forward_head`` of that -> the members' mean logits (N, 7), as for one ``ExpressionNet`` (training, validation
    and the frozen FER net of the reconstructor's losses call these two). ``stem_features`` is the first member's.
    """

    def __init__(self, members: Sequence[ExpressionNet]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        configs = {m.config for m in members}
        if len(configs) > 1:
            raise ValueError(
                f"the members disagree on face size, patch grid or latent size: {sorted(map(str, configs))}"
            )
        self.members = nn.ModuleList(members)
        self.config = members[0].config
        # the latents matter when any member reads them (fer_nets passes zeros to nets with latent_mode "none")
        self.latent_mode = "selected" if any(m.latent_mode != "none" for m in members) else "none"

    def stem_features(self, x: Tensor) -> Tensor:
        """x: (N, 3, S, S) float in [0, 1] -> the first member's layer-2 features (N, C, h, w)."""
        return self.members[0].stem_features(x)

    def forward_features(self, x: Tensor, latents: Tensor) -> dict[str, Any]:
        """x: (N, 3, S, S) float in [0, 1], latents: (N, G*G, D) -> {"members": [dict, ...], "cam": (N, G, G)}."""
        parts = [member.forward_features(x, latents) for member in self.members]
        return {"members": parts, "cam": torch.stack([p["cam"] for p in parts]).mean(dim=0)}

    def forward_head(self, features: Mapping[str, Any]) -> Tensor:
        """``forward_features`` output -> mean logits (N, 7)."""
        logits = [m.forward_head(p) for m, p in zip(self.members, features["members"], strict=True)]
        return torch.stack(logits).mean(dim=0)

    def forward(self, face: Tensor, latents: Tensor) -> tuple[Tensor, Tensor]:
        """face: (N, S, S, 3) uint8 RGB, latents: (N, G*G, D) -> (logits (N, 7), cam (N, G, G)), members averaged."""
        outputs = [member(face, latents) for member in self.members]
        logits = torch.stack([o[0] for o in outputs]).mean(dim=0)
        cam = torch.stack([o[1] for o in outputs]).mean(dim=0)
        return logits, cam


@register_model
def expression_ensemble(members: Sequence[Mapping[str, Any]] = ()) -> ExpressionEnsemble:
    """members: [{"name": registered FER net factory, "kwargs": its options}, ...] (two or more)."""
    nets = []
    for spec in members:
        net = create_model(str(spec["name"]), **dict(spec.get("kwargs", {})))
        if not isinstance(net, ExpressionNet):
            raise ValueError(f"ensemble member {spec['name']!r} is not an expression net")
        nets.append(net)
    return ExpressionEnsemble(nets)


def member_state(state: Mapping[str, Tensor], index: int) -> dict[str, Tensor]:
    """An ensemble's state dict -> member ``index``'s own state dict (the ``members.<index>.`` prefix removed)."""
    prefix = f"members.{index}."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
