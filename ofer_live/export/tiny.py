"""Tiny randomly initialised Latent-OFER models exported through the real exporter (the test fixture).

S=32, G=4 (patch 8), D=16; seeded, so every call writes the same weights. Takes about a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ofer_live import contracts
from ofer_live.export.onnx_export import export_model, make_model_metadata, write_manifest

log = logging.getLogger(__name__)

TINY_MODELS = {
    contracts.OCCLUSION: "vit_svdd_tiny",
    contracts.RECONSTRUCTOR: "reconstructor_tiny",
    contracts.EXPRESSION: "expression_tiny",
}
TRAINED_ON = "random-init (test fixture)"
THRESHOLD = 1.0


def build_tiny_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    """contract name -> tiny torch model (eval mode), seeded. The SVDD centre and R^2 are set on random faces so
    that roughly half of the random-input patch scores exceed 1 (a mix of "occluded" and "clean" patches)."""
    from ofer_live.training.models import calibrate_radius, create_model, init_center

    torch.manual_seed(seed)
    models = {name: create_model(arch).eval() for name, arch in TINY_MODELS.items()}
    svdd = models[contracts.OCCLUSION]
    gen = torch.Generator().manual_seed(seed)
    faces = torch.randint(0, 256, (4, 32, 32, 3), generator=gen, dtype=torch.uint8)
    init_center(svdd, [faces])
    with torch.no_grad():
        dist = svdd.distances(svdd.forward_features(faces.permute(0, 3, 1, 2).float() / 255.0))
    svdd.set_radius(calibrate_radius(dist, nu=0.5))
    return models


def export_tiny_models(out_dir: Path, seed: int = 0) -> Path:
    """Write occlusion.onnx, reconstructor.onnx, expression.onnx and manifest.json into ``out_dir``; return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    with torch.random.fork_rng(devices=[]):
        models = build_tiny_models(seed)
    for name, model in models.items():
        meta = make_model_metadata(model, threshold=THRESHOLD, trained_on=TRAINED_ON, metrics={}, preset="tiny")
        export_model(model, name, out_dir / contracts.MODEL_FILES[name], meta)
        entries[name] = {"preset": "tiny", "trained_on": TRAINED_ON, "metrics": {}}
    write_manifest(out_dir, entries)
    log.info("tiny models written to %s", out_dir)
    return out_dir
