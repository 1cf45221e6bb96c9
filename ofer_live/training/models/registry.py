"""timm-style model registry: ``@register_model`` factories, ``create_model(name, **kw)``, ``list_models()``.

Every architecture registers three variants (``<arch>_tiny``, ``<arch>_default``, ``<arch>_paper``). A factory
returns an ``nn.Module`` whose ``config`` attribute is a :class:`ModelConfig` (face size, patch grid, latent dim,
contract model name), which the exporter writes into the ONNX metadata. ``create_model`` records the registered
name and the keyword overrides on the module (``model.model_name`` / ``model.model_kwargs``) so a checkpoint can
rebuild exactly the same module.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


@dataclass(frozen=True)
class ModelConfig:
    """What the exporter needs to know about a built model.

    ``contract``: one of ``contracts.MODEL_NAMES`` (occlusion / reconstructor / expression).
    """

    contract: str
    face_size: int
    patch_grid: int
    latent_dim: int

    @property
    def patch_size(self) -> int:
        return self.face_size // self.patch_grid


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register ``fn`` under its ``__name__``. Raises ValueError on a duplicate name."""
    name = fn.__name__
    if name in _REGISTRY and _REGISTRY[name] is not fn:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered names matching a shell-style ``pattern`` (e.g. ``"*_tiny"``)."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``kwargs`` override the variant's defaults. Raises KeyError for unknown names."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    model = _REGISTRY[name](**kwargs)
    model.model_name = name  # type: ignore[assignment]
    model.model_kwargs = dict(kwargs)  # type: ignore[assignment]
    return model
