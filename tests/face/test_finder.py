from __future__ import annotations

import cv2
import numpy as np
import pytest

from ofer_live.face.align import template_points, transform_points
from ofer_live.face.detector import Detection
from ofer_live.face.finder import FaceFinder, clip_box
from ofer_live.types import Face


class FakeDetector:
    def __init__(self, detections):
        self.detections = detections
        self.closed = False

    def detect(self, frame):
        return list(self.detections)

    def close(self):
        self.closed = True


def _detection(x, y, side, score=0.9):
    """A detection whose keypoints follow the template inside a square box."""
    s = 112
    m = np.array([[side / s, 0, x], [0, side / s, y]])
    kps = transform_points(template_points(s), m)
    return Detection(box=np.array([x, y, side, side], np.float32), keypoints=kps, score=score)


def test_finds_and_tracks_the_astronaut(astronaut_bgr):
    with FaceFinder(face_size=112) as finder:
        faces, small = finder.find(astronaut_bgr)
        assert small == []
        assert len(faces) == 1
        face = faces[0]
        assert isinstance(face, Face)
        assert face.aligned.shape == (112, 112, 3) and face.aligned.dtype == np.uint8
        assert face.track_id == 1
        assert all(isinstance(v, int) for v in face.box)
        shifted = np.roll(astronaut_bgr, 4, axis=1)
        faces2, _ = finder.find(shifted)
        assert faces2[0].track_id == 1


def test_still_images_get_track_id_minus_one(astronaut_bgr):
    with FaceFinder(face_size=32, track=False) as finder:
        faces, _ = finder.find(astronaut_bgr)
        assert faces[0].track_id == -1 and faces[0].aligned.shape == (32, 32, 3)


def test_small_faces_are_reported_not_processed(astronaut_bgr):
    # The face is ~31 px: under the default min_face_px of 40. (The frame is small, because the
    # short-range detector only finds faces that fill a fair part of the frame.)
    frame = np.full((220, 220, 3), 120, np.uint8)
    frame[20:200, 20:200] = cv2.resize(astronaut_bgr, (180, 180), interpolation=cv2.INTER_AREA)
    with FaceFinder(face_size=112) as finder:
        faces, small = finder.find(frame)
    assert faces == []
    assert len(small) == 1 and min(small[0][2:]) < 40
    with FaceFinder(face_size=112, min_face_px=20) as finder:
        faces, small = finder.find(frame)
    assert len(faces) == 1 and small == []


def test_max_faces_keeps_the_best_and_ignores_small_ones():
    dets = [_detection(10, 10, 30, 0.99), _detection(100, 100, 80, 0.9), _detection(300, 100, 90, 0.8)]
    fake = FakeDetector(dets)
    finder = FaceFinder(face_size=32, max_faces=1, detector=fake)
    faces, small = finder.find(np.zeros((480, 640, 3), np.uint8))
    assert [f.box for f in faces] == [(100, 100, 80, 80)]
    assert small == [(10, 10, 30, 30)]
    finder.close()
    assert not fake.closed  # an injected detector belongs to the caller


def test_degenerate_keypoints_are_skipped():
    bad = Detection(box=np.array([100, 100, 80, 80], np.float32), keypoints=np.full((6, 2), 50, np.float32), score=0.9)
    finder = FaceFinder(face_size=32, detector=FakeDetector([bad]))
    faces, small = finder.find(np.zeros((480, 640, 3), np.uint8))
    assert faces == [] and small == [(100, 100, 80, 80)]


def test_one_pixel_and_gray_frames(astronaut_bgr):
    with FaceFinder(face_size=32) as finder:
        assert finder.find(np.zeros((1, 1, 3), np.uint8)) == ([], [])
        faces, _ = finder.find(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))
        assert len(faces) == 1 and faces[0].aligned.shape == (32, 32, 3)


def test_clip_box():
    assert clip_box(np.array([-10.2, 5.5, 50, 50]), (100, 100, 3)) == (0, 5, 40, 51)
    assert clip_box(np.array([90, 90, 50, 50]), (100, 100)) == (90, 90, 10, 10)


def test_bad_face_size():
    with pytest.raises(ValueError):
        FaceFinder(face_size=0, detector=FakeDetector([]))
