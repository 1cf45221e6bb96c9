"""benchmarks/edge_occluders.py: each face gets one cut-out centred near the edge its turn names."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ofer_live.training.data.fake import draw_face
from ofer_live.training.data.occluders import Occluder, OccluderBank

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from edge_occluders import EDGES, edge_occluded  # noqa: E402  benchmarks/: a developer tool, not app code


def test_edge_occluded_puts_the_cut_out_at_its_edge():
    size, grid = 64, 8
    faces = np.stack([draw_face(size, i, np.random.default_rng(i), color=True) for i in range(6)])
    square = np.zeros((16, 16, 4), np.uint8)
    square[6:10, 6:10] = 255  # opaque at the cut-out's centre, so the coverage's centre is the placement's
    bank = OccluderBank([Occluder(kind="objects", name="square", rgba=square)])
    out, cov, edges = edge_occluded(faces, bank, grid, seed=0)
    assert edges == list(EDGES) * 2
    for face, before, c, edge in zip(out, faces, cov, edges, strict=True):
        assert c.sum() > 0 and not np.array_equal(face, before)
        ys, xs = np.nonzero(c)
        x, y = (xs.mean() + 0.5) / grid, (ys.mean() + 0.5) / grid
        if edge == "left":
            assert x < 0.3
        elif edge == "right":
            assert x > 0.7
        else:
            assert y < 0.35
