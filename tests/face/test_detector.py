"""The real MediaPipe detector on the bundled astronaut photo."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from ofer_live.errors import ModelError
from ofer_live.face.detector import KEYPOINT_NAMES, MODEL_PATH, Detection, FaceDetector


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as det:
        yield det


def test_model_is_bundled():
    assert MODEL_PATH.is_file() and MODEL_PATH.stat().st_size > 100_000


def test_detects_the_astronaut(detector, astronaut_bgr):
    dets = detector.detect(astronaut_bgr)
    assert len(dets) == 1
    d = dets[0]
    assert isinstance(d, Detection)
    assert d.box.shape == (4,) and d.box.dtype == np.float32
    assert d.keypoints.shape == (len(KEYPOINT_NAMES), 2) and d.keypoints.dtype == np.float32
    assert d.score > 0.8
    # The face is at about (177, 82, 95, 95) in the 512x512 photo.
    np.testing.assert_allclose(d.box, [177, 82, 95, 95], atol=12)
    right_eye, left_eye, nose, mouth = d.keypoints[:4]
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    x, y, w, h = d.box
    assert np.all((d.keypoints[:4] >= [x, y]) & (d.keypoints[:4] <= [x + w, y + h]))


def test_gray_and_tiny_and_blank_frames(detector, astronaut_bgr):
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(gray)) == 1
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector.detect(np.zeros((0, 0, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 127, np.uint8)) == []


def test_rejects_wrong_dtype(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))


def test_max_faces_and_confidence(astronaut_bgr):
    crop = astronaut_bgr[30:290, 100:350]  # keep faces large: the short-range model sees a 128x128 letterbox
    two = np.hstack([crop, crop])
    with FaceDetector(max_faces=1) as det:
        assert len(det.detect(two)) == 1
    with FaceDetector(max_faces=4) as det:
        dets = det.detect(two)
        assert len(dets) == 2
        assert dets[0].score >= dets[1].score
    with FaceDetector(min_confidence=0.999) as det:
        assert det.detect(astronaut_bgr) == []


def test_close_is_idempotent(astronaut_bgr):
    det = FaceDetector()
    det.close()
    det.close()
    assert det.closed
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(astronaut_bgr)


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="face detector model not readable"):
        FaceDetector(model_path=tmp_path / "missing.tflite")


def test_bad_model_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match="could not be loaded"):
        FaceDetector(model_path=bad)


def test_native_logging_is_quiet():
    """MediaPipe's LiteRT/absl lines must not reach the user's terminal."""
    code = (
        "import numpy as np\n"
        "from ofer_live.face.detector import FaceDetector\n"
        "from ofer_live.io.demo import astronaut_bgr\n"
        "d = FaceDetector()\n"
        "assert len(d.detect(astronaut_bgr())) == 1\n"
        "for h, w in [(480, 640), (360, 360), (720, 1280), (97, 131)] * 4:\n"
        "    d.detect(np.zeros((h, w, 3), np.uint8))  # LiteRT warns once, on whichever call is misaligned\n"
        "d.close()\n"
        "FaceDetector()  # left open on purpose: closed quietly at exit\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""


def test_quiet_block_keeps_other_stderr_output():
    """Only MediaPipe's native lines are dropped; what else reaches fd 2 meanwhile is replayed."""
    code = (
        "import os\n"
        "from ofer_live.face.detector import quiet_native_stderr\n"
        "with quiet_native_stderr():\n"
        "    os.write(2, b'W0000 00:00:1796035132.080944   30318 inference_runner_litert.cc:1433] noise\\n')\n"
        "    os.write(2, b'INFO: [environment.cc:36] Creating LiteRT environment with options\\n')\n"
        "    os.write(2, b'WARNING: Logging before InitGoogle() is written to STDERR\\n')\n"
        "    os.write(2, b'a line from another thread\\n')\n"
        "print('after', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "a line from another thread\n"
    assert proc.stdout == "after\n"
