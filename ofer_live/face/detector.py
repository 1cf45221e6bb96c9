"""Face detection with the MediaPipe Tasks FaceDetector (BlazeFace short-range, bundled model).

The model file ``ofer_live/assets/face_detection_short_range.tflite`` comes from the mediapipe
0.10.21 wheel (Apache-2.0); mediapipe >= 0.10.30 ships no model files.

Limitations of the short-range model (documented in the README):
- It is trained for faces within about 2 m of a webcam: the face should span at least ~1/10 of
  the shorter image side. Faces far away in a wide shot, or small faces in a very large photo,
  are missed (the whole frame is letterboxed to 128x128 inside the model).
- Strong profiles (beyond ~60 degrees of yaw) and upside-down faces are often missed.
- Keypoints are coarse (6 points); alignment uses the eyes, the nose tip and the mouth centre.

The detector runs in IMAGE mode: every call is independent, so frames need no timestamps and
can be skipped or come from several sources. MediaPipe's native logging (LiteRT/absl INFO and
the one-off "tensor memory is not aligned" warning) is kept off the terminal while the task is
created, warmed up and closed, and around ``detect`` until that one-off warning has been seen;
set the ``ofer_live.face`` logger to DEBUG to see it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import re
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ofer_live.config import ASSETS_DIR
from ofer_live.errors import ModelError

logger = logging.getLogger(__name__)

MODEL_PATH: Path = ASSETS_DIR / "face_detection_short_range.tflite"
# Keypoint order of the detector (subject's right/left: the subject's right eye appears on the image's left).
KEYPOINT_NAMES: tuple[str, ...] = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth",
    "right_ear_tragion",
    "left_ear_tragion",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

_stderr_lock = threading.Lock()
_live_detectors: weakref.WeakSet[FaceDetector] = weakref.WeakSet()


# One line of MediaPipe's native logging: absl/glog style
# ("W0000 00:00:1796035132.080944   30318 inference_runner_litert.cc:1433] Input tensor memory ..."),
# LiteRT style ("INFO: [environment.cc:36] Creating LiteRT environment"), or TFLite's own lines.
_NATIVE_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] "
    r"|(?:VERBOSE|INFO|WARNING|ERROR): \[[\w./-]+:\d+\] "
    r"|WARNING: Logging before InitGoogle"
    r"|INFO: Created TensorFlow Lite)"
)
# LiteRT logs this once per process (ABSL_LOG_FIRST_N), on the first call whose input tensor happens
# to be misaligned -- which depends on the heap, so it may come on any detect() call, not the warm-up.
_ALIGNMENT_WARNING = "Input tensor memory is not aligned"
_alignment_warning_seen = False


_capture: IO[bytes] | None = None


def _capture_file() -> IO[bytes]:
    """The one temporary file that fd 2 points at inside ``quiet_native_stderr`` (opened once, reused: the block
    runs around every ``detect`` until LiteRT's one-off warning has come). Call with ``_stderr_lock`` held."""
    global _capture
    if _capture is None or _capture.closed:
        _capture = tempfile.TemporaryFile()
    return _capture


def drop_native_log_lines(text: str) -> str:
    """Captured stderr text -> the same text without MediaPipe's native log lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not _NATIVE_LOG_LINE.match(line))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Keep MediaPipe's C++ log lines off file descriptor 2 while the block runs.

    MediaPipe's native logs (LiteRT INFO lines, absl warnings) bypass Python's ``logging`` and
    cannot be turned off by environment variables in mediapipe 0.10.30+/1.x. Fd 2 is pointed at a
    temporary file for the block; afterwards every captured line that is not a native log line
    (another thread's Python warning, say) is written to the real stderr, so nothing else is lost.
    Skipped when the ``ofer_live.face`` logger is at DEBUG level or when fd 2 cannot be duplicated.
    """
    global _alignment_warning_seen
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    with _stderr_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield
            return
        capture = _capture_file()
        capture.seek(0)
        capture.truncate()
        try:
            os.dup2(capture.fileno(), 2)
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            if _ALIGNMENT_WARNING in text:
                _alignment_warning_seen = True
            kept = drop_native_log_lines(text)
            if kept:
                os.write(2, kept.encode("utf-8", errors="replace"))


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face.

    box: (4,) float32 (x, y, w, h) in frame pixels (not clipped; may extend past the frame).
    keypoints: (6, 2) float32 (x, y) frame pixels, in ``KEYPOINT_NAMES`` order.
    score: detector confidence in [0, 1].
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    """frame: (H, W, 3) BGR or (H, W) gray uint8 -> (H, W, 3) RGB uint8, C-contiguous."""
    import cv2

    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB))
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB))
    raise ValueError(f"frame must be (H, W, 3) BGR or (H, W) gray, got shape {frame.shape}")


class FaceDetector:
    """MediaPipe BlazeFace short-range detector in IMAGE mode.

    ``detect(frame_bgr)`` returns at most ``max_faces`` detections with score >= ``min_confidence``,
    best first. Not thread-safe: use one instance per thread (the inference thread owns it).
    """

    def __init__(self, min_confidence: float = 0.5, max_faces: int = 8, model_path: str | Path | None = None):
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self.min_confidence = float(min_confidence)
        self.max_faces = int(max_faces)
        self.model_path = Path(model_path) if model_path is not None else MODEL_PATH
        try:
            model_bytes = self.model_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"face detector model not readable: {self.model_path} ({exc.strerror})") from None

        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self._mp = mp
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=model_bytes),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=self.min_confidence,
        )
        try:
            with quiet_native_stderr():
                self._task = vision.FaceDetector.create_from_options(options)
                # Warm-up: the first call logs a one-off native warning and allocates buffers.
                self._task.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"face detector model {self.model_path} could not be loaded: {exc}") from None
        _live_detectors.add(self)
        logger.debug("FaceDetector ready (%s, min_confidence=%.2f)", self.model_path.name, self.min_confidence)

    @property
    def closed(self) -> bool:
        return self._task is None

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """frame_bgr: (H, W, 3) BGR or (H, W) gray uint8 -> detections sorted by score (best first).

        An empty or tiny frame gives an empty list.
        """
        if self._task is None:
            raise RuntimeError("FaceDetector is closed")
        if frame_bgr.ndim < 2 or frame_bgr.shape[0] < 2 or frame_bgr.shape[1] < 2:
            return []
        rgb = _as_rgb(frame_bgr)
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        if _alignment_warning_seen:
            result = self._task.detect(image)
        else:  # the one-off native warning has yet to come: keep it off the terminal
            with quiet_native_stderr():
                result = self._task.detect(image)
        detections: list[Detection] = []
        for det in result.detections:
            score = float(det.categories[0].score) if det.categories else 0.0
            if score < self.min_confidence:
                continue
            bb = det.bounding_box
            box = np.array([bb.origin_x, bb.origin_y, bb.width, bb.height], dtype=np.float32)
            kps = np.zeros((NUM_KEYPOINTS, 2), dtype=np.float32)
            for i, kp in enumerate(det.keypoints[:NUM_KEYPOINTS]):
                kps[i] = (kp.x * w, kp.y * h)
            detections.append(Detection(box=box, keypoints=kps, score=score))
        detections.sort(key=lambda d: d.score, reverse=True)
        return detections[: self.max_faces]

    def close(self) -> None:
        """Release the MediaPipe task (idempotent)."""
        task, self._task = getattr(self, "_task", None), None
        if task is not None:
            _live_detectors.discard(self)
            with quiet_native_stderr():
                task.close()
                del task  # LiteRT logs while the native objects are freed: keep that inside the quiet block
                gc.collect()

    def __del__(self) -> None:
        # Close quietly when dropped without close(); MediaPipe's own finaliser would log natively.
        try:
            self.close()
        except (AttributeError, TypeError, RuntimeError, OSError):  # interpreter shutting down
            pass

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@atexit.register
def _close_leftover_detectors() -> None:
    # MediaPipe's own __del__ fails noisily during interpreter teardown; close what is left first.
    for detector in list(_live_detectors):
        detector.close()
