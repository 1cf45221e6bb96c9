"""ofer_live.runtime: ONNX Runtime sessions, provider choice, checksum and contract checks.

onnxruntime itself is imported lazily (on first session or provider query).
"""

from ofer_live.runtime.loader import ModelCheck, Models, check_models, load_model, load_models
from ofer_live.runtime.models import ExpressionModel, OcclusionModel, OnnxModel, ReconstructorModel, softmax
from ofer_live.runtime.providers import available_providers, select_providers

__all__ = [
    "ExpressionModel",
    "ModelCheck",
    "Models",
    "OcclusionModel",
    "OnnxModel",
    "ReconstructorModel",
    "available_providers",
    "check_models",
    "load_model",
    "load_models",
    "select_providers",
    "softmax",
]
