"""``python -m ofer_live`` is the same command line as ``ofer-live``."""

from __future__ import annotations

import subprocess
import sys

from ofer_live import __version__


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "ofer_live", "--version"], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == f"ofer-live {__version__}"
    bad = subprocess.run(
        [sys.executable, "-m", "ofer_live", "train", "bench", "--models", "nope"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "unknown model 'nope'" in bad.stderr
