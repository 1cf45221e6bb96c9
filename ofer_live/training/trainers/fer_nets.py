"""Frozen FER networks used while training (semantic-consistency loss, distillation): our expression checkpoints
or the two teachers of ``training.teachers``.

``load_fer_net(spec, data_root, device, latent_source)`` -> callable ``image (N, 3, S, S) float in [0, 1] -> logits
(N, 7)``. ``spec`` is ``teacher:face_api``, ``teacher:fer_mini_xception``, or a checkpoint file, run folder or
exported ``.onnx`` file of an expression model. An expression net that uses ViT latents gets them from
``latent_source(image)`` when given, else zeros. An expression net's callable also has ``.features``: image ->
its frozen layer-2 features (N, C, h, w); the Keras teachers have none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ofer_live.errors import UserError
from ofer_live.training.checkpoint import build_model, load_weights

TEACHER_PREFIX = "teacher:"


def load_fer_net(
    spec: str,
    data_root: Path,
    device: torch.device,
    latent_source: Callable[[Tensor], Tensor] | None = None,
) -> Callable[[Tensor], Tensor]:
    if spec.startswith(TEACHER_PREFIX):
        from ofer_live.training.teachers import load_teacher

        teacher = load_teacher(spec[len(TEACHER_PREFIX) :], Path(data_root)).to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)

        def teacher_logits(image: Tensor) -> Tensor:
            return teacher.logits(image.permute(0, 2, 3, 1) * 255.0)

        return teacher_logits
    path = Path(spec)
    ckpt = load_weights(path)  # a checkpoint, a run folder or an exported expression.onnx
    model = build_model(ckpt, str(path)).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    config = getattr(model, "config", None)
    if config is None or config.contract != "expression":
        raise UserError(f"{path}: not an expression model checkpoint ({ckpt['model_name']})")
    tokens, dim = config.patch_grid**2, config.latent_dim

    def expression_logits(image: Tensor) -> Tensor:
        if latent_source is not None and getattr(model, "latent_mode", "none") != "none":
            latents = latent_source(image)
        else:
            latents = image.new_zeros(image.shape[0], tokens, dim)
        return model.forward_head(model.forward_features(image, latents))

    expression_logits.face_size = config.face_size  # type: ignore[attr-defined]
    # image (N, 3, S, S) in [0, 1] -> frozen layer-2 features (N, C, h, w): the target of the consistency loss L_c
    expression_logits.features = model.stem_features  # type: ignore[attr-defined]
    return expression_logits
