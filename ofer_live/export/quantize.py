"""int8 variants of the exported ViT models: ONNX Runtime dynamic quantisation of the MatMul weights.

``add_int8_variants(models_dir)`` writes ``occlusion.int8.onnx`` and ``reconstructor.int8.onnx`` beside the fp32
files and records them in ``manifest.json`` (``models.<name>.int8 = {"file", "sha256"}``); the runtime loads them
with ``RuntimeConfig.precision = "int8"`` (``--precision int8``). Their latency, against the fp32 files:
``python benchmarks/model_latency.py --threads 1 2 --precision fp32 int8`` (figures in the README model card).

- Only MatMul is quantised (weights int8 per output channel, activations quantised on the fly). That covers the
  ViT blocks, which are most of the detector and half of the reconstructor. In a one-off trial ONNX Runtime's
  dynamic ConvInteger made the convolutional nets several times slower here, so the FER net has no int8 variant
  and the reconstructor's U-Net stays fp32.
- The graph is first run through ORT's quantisation pre-processing (shape inference and optimisation), as its
  documentation advises. The ``ofer_live`` metadata is carried over, so an int8 file passes the same contract
  checks as its fp32 file.
- No calibration data is needed: dynamic quantisation measures the activations' ranges at run time.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ofer_live import contracts
from ofer_live.errors import ModelError
from ofer_live.runtime.manifest import read_manifest, sha256_file

QUANTIZED_MODELS: tuple[str, ...] = (contracts.OCCLUSION, contracts.RECONSTRUCTOR)


def quantize_matmuls(src: Path, dst: Path) -> None:
    """Write ``dst``: ``src`` with every MatMul's weights in int8 (per channel) and its activations quantised
    dynamically; the model's metadata is kept."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(
            str(prepared), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], per_channel=True
        )
    original = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    quantized = onnx.load(str(dst))
    present = {p.key for p in quantized.metadata_props}
    missing = {k: v for k, v in original.items() if k not in present}
    if missing:
        onnx.helper.set_model_props(quantized, {**{p.key: p.value for p in quantized.metadata_props}, **missing})
        onnx.save(quantized, str(dst))


def add_int8_variants(models_dir: Path, names: Sequence[str] = QUANTIZED_MODELS) -> dict[str, dict[str, Any]]:
    """Quantise the models ``names`` of ``models_dir`` (as its manifest lists them) and record the int8 files in
    the manifest -> {name: {"file", "sha256"}}."""
    models_dir = Path(models_dir)
    manifest = read_manifest(models_dir)
    written: dict[str, dict[str, Any]] = {}
    for name in names:
        entry = manifest["models"].get(name)
        if not isinstance(entry, dict):
            raise ModelError(f"{models_dir / contracts.MANIFEST_NAME}: no '{name}' model to quantise")
        src = models_dir / entry.get("file", contracts.MODEL_FILES[name])
        dst = models_dir / contracts.variant_file_name(src.name, "int8")
        quantize_matmuls(src, dst)
        entry["int8"] = written[name] = {"file": dst.name, "sha256": sha256_file(dst)}
    path = models_dir / contracts.MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return written
