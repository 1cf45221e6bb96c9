"""Frozen result types passed between stages (numpy only).

Empty results are well-shaped empty containers, never None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ofer_live.contracts import LABELS


@dataclass(frozen=True, eq=False)
class Face:
    """One detected and aligned face.

    box: (x, y, w, h) in frame pixels (ints, clipped to the frame).
    keypoints: (6, 2) float32 frame coordinates from the detector
        (right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion).
    score: detector confidence in [0, 1].
    track_id: stable id across frames (IoU matching); -1 for still images.
    aligned: (S, S, 3) uint8 RGB canonical face.
    frame_to_face: (2, 3) float32 similarity transform, frame -> aligned crop.
    face_to_frame: (2, 3) float32 inverse transform, aligned crop -> frame.
    """

    box: tuple[int, int, int, int]
    keypoints: np.ndarray
    score: float
    track_id: int
    aligned: np.ndarray
    frame_to_face: np.ndarray
    face_to_frame: np.ndarray

    @property
    def size(self) -> int:
        """S, the side of the aligned crop (the face space that frame_to_face maps into)."""
        return int(self.aligned.shape[0])


@dataclass(frozen=True, eq=False)
class FaceResult:
    """Everything the pipeline knows about one face in one frame.

    patch_score: (G, G) float32, > threshold means occluded.
    mask: (G, G) bool, True = occluded (the patches sent to the reconstructor).
    cam: (G, G) float32 in [0, 1], the FER net's spatial attention.
    reconstruction: (S, S, 3) uint8 RGB.
    probs: (7,) float32, sums to 1, FER2013 label order.
    """

    face: Face
    patch_score: np.ndarray
    mask: np.ndarray
    cam: np.ndarray
    reconstruction: np.ndarray
    probs: np.ndarray

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def label(self) -> str:
        return LABELS[self.label_index]

    @property
    def confidence(self) -> float:
        return float(self.probs[self.label_index])

    @property
    def occluded_fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def occlusion_grid_string(self) -> str:
        """The mask as G*G characters '0'/'1', row-major."""
        return "".join("1" if v else "0" for v in self.mask.reshape(-1))


@dataclass(frozen=True, eq=False)
class FrameResult:
    """The pipeline's output for one frame.

    frame_shape: (H, W) of the frame processed.
    faces: one FaceResult per processed face (may be empty).
    small_faces: boxes of detected faces skipped for being smaller than min_face_px.
    timings_ms: per-stage wall time in ms (detect, align, occlusion, reconstruct, expression, total).
    """

    frame_index: int
    time_s: float
    frame_shape: tuple[int, int]
    faces: tuple[FaceResult, ...] = ()
    small_faces: tuple[tuple[int, int, int, int], ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
