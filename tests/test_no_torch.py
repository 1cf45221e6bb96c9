"""The runtime side never imports torch (the [train] extra is optional)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Imports every module of the package except training/ and export/ (the only places allowed to use torch),
# builds the CLI parser (which imports every command module), and reports the heavy modules it finds.
# (A file walk, not pkgutil.walk_packages, which imports every package it descends into, training/ included.)
IMPORT_ALL = """
import importlib, pathlib, sys
import ofer_live
root = pathlib.Path(ofer_live.__file__).parent
skip = ("ofer_live.training", "ofer_live.export", "ofer_live.commands.train", "ofer_live.commands.export",
        "ofer_live.commands.eval")
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    if not name.startswith(skip) and "__pycache__" not in parts:
        importlib.import_module(name)
for name in ("ofer_live.cli", "ofer_live.pipeline", "ofer_live.runtime", "ofer_live.face", "ofer_live.io",
             "ofer_live.render", "ofer_live.gui"):
    importlib.import_module(name)
from ofer_live.cli import build_parser
build_parser()
print("HEAVY=" + ",".join(sorted(m for m in ("torch", "timm", "torchvision") if m in sys.modules)))
"""

# Runs the whole pipeline on one frame with real models: lazy imports at run time count too.
RUN_PIPELINE = """
import sys
import numpy as np
from ofer_live.config import AppConfig, RuntimeConfig
from ofer_live.pipeline import FramePipeline
config = AppConfig(runtime=RuntimeConfig(models_dir=sys.argv[1]))
with FramePipeline.create(config) as pipeline:
    pipeline.process(np.zeros((240, 320, 3), np.uint8))
print("HEAVY=" + ",".join(sorted(m for m in ("torch", "timm", "torchvision") if m in sys.modules)))
"""


def _run(code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_importing_the_app_never_imports_torch():
    assert _run(IMPORT_ALL) == "HEAVY="


def test_running_the_pipeline_never_imports_torch(tiny_models_dir):
    pytest.importorskip("ofer_live.face.finder")
    assert _run(RUN_PIPELINE, str(tiny_models_dir)) == "HEAVY="
