"""A face crop is aligned like the same face found in a whole frame."""

from __future__ import annotations

import cv2
import numpy as np

from ofer_live.face.crops import CropAligner
from ofer_live.face.finder import FaceFinder


def test_crop_is_framed_like_the_face_in_the_frame(astronaut_bgr):
    with FaceFinder(face_size=112) as finder:
        (face,), _ = finder.find(astronaut_bgr)
    crop = astronaut_bgr[40:240, 150:350]  # a loose face crop, as in a data set
    with CropAligner() as aligner:
        aligned, found = aligner.align_crop(crop, 112)
        gray48 = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
        small, small_found = aligner.align_crop(gray48, 112)  # FER2013-sized: upscaled to 128 px to detect
        blank, blank_found = aligner.align_crop(np.zeros((60, 90, 3), np.uint8), 112)
    assert found and small_found and not blank_found
    assert aligned.shape == small.shape == blank.shape == (112, 112, 3)
    # Same framing as the whole-frame path: the eyes, nose and mouth land within BlazeFace's keypoint jitter of the
    # frame path's positions; the plain resize that --aligned used before is off by a quarter of the face.
    with CropAligner() as aligner:
        reference = aligner.keypoints(face.aligned)[:4]
        naive = cv2.cvtColor(cv2.resize(crop, (112, 112), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        errors = {
            name: float(np.abs(aligner.keypoints(img)[:4] - reference).max())
            for name, img in (("crop", aligned), ("gray48", small), ("plain resize", naive))
        }
    assert errors["crop"] < 8 and errors["gray48"] < 8 and errors["plain resize"] > 15, errors
    pixel_error = np.abs(aligned.astype(int) - face.aligned.astype(int)).mean()
    assert pixel_error < 0.5 * np.abs(naive.astype(int) - face.aligned.astype(int)).mean()
