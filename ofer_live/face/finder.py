"""FaceFinder: detect -> drop small faces -> align -> track -> list[types.Face]."""

from __future__ import annotations

import logging

import numpy as np

from ofer_live.face.align import align_face
from ofer_live.face.detector import Detection, FaceDetector
from ofer_live.face.tracking import IouTracker
from ofer_live.types import Face

logger = logging.getLogger(__name__)


def clip_box(box: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """box: (4,) float (x, y, w, h), frame_shape: (H, W, ...) -> (x, y, w, h) ints clipped to the frame."""
    h, w = frame_shape[:2]
    x0 = int(np.clip(np.floor(box[0]), 0, w))
    y0 = int(np.clip(np.floor(box[1]), 0, h))
    x1 = int(np.clip(np.ceil(box[0] + box[2]), 0, w))
    y1 = int(np.clip(np.ceil(box[1] + box[3]), 0, h))
    return x0, y0, x1 - x0, y1 - y0


class FaceFinder:
    """Finds, filters, aligns and tracks faces in BGR frames.

    A face whose detector box (clipped to the frame) has a side shorter than ``min_face_px`` is
    not processed; its box is returned in the second list so callers can report it.
    With ``track=False`` (still images) every face gets ``track_id = -1``.
    ``detector`` may be injected (tests, or to share one); the finder then does not close it.
    """

    def __init__(
        self,
        face_size: int,
        min_face_px: int = 40,
        max_faces: int = 8,
        min_confidence: float = 0.5,
        track: bool = True,
        detector: FaceDetector | None = None,
        iou_threshold: float = 0.3,
        max_missed: int = 10,
    ):
        if face_size < 1:
            raise ValueError(f"face_size must be >= 1, got {face_size}")
        self.face_size = int(face_size)
        self.min_face_px = int(min_face_px)
        self.max_faces = int(max_faces)
        self._owns_detector = detector is None
        # Ask the detector for a few extra faces: small ones are filtered out after detection.
        self.detector = detector if detector is not None else FaceDetector(min_confidence, max_faces=max_faces + 8)
        self.tracker: IouTracker | None = IouTracker(iou_threshold, max_missed) if track else None

    def reset(self) -> None:
        """Forget tracks (call when the source changes)."""
        if self.tracker is not None:
            self.tracker.reset()

    def find(self, frame_bgr: np.ndarray) -> tuple[list[Face], list[tuple[int, int, int, int]]]:
        """frame_bgr: (H, W, 3) BGR uint8 -> (faces, small-face boxes (x, y, w, h)), faces best score first."""
        detections = self.detector.detect(frame_bgr)
        return self.from_detections(frame_bgr, detections)

    def from_detections(
        self, frame_bgr: np.ndarray, detections: list[Detection]
    ) -> tuple[list[Face], list[tuple[int, int, int, int]]]:
        """Filter, align and track given detections (frame_bgr: (H, W, 3) uint8)."""
        kept: list[tuple[Detection, tuple[int, int, int, int]]] = []
        small: list[tuple[int, int, int, int]] = []
        for det in detections:
            box = clip_box(det.box, frame_bgr.shape)
            if min(box[2], box[3]) < self.min_face_px:
                small.append(box)
            elif len(kept) < self.max_faces:
                kept.append((det, box))
        aligned = []
        for det, box in kept:
            try:
                crop, f2c, c2f = align_face(frame_bgr, det.keypoints, self.face_size)
            except ValueError as exc:  # degenerate keypoints: report as not processed
                logger.debug("skipping a face with unusable keypoints: %s", exc)
                small.append(box)
                continue
            aligned.append((det, box, crop, f2c, c2f))
        if self.tracker is not None:
            ids = self.tracker.update(np.array([a[0].box for a in aligned], dtype=np.float32).reshape(-1, 4))
        else:
            ids = [-1] * len(aligned)
        faces = [
            Face(
                box=box,
                keypoints=det.keypoints,
                score=det.score,
                track_id=track_id,
                aligned=crop,
                frame_to_face=f2c,
                face_to_frame=c2f,
            )
            for (det, box, crop, f2c, c2f), track_id in zip(aligned, ids, strict=True)
        ]
        return faces, small

    def close(self) -> None:
        if self._owns_detector:
            self.detector.close()

    def __enter__(self) -> FaceFinder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
