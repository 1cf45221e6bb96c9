"""The per-frame pipeline: detect -> align -> occlusion -> mask -> reconstruct -> expression.

``FramePipeline.process`` runs one frame. Several frames may be in ``process`` at once, each on its own thread
(``pipeline.frame_stream.FrameStream`` does this): the order-dependent steps, face finding with its tracker and
the per-track smoothing, take turns in ticket order, and only the three models run side by side (ONNX Runtime
sessions may be run from several threads at once). ``update_config`` may be called from any thread; the new
settings apply from the next frame on. Every stage is timed (ms) and the timings travel in the FrameResult.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ofer_live.config import AppConfig, PipelineConfig
from ofer_live.runtime.loader import Models, load_models
from ofer_live.runtime.models import softmax
from ofer_live.types import Face, FaceResult, FrameResult

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("detect", "align", "occlusion", "reconstruct", "expression", "total")
# PipelineConfig fields that the face finder is built from (a change rebuilds it on the processing thread).
_FINDER_FIELDS = ("min_face_px", "max_faces", "detection_confidence")


def occlusion_mask(patch_score: np.ndarray, threshold: float, sensitivity: float) -> np.ndarray:
    """patch_score: (N, G, G) float32 -> (N, G, G) bool, True where score > threshold / sensitivity.

    sensitivity > 1 marks more patches occluded, < 1 fewer; 0 marks none.
    """
    if sensitivity < 0:
        raise ValueError(f"sensitivity must be >= 0, got {sensitivity}")
    if sensitivity == 0:
        return np.zeros(patch_score.shape, dtype=bool)
    return patch_score > (threshold / sensitivity)


def to_luma(faces: np.ndarray) -> np.ndarray:
    """faces: (N, S, S, 3) uint8 RGB -> (N, S, S, 3) uint8, OpenCV's RGB2GRAY luma (ITU-R BT.601) on all three
    channels, so a face and a gray copy made with OpenCV give the models the same pixels."""
    import cv2

    if faces.size == 0:
        return faces
    gray = np.stack([cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2GRAY) for face in faces])
    return np.repeat(gray[..., None], 3, axis=-1)


def expression_with_direct_view(
    expression: Callable[..., Any],
    reconstruction: np.ndarray,
    direct: np.ndarray,
    latents: np.ndarray,
    flagged: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """reconstruction, direct (N, S, S, 3) uint8, latents (N, G*G, D), flagged (N,) bool ->
    (logits (N, 7), cam (N, G, G)).

    The FER net reads every reconstruction; for the flagged faces it also reads the face as it is (``direct``),
    in the same batch, and the two logits are averaged. The CAM is the reconstruction's. Unflagged faces cost
    one pass: their reconstruction is the face itself."""
    n = len(reconstruction)
    extra = np.flatnonzero(flagged)
    if not len(extra):
        return expression(reconstruction, latents)
    both, cam = expression(np.concatenate([reconstruction, direct[extra]]), np.concatenate([latents, latents[extra]]))
    logits = np.array(both[:n])
    logits[extra] = (logits[extra] + both[n:]) / 2.0
    return logits, cam[:n]


def _identity_face(aligned: np.ndarray) -> Face:
    """A Face for an already-aligned crop: box = the whole crop, identity transforms, track_id -1."""
    S = aligned.shape[0]
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    return Face(
        box=(0, 0, int(S), int(S)),
        keypoints=np.zeros((6, 2), np.float32),
        score=1.0,
        track_id=-1,
        aligned=aligned,
        frame_to_face=eye,
        face_to_frame=eye.copy(),
    )


class Turnstile:
    """Lets numbered callers through one at a time, in number order (0, 1, 2, ...).

    A caller that holds ticket k waits in ``turn(k)`` until every smaller ticket has passed. Each ticket must pass
    exactly once, even when its work fails (``turn`` always lets the next one through on exit).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0

    @contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._next == ticket)
        try:
            yield
        finally:
            with self._cond:
                self._next += 1
                self._cond.notify_all()


@runtime_checkable
class Finder(Protocol):
    """What the pipeline needs of a face finder (``face.FaceFinder``, or a stand-in in tests)."""

    def find(self, frame_bgr: np.ndarray) -> tuple[list[Face], list[tuple[int, int, int, int]]]:
        """frame_bgr: (H, W, 3) uint8 -> (aligned faces, boxes of faces too small to analyse)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TwoStageFinder(Finder, Protocol):
    """A finder whose detection and alignment can be timed apart (``face.FaceFinder``)."""

    detector: Any

    def from_detections(
        self, frame_bgr: np.ndarray, detections: Any
    ) -> tuple[list[Face], list[tuple[int, int, int, int]]]: ...


class FramePipeline:
    """models + optional face finder + PipelineConfig -> FrameResult per frame.

    finder: a ``Finder`` (``face.FaceFinder``); None for a pipeline that only serves ``process_aligned``.
    """

    def __init__(
        self,
        models: Models,
        finder: Finder | None = None,
        config: PipelineConfig | None = None,
        *,
        finder_factory: Callable[[PipelineConfig], Finder] | None = None,
    ) -> None:
        from ofer_live.pipeline.smoothing import ProbabilitySmoother

        self.models = models
        self.finder = finder
        self._finder_factory = finder_factory
        self._config = config or PipelineConfig()  # validated by PipelineConfig itself
        self._lock = threading.Lock()
        self._finder_config = self._config  # the settings the face finder was last built for
        self._smoother_config = self._config  # the settings the smoother was last set up for
        self._smoother = ProbabilitySmoother(self._config.smoothing_alpha)
        self._closed = False
        # Frames in process at once take turns in ticket order for the steps whose state runs across frames.
        self._tickets = itertools.count()
        self._ticket_lock = threading.Lock()
        self._find_turns = Turnstile()  # the face finder (tracker) and settings
        self._finish_turns = Turnstile()  # the per-track smoothing

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, app_config: AppConfig | None = None, *, detect: bool = True, track: bool = True) -> FramePipeline:
        """Load the models and (with ``detect``) a FaceFinder sized to them; the calling thread owns both.

        track=False gives every face track_id -1 (still images).
        """
        app_config = app_config or AppConfig()
        models = load_models(app_config.runtime)
        factory = None
        finder = None
        try:
            if detect:
                from ofer_live.face.finder import FaceFinder

                def factory(cfg: PipelineConfig) -> Finder:
                    return FaceFinder(
                        face_size=models.face_size,
                        min_face_px=cfg.min_face_px,
                        max_faces=cfg.max_faces,
                        min_confidence=cfg.detection_confidence,
                        track=track,
                    )

                finder = factory(app_config.pipeline)
            return cls(models, finder, app_config.pipeline, finder_factory=factory)
        except BaseException:
            if finder is not None:
                finder.close()
            models.close()
            raise

    # -- settings ----------------------------------------------------------------------------------------
    @property
    def config(self) -> PipelineConfig:
        with self._lock:
            return self._config

    def update_config(self, config: PipelineConfig | None = None, **changes: Any) -> PipelineConfig:
        """Replace the settings (whole config and/or field changes); applied from the next frame. Any thread."""
        with self._lock:
            new = dataclasses.replace(config or self._config, **changes)  # UserError on a bad value
            self._config = new
            return new

    def _apply_config(self) -> PipelineConfig:
        """Take the newest settings for the next frame: rebuild the finder if its settings changed. Runs in the
        frame's find turn. -> the settings that frame uses."""
        with self._lock:
            config = self._config
        old, self._finder_config = self._finder_config, config
        if config is not old and self._finder_factory is not None:
            if any(getattr(config, f) != getattr(old, f) for f in _FINDER_FIELDS):
                if self.finder is not None:
                    self.finder.close()
                self.finder = self._finder_factory(config)
        return config

    def _apply_smoother_config(self, config: PipelineConfig) -> None:
        """Reset the smoother when smoothing was turned off or its weight changed. Runs in the frame's finish turn."""
        old, self._smoother_config = self._smoother_config, config
        if config is not old and (not config.smoothing or config.smoothing_alpha != old.smoothing_alpha):
            self._smoother.reset()
            self._smoother.alpha = config.smoothing_alpha

    def take_ticket(self) -> int:
        """The next frame's place in line (``process(..., ticket=)``); every ticket taken must be processed."""
        with self._ticket_lock:
            return next(self._tickets)

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider actually used."""
        return self.models.provider

    @property
    def face_size(self) -> int:
        return self.models.face_size

    @property
    def threshold(self) -> float:
        return self.models.threshold

    @property
    def mask_threshold(self) -> float:
        """The patch-score cut in use: the model's threshold over the sensitivity (inf at sensitivity 0)."""
        sensitivity = self.config.sensitivity
        return self.models.threshold / sensitivity if sensitivity > 0 else float("inf")

    # -- processing --------------------------------------------------------------------------------------
    def _infer(
        self,
        aligned: np.ndarray,
        config: PipelineConfig,
        timings: dict[str, float],
        given_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """aligned: (N, S, S, 3) uint8 RGB -> (patch_score (N,G,G) f32, mask (N,G,G) bool,
        reconstruction (N,S,S,3) u8, probs (N,7) f32, cam (N,G,G) f32). All faces in one batch per model.

        given_mask: (N, G, G) replaces the detector's mask (the detector is not run; patch_score is zeros)."""
        m = self.models
        t = time.perf_counter()
        original = aligned
        if config.gray_faces:
            aligned = to_luma(aligned)
        if given_mask is None:
            score = m.occlusion(aligned)
            mask = occlusion_mask(score, m.threshold, config.sensitivity)
        else:
            mask = np.asarray(given_mask) > 0.5
            score = np.zeros(mask.shape, np.float32)
        t1 = time.perf_counter()
        timings["occlusion"] = (t1 - t) * 1000.0
        if config.use_reconstruction:
            recon, latents = m.reconstructor(aligned, mask.astype(np.float32))
            fer_input = recon
        else:  # ablation: the FER net sees the face as it is, latents of the unmasked face
            _, latents = m.reconstructor(aligned, np.zeros(mask.shape, np.float32))
            recon, fer_input = original, aligned
        t2 = time.perf_counter()
        timings["reconstruct"] = (t2 - t1) * 1000.0
        direct_view = config.use_reconstruction and config.direct_view
        flagged = mask.any(axis=(1, 2)) & direct_view
        logits, cam = expression_with_direct_view(m.expression, fer_input, aligned, latents, flagged)
        probs = softmax(logits)
        timings["expression"] = (time.perf_counter() - t2) * 1000.0
        return score, mask, recon, probs, cam

    def _results(
        self,
        faces: Sequence[Face],
        outputs: tuple[np.ndarray, ...],
        config: PipelineConfig,
    ) -> tuple[FaceResult, ...]:
        score, mask, recon, probs, cam = outputs
        results = []
        for i, face in enumerate(faces):
            p = probs[i]
            if config.smoothing and face.track_id >= 0:
                p = self._smoother.apply(face.track_id, p)
            results.append(
                FaceResult(
                    face=face,
                    patch_score=score[i],
                    mask=mask[i],
                    cam=cam[i],
                    reconstruction=recon[i],
                    probs=p,
                )
            )
        return tuple(results)

    def _stack(self, faces: Sequence[Face]) -> np.ndarray:
        """faces -> (N, S, S, 3) uint8 RGB batch ((0, S, S, 3) when empty)."""
        S = self.models.face_size
        if not faces:
            return np.zeros((0, S, S, 3), np.uint8)
        return np.ascontiguousarray(np.stack([f.aligned for f in faces]), dtype=np.uint8)

    def _find(self, frame_bgr: np.ndarray, timings: dict[str, float]) -> tuple[list[Face], list, PipelineConfig]:
        """frame_bgr: (H, W, 3) uint8 BGR -> (aligned faces, boxes of faces too small, the frame's settings)."""
        config = self._apply_config()
        start = time.perf_counter()
        finder = self.finder
        if finder is None:
            raise RuntimeError("this FramePipeline has no face finder; use process_aligned")
        if isinstance(finder, TwoStageFinder):  # face.FaceFinder: time both halves
            detections = finder.detector.detect(frame_bgr)
            t_detected = time.perf_counter()
            faces, small = finder.from_detections(frame_bgr, detections)
            timings["detect"] = (t_detected - start) * 1000.0
            timings["align"] = (time.perf_counter() - t_detected) * 1000.0
        else:  # any other finder: one call, counted as detection
            faces, small = finder.find(frame_bgr)
            timings["detect"] = (time.perf_counter() - start) * 1000.0
        return faces, small, config

    def process(
        self, frame_bgr: np.ndarray, frame_index: int = 0, time_s: float = 0.0, *, ticket: int | None = None
    ) -> FrameResult:
        """frame_bgr: (H, W, 3) uint8 BGR -> FrameResult with one FaceResult per face and timings_ms.

        ticket: this frame's place in line from ``take_ticket()`` when several frames are processed at once
        (``FrameStream``); None takes the next one. Face finding and smoothing follow ticket order; the
        "total" timing includes any wait for an earlier frame's turn.
        """
        if ticket is None:
            ticket = self.take_ticket()
        timings = dict.fromkeys(STAGES, 0.0)
        start = time.perf_counter()
        failure: BaseException | None = None
        try:
            with self._find_turns.turn(ticket):
                if self._closed:
                    raise RuntimeError("FramePipeline is closed")
                frame_bgr = np.asarray(frame_bgr)
                if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
                    raise ValueError(f"frame must be (H, W, 3) uint8 BGR, got {frame_bgr.shape} {frame_bgr.dtype}")
                faces, small, config = self._find(frame_bgr, timings)
            outputs = self._infer(self._stack(faces), config, timings)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after this frame's finish turn
            failure = exc
        with self._finish_turns.turn(ticket):  # always taken, so that later frames are never stuck behind this one
            if failure is not None:
                raise failure
            self._apply_smoother_config(config)
            results = self._results(faces, outputs, config)
            if config.smoothing:
                self._smoother.tick()
        timings["total"] = (time.perf_counter() - start) * 1000.0
        return FrameResult(
            frame_index=int(frame_index),
            time_s=float(time_s),
            frame_shape=(int(frame_bgr.shape[0]), int(frame_bgr.shape[1])),
            faces=results,
            small_faces=tuple(tuple(int(v) for v in box) for box in small),
            timings_ms=timings,
        )

    def process_aligned(
        self,
        faces_rgb: np.ndarray | Sequence[np.ndarray],
        *,
        mask: np.ndarray | None = None,
        use_reconstruction: bool | None = None,
        direct_view: bool | None = None,
    ) -> list[FaceResult]:
        """faces_rgb: (N, S, S, 3) uint8 RGB pre-cropped faces -> N FaceResults (no detection, no smoothing).

        Each result's ``face`` has box (0, 0, S, S), identity transforms and track_id -1. The keywords are the
        ablations that ``ofer-live eval`` measures: ``mask`` (N, G, G), 1 = occluded, replaces the detector's
        mask (the "oracle"; patch scores are then zeros); ``use_reconstruction`` and ``direct_view`` override the
        settings of the same names for this call (``use_reconstruction=False``: the FER net sees the face as it is,
        with the latents of the unmasked face; ``direct_view=False``: the FER net reads only the reconstruction).
        """
        if self._closed:
            raise RuntimeError("FramePipeline is closed")
        S, G = self.models.face_size, self.models.patch_grid
        batch = np.zeros((0, S, S, 3), np.uint8) if len(faces_rgb) == 0 else np.stack(list(faces_rgb))
        if batch.dtype != np.uint8 or batch.shape[1:] != (S, S, 3):
            raise ValueError(f"faces must be (N, {S}, {S}, 3) uint8 RGB, got {batch.shape} {batch.dtype}")
        if mask is not None and np.shape(mask) != (len(batch), G, G):
            raise ValueError(f"mask must be ({len(batch)}, {G}, {G}), got {np.shape(mask)}")
        config = dataclasses.replace(self.config, smoothing=False)
        if use_reconstruction is not None:
            config = dataclasses.replace(config, use_reconstruction=use_reconstruction)
        if direct_view is not None:
            config = dataclasses.replace(config, direct_view=direct_view)
        faces = [_identity_face(face) for face in batch]
        outputs = self._infer(batch, config, {}, given_mask=mask)
        return list(self._results(faces, outputs, config))

    def reset(self) -> None:
        """Forget face tracks and smoothing state (call when the source changes), with no frame in process."""
        self._smoother.reset()
        reset = getattr(self.finder, "reset", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        """Close the finder and the model sessions (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.finder is not None:
            self.finder.close()
        self.models.close()

    def __enter__(self) -> FramePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
