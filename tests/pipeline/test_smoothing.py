"""ProbabilitySmoother: per-track EMA."""

from __future__ import annotations

import numpy as np
import pytest

from ofer_live.pipeline import ProbabilitySmoother


def test_ema_per_track():
    s = ProbabilitySmoother(alpha=0.5)
    a = np.array([1.0, 0.0], np.float32)
    b = np.array([0.0, 1.0], np.float32)
    np.testing.assert_allclose(s.apply(1, a), a)  # first frame passes through
    np.testing.assert_allclose(s.apply(1, b), [0.5, 0.5])
    np.testing.assert_allclose(s.apply(1, b), [0.25, 0.75])
    np.testing.assert_allclose(s.apply(2, b), b)  # other track independent
    out = s.apply(1, b)
    assert out.dtype == np.float32 and out.sum() == pytest.approx(1.0)


def test_untracked_faces_pass_through():
    s = ProbabilitySmoother(alpha=0.1)
    p = np.array([0.3, 0.7], np.float32)
    s.apply(-1, np.array([1.0, 0.0]))
    np.testing.assert_allclose(s.apply(-1, p), p)
    assert len(s) == 0


def test_reset_and_ageing():
    s = ProbabilitySmoother(alpha=0.5, max_age=2)
    s.apply(1, np.array([1.0, 0.0]))
    for _ in range(3):
        s.tick()
    assert len(s) == 0
    s.apply(1, np.array([1.0, 0.0]))
    s.reset()
    np.testing.assert_allclose(s.apply(1, np.array([0.0, 1.0])), [0.0, 1.0])


def test_alpha_checked():
    with pytest.raises(ValueError):
        ProbabilitySmoother(alpha=0.0)
