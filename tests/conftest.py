"""Shared fixtures. Nothing here needs a camera, a GPU, a download or ../shared."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny randomly initialised Latent-OFER models exported by the real exporter (+ manifest)."""
    from ofer_live.export.tiny import export_tiny_models

    return export_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-frame 640x480 demo clip (astronaut face, moving occluders) written by the real generator."""
    from ofer_live.io.demo import write_demo_clip

    return write_demo_clip(tmp_path_factory.mktemp("clip") / "demo.mp4", n_frames=30, fps=15.0)


@pytest.fixture(scope="session")
def astronaut_bgr():
    """The public-domain astronaut photo (BGR uint8, 512x512x3) shipped in ofer_live/assets."""
    from ofer_live.io.demo import astronaut_bgr as load

    return load()


@pytest.fixture
def cli_python() -> list[str]:
    """argv prefix that runs the ofer-live CLI in a subprocess with this interpreter."""
    return [sys.executable, "-m", "ofer_live.cli"]


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """``cli.main(["-v", ...])`` in a test calls logging.basicConfig(DEBUG); undo it so later tests are not run
    at DEBUG level (where, for one, MediaPipe's native log lines are deliberately let through)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
