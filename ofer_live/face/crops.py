"""Faces that arrive already cropped (``ofer-live images --aligned``, data-set images, the training caches):
find the keypoints inside the crop and warp it onto the run-time template, so a crop is framed exactly as a face
found in a video frame.

Small crops are upscaled before detection (BlazeFace works at 128 px: FER2013's 48 px faces are found 99.5 % of
the time at 128 px); ``pad`` edge-pads the crop before warping, so template regions beyond a tight crop are filled
with edge pixels. The training caches (``training.data.cache``) align every data set with this class too.
"""

from __future__ import annotations

import cv2
import numpy as np

from ofer_live.face.align import align_face, crop_to_face, to_rgb

DETECT_SIZE = 128


class CropAligner:
    """Detect (run-time detector) and warp (run-time ``align_face``) face crops onto the template.

    ``keypoints(rgb) -> (6, 2) float32 pixels | None``; ``align(rgb, keypoints, size) -> (size, size, 3) RGB``;
    ``align_crop(image, size) -> (face (size, size, 3) RGB, found)``, with the plain centre crop when no face is found.
    """

    def __init__(self, detect_size: int | None = DETECT_SIZE, pad: float = 0.0, min_confidence: float = 0.3) -> None:
        from ofer_live.face.detector import FaceDetector

        self.detector = FaceDetector(min_confidence=min_confidence, max_faces=4)
        self.detect_size = detect_size
        self.pad = pad

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> CropAligner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keypoints(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb: (H, W, 3) uint8 -> keypoints (6, 2) float32 of the largest confident face, or None."""
        h, w = rgb.shape[:2]
        scale = 1.0
        image = rgb
        if self.detect_size and max(h, w) < self.detect_size:
            scale = self.detect_size / max(h, w)
            image = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        detections = self.detector.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not detections:
            return None
        best = max(detections, key=lambda d: d.score * d.box[2] * d.box[3])
        return (np.asarray(best.keypoints, dtype=np.float32) / scale).astype(np.float32)

    def align(self, rgb: np.ndarray, keypoints: np.ndarray, size: int) -> np.ndarray:
        """rgb: (H, W, 3) uint8, keypoints: (6, 2) -> (size, size, 3) uint8 RGB on the template."""
        p = int(round(self.pad * max(rgb.shape[:2])))
        image = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_REPLICATE) if p else rgb
        aligned, _, _ = align_face(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), keypoints + np.float32(p), size)
        return aligned

    def align_crop(self, image: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
        """image: (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA uint8 -> ((size, size, 3) uint8 RGB, found).

        found is False when no face was detected: the face is then ``crop_to_face`` (centre square, resized).
        """
        rgb = to_rgb(image)
        keypoints = self.keypoints(rgb)
        if keypoints is None:
            return crop_to_face(image, size), False
        return self.align(rgb, keypoints, size), True
