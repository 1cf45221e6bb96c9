"""import-linter really guards the layers: a torch import planted indirectly in a temporary copy is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT)], cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (the dev extra)")
def test_an_indirect_torch_import_in_the_app_layers_fails_the_linter(tmp_path):
    shutil.copytree(REPO / "ofer_live", tmp_path / "ofer_live", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout[-2000:]
    # gui/ -> a helper module -> training/ (which imports torch): no direct torch import anywhere in gui/.
    (tmp_path / "ofer_live" / "io" / "planted_helper.py").write_text(
        "from ofer_live.training import checkpoint  # noqa: F401\n"
    )
    (tmp_path / "ofer_live" / "gui" / "planted.py").write_text(
        "from ofer_live.io import planted_helper  # noqa: F401\n"
    )
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "No torch or timm outside training/ and export/ BROKEN" in broken.stdout
