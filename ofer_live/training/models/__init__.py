"""Latent-OFER models in torch: registry, ViT-SVDD, hybrid reconstructor, FER net, discriminators.

>>> from ofer_live.training.models import create_model, list_models
>>> model = create_model("vit_svdd_tiny")
"""

from ofer_live.training.models import (  # noqa: F401  (register the factories)
    expression,
    expression_ensemble,
    reconstructor,
    vit_svdd,
)
from ofer_live.training.models.discriminators import FeaturePatchDiscriminator, PatchDiscriminator
from ofer_live.training.models.expression import ExpressionNet
from ofer_live.training.models.expression_ensemble import ExpressionEnsemble
from ofer_live.training.models.reconstructor import HybridReconstructor
from ofer_live.training.models.registry import ModelConfig, create_model, list_models, register_model
from ofer_live.training.models.self_assembly import SelfAssembly
from ofer_live.training.models.vit import mask_to_pixels, patchify, to_uint8_image, to_unit_image, unpatchify
from ofer_live.training.models.vit_svdd import ViTSVDD, calibrate_radius, init_center

__all__ = [
    "ExpressionEnsemble",
    "ExpressionNet",
    "FeaturePatchDiscriminator",
    "HybridReconstructor",
    "ModelConfig",
    "PatchDiscriminator",
    "SelfAssembly",
    "ViTSVDD",
    "calibrate_radius",
    "create_model",
    "init_center",
    "list_models",
    "mask_to_pixels",
    "patchify",
    "register_model",
    "to_uint8_image",
    "to_unit_image",
    "unpatchify",
]
