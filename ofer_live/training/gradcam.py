"""Grad-CAM (Selvaraju et al. 2017) for any torch FER net, as a CAM callable for Grad-CAM occlusion.

``GradCam(module, logits_fn)`` hooks the last convolution whose output is still spatial (at least 3x3) unless a
``layer`` is given. ``cam(faces (N, S, S, 3) uint8) -> (N, h, w) float32 in [0, 1]``: for each face, the ReLU of the
activations of that layer weighted by the spatially averaged gradients of the predicted class's logit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn


def last_spatial_conv(module: nn.Module, run: Callable[[], object]) -> nn.Module:
    """The last Conv2d (in execution order) whose output is at least 3x3, found with one traced forward ``run``."""
    seen: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append((m, tuple(o.shape))))
        for m in module.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    spatial = [m for m, shape in seen if len(shape) == 4 and shape[-1] >= 3 and shape[-2] >= 3]
    if not spatial:
        raise ValueError("no spatial convolution found for Grad-CAM")
    return spatial[-1]


class GradCam:
    """Grad-CAM of ``logits_fn(faces float (N, S, S, 3) in [0, 255]) -> (N, 7)`` at a conv layer of ``module``."""

    def __init__(
        self, module: nn.Module, logits_fn: Callable[[Tensor], Tensor], layer: nn.Module | None = None, batch: int = 64
    ) -> None:
        self.module = module
        self.logits_fn = logits_fn
        self.layer = layer
        self.batch = batch

    def _layer(self, probe: Tensor) -> nn.Module:
        if self.layer is None:
            self.layer = last_spatial_conv(self.module, lambda: self.logits_fn(probe))
        return self.layer

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """faces: (N, S, S, 3) uint8 -> (N, h, w) float32 CAMs normalised to [0, 1] per face."""
        if len(faces) == 0:
            return np.zeros((0, 1, 1), np.float32)
        out = []
        for start in range(0, len(faces), self.batch):
            x = torch.from_numpy(np.ascontiguousarray(faces[start : start + self.batch])).float().requires_grad_(True)
            layer = self._layer(x[:1].detach())
            store: dict[str, Tensor] = {}

            def hook(m, i, o, store=store):
                o.retain_grad()
                store["act"] = o

            handle = layer.register_forward_hook(hook)
            try:
                with torch.enable_grad():
                    logits = self.logits_fn(x)
                    top = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
                    top.backward()
            finally:
                handle.remove()
            act = store["act"]
            weights = act.grad.mean(dim=(2, 3), keepdim=True)
            cam = torch.relu((weights * act).sum(dim=1)).detach()
            peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
            out.append((cam / peak).numpy().astype(np.float32))
        return np.concatenate(out)
