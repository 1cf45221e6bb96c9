"""One wrapper class per exported model. Each runs all faces of a frame as one batch.

Every ``__call__`` accepts N = 0 and then returns well-shaped empty arrays without calling ONNX Runtime.
Inputs are checked (a wrong shape or dtype is a programming error: ValueError); outputs are checked
against the contract (a model that declares dynamic axes but returns the wrong size: ModelError).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ofer_live import contracts as C
from ofer_live.errors import ModelError

log = logging.getLogger(__name__)


class OnnxModel:
    """An ONNX Runtime session plus the model's validated ``ofer_live`` metadata."""

    kind: str = ""

    def __init__(self, session: Any, metadata: dict[str, Any], path: Path, sha256: str | None = None) -> None:
        self._session = session
        self.metadata = dict(metadata)
        self.path = Path(path)
        self.sha256 = sha256
        self.face_size = int(metadata["face_size"])
        self.patch_grid = int(metadata["patch_grid"])
        self.latent_dim = int(metadata["latent_dim"])

    @property
    def provider(self) -> str:
        """The execution provider ONNX Runtime actually placed this session on."""
        return self.session.get_providers()[0]

    @property
    def session(self) -> Any:
        if self._session is None:
            raise RuntimeError(f"{self.path.name} is closed")
        return self._session

    def close(self) -> None:
        self._session = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path.name}, S={self.face_size}, G={self.patch_grid}, D={self.latent_dim})"

    # -- helpers -------------------------------------------------------------------------------------------
    def _faces(self, faces: np.ndarray, what: str = C.FACE) -> np.ndarray:
        faces = np.asarray(faces)
        S = self.face_size
        if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[1:] != (S, S, 3):
            raise ValueError(f"{self.kind}: '{what}' must be (N, {S}, {S}, 3) uint8, got {faces.shape} {faces.dtype}")
        return np.ascontiguousarray(faces)

    def _float(self, array: np.ndarray, shape: tuple[int, ...], what: str, n: int) -> np.ndarray:
        array = np.asarray(array)
        if array.ndim != len(shape) + 1 or array.shape[1:] != shape or array.shape[0] != n:
            raise ValueError(f"{self.kind}: '{what}' must be ({n}, {', '.join(map(str, shape))}), got {array.shape}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def _run(self, feeds: dict[str, np.ndarray], expected: dict[str, tuple[tuple[int, ...], type]]) -> list[np.ndarray]:
        outputs = self.session.run(list(expected), feeds)
        checked = []
        for (name, (shape, dtype)), value in zip(expected.items(), outputs, strict=True):
            value = np.asarray(value)
            if value.shape != shape:
                raise ModelError(f"{self.path}: output '{name}' has shape {value.shape}, expected {shape}")
            checked.append(value.astype(dtype, copy=False))
        return checked


class OcclusionModel(OnnxModel):
    """ViT-SVDD patch scorer: ``faces (N,S,S,3) uint8 RGB -> patch_score (N,G,G) float32`` (> threshold = occluded)."""

    kind = C.OCCLUSION

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """faces: (N, S, S, 3) uint8 RGB -> (N, G, G) float32."""
        faces = self._faces(faces)
        n, G = faces.shape[0], self.patch_grid
        if n == 0:
            return np.zeros((0, G, G), np.float32)
        (score,) = self._run({C.FACE: faces}, {C.PATCH_SCORE: ((n, G, G), np.float32)})
        return score


class ReconstructorModel(OnnxModel):
    """Hybrid ViT + CNN inpainter.

    ``faces (N,S,S,3) uint8, mask (N,G,G) float32 (1 = occluded) -> (reconstruction (N,S,S,3) uint8,
    latents (N,G*G,D) float32)``.
    """

    kind = C.RECONSTRUCTOR

    def __call__(self, faces: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """faces: (N, S, S, 3) uint8, mask: (N, G, G) bool/float -> ((N, S, S, 3) uint8, (N, G*G, D) float32)."""
        faces = self._faces(faces)
        n, S, G, D = faces.shape[0], self.face_size, self.patch_grid, self.latent_dim
        mask = self._float(mask, (G, G), C.MASK, n)
        if n == 0:
            return np.zeros((0, S, S, 3), np.uint8), np.zeros((0, G * G, D), np.float32)
        recon, latents = self._run(
            {C.FACE: faces, C.MASK: mask},
            {C.RECONSTRUCTION: ((n, S, S, 3), np.uint8), C.LATENTS: ((n, G * G, D), np.float32)},
        )
        return recon, latents


class ExpressionModel(OnnxModel):
    """ResNet-18 + CBAM FER net fed the reconstruction and the ViT latents.

    ``faces (N,S,S,3) uint8, latents (N,G*G,D) float32 -> (logits (N,7) float32, cam (N,G,G) float32 in [0,1])``.
    """

    kind = C.EXPRESSION

    def __call__(self, faces: np.ndarray, latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """faces: (N, S, S, 3) uint8, latents: (N, G*G, D) float32 -> ((N, 7) float32, (N, G, G) float32)."""
        faces = self._faces(faces)
        n, G, D = faces.shape[0], self.patch_grid, self.latent_dim
        latents = self._float(latents, (G * G, D), C.LATENTS, n)
        if n == 0:
            return np.zeros((0, C.NUM_CLASSES), np.float32), np.zeros((0, G, G), np.float32)
        logits, cam = self._run(
            {C.FACE: faces, C.LATENTS: latents},
            {C.LOGITS: ((n, C.NUM_CLASSES), np.float32), C.CAM: ((n, G, G), np.float32)},
        )
        return logits, cam


def softmax(logits: np.ndarray) -> np.ndarray:
    """logits: (N, K) float -> (N, K) float32 probabilities (rows sum to 1); (0, K) stays (0, K)."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.size == 0:
        return logits.reshape(logits.shape).astype(np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


MODEL_CLASSES: dict[str, type[OnnxModel]] = {
    C.OCCLUSION: OcclusionModel,
    C.RECONSTRUCTOR: ReconstructorModel,
    C.EXPRESSION: ExpressionModel,
}
