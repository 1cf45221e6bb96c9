from __future__ import annotations

import numpy as np
import pytest

from ofer_live.face.tracking import IouTracker, iou_matrix


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]], atol=1e-6)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)


def test_ids_are_stable_while_faces_move():
    t = IouTracker()
    assert t.update(np.array([[100, 100, 80, 80], [300, 100, 80, 80]])) == [1, 2]
    # Both move a little; given in the other order.
    assert t.update(np.array([[306, 104, 80, 80], [104, 98, 82, 82]])) == [2, 1]
    # A new face appears.
    assert t.update(np.array([[108, 100, 80, 80], [310, 106, 80, 80], [500, 300, 60, 60]])) == [1, 2, 3]


def test_missed_faces_keep_their_id_for_max_missed_frames():
    t = IouTracker(max_missed=2)
    box = np.array([[100, 100, 80, 80]])
    assert t.update(box) == [1]
    assert t.update(np.zeros((0, 4))) == []
    assert t.update(np.zeros((0, 4))) == []
    assert t.update(box) == [1]  # missed twice: still tracked
    for _ in range(3):
        t.update(np.zeros((0, 4)))
    assert t.update(box) == [2]  # missed three times: a new id, never reusing 1


def test_low_overlap_is_a_new_face_and_reset_keeps_ids_unique():
    t = IouTracker(iou_threshold=0.5)
    assert t.update(np.array([[0, 0, 10, 10]])) == [1]
    assert t.update(np.array([[6, 0, 10, 10]])) == [2]  # IoU 0.25 < 0.5
    t.reset()
    assert t.tracks == ()
    assert t.update(np.array([[6, 0, 10, 10]])) == [3]


def test_bad_arguments():
    with pytest.raises(ValueError):
        IouTracker(iou_threshold=0)
    with pytest.raises(ValueError):
        IouTracker(max_missed=-1)
