"""Memory stays flat: RSS after 10,000 demo frames is within 10 % of RSS after 1,000 (slow; opt-in).

Run with ``OFER_LIVE_SLOW=1 pytest tests/gui/test_memory.py`` or ``python benchmarks/gui_soak.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("OFER_LIVE_SLOW"), reason="slow soak: set OFER_LIVE_SLOW=1 to run it")
@pytest.mark.timeout(1800)
def test_memory_stays_flat_over_10000_demo_frames(qapp, tiny_models_dir):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from soak import measure  # benchmarks/soak.py: a developer tool, not app code

    report = measure(tiny_models_dir, frames=10_000, checkpoint=1_000, paced_s=2.0)
    assert report["end_frames"] >= 10_000
    assert report["unpaced_results"] > 0
    assert report["rss_growth"] < 0.10, report
