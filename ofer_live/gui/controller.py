"""AppController: the GUI-thread object that runs the workers and turns their output into what the window shows.

It lives on the GUI thread. Worker signals are connected only to its ``@Slot`` methods, so Qt queues every
call onto the GUI thread; numpy -> QImage conversion happens here. On every preview frame it draws the
newest overlays (``render.draw``) and emits a QImage; on every result it updates the selected face's
panel data and its 30-second probability history.

Shutdown order (``shutdown()``): stop capture, close the mailbox, stop inference, join both threads, then
stop the recorder (it drains its FIFO and closes its files) and join it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QDeadlineTimer, QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from ofer_live.config import AppConfig, PipelineConfig, RenderOptions, layered
from ofer_live.errors import UserError
from ofer_live.gui.images import bgr_to_qimage
from ofer_live.gui.settings import TOGGLE_DEFAULTS, AppSettings, StoredSettings
from ofer_live.gui.sources import (
    AUTO,
    DEMO,
    default_output_dir,
    describe_source,
    normalize_source,
    timestamped_stem,
)
from ofer_live.gui.workers import (
    CapturedFrame,
    CaptureWorker,
    InferenceOutput,
    InferenceWorker,
    OverlayState,
    RecorderWorker,
    SourceInfo,
)
from ofer_live.io.paths import check_output_dir
from ofer_live.types import FaceResult

log = logging.getLogger(__name__)

HISTORY_S = 30.0
SENSITIVITY_RANGE = (0.25, 4.0)
# Threads that refused to stop in time are kept referenced here: destroying a running QThread aborts.
_STUCK_THREADS: list[Any] = []


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        self._times.clear()


@dataclass(frozen=True)
class Status:
    """What the status bar shows."""

    provider: str | None
    display_fps: float
    inference_fps: float
    latency_ms: float | None
    dropped: int
    source: str | None
    paused: bool


@dataclass(frozen=True)
class RecordingStatus:
    path: Path
    jsonl: Path
    clean: Path | None
    frames: int
    elapsed_s: float
    fps: float


@dataclass(frozen=True, eq=False)
class FaceView:
    """The selected face, for the side panel.

    times: (T,) seconds and probs: (T, 7) float32, the face's history over the last 30 s; now: the newest time.
    """

    face: FaceResult | None
    index: int
    count: int
    track_id: int
    times: np.ndarray
    probs: np.ndarray
    now: float
    small_faces: int


def sensitivity_from_slider(value: int) -> float:
    """Slider 0..100 (50 = 1.0) -> sensitivity 0.25..4 on a log scale."""
    lo, hi = SENSITIVITY_RANGE
    return float(lo * (hi / lo) ** (min(max(value, 0), 100) / 100.0))


def slider_from_sensitivity(sensitivity: float) -> int:
    lo, hi = SENSITIVITY_RANGE
    s = min(max(float(sensitivity), lo), hi)
    return int(round(100.0 * np.log(s / lo) / np.log(hi / lo)))


class AppController(QObject):
    """Owns the workers and the app state; the window calls its methods and listens to its signals."""

    image_ready = Signal(QImage)  # the newest preview frame with overlays
    face_changed = Signal(object)  # FaceView
    message = Signal(str, str, bool)  # level ("info" | "warning" | "error"), text, offer retry
    message_cleared = Signal()
    status_message = Signal(str)  # transient status-bar text
    status_changed = Signal(object)  # Status
    recording_changed = Signal(object)  # RecordingStatus | None
    source_changed = Signal(object)  # SourceInfo (the source is open)
    source_changing = Signal(str)  # spec being opened (the preview is cleared)
    paused_changed = Signal(bool)
    settings_changed = Signal()  # toggles / sensitivity / output folder changed (window syncs its controls)
    virtual_camera_changed = Signal(bool)  # the virtual camera started (True) or stopped (False)

    def __init__(
        self,
        config: AppConfig,
        settings: AppSettings,
        *,
        source_opener: Callable[[str], Any] | None = None,
        pipeline_factory: Callable[[AppConfig], Any] | None = None,
        pace: bool = True,
        pipeline_flags: Mapping[str, Any] | None = None,
        draw: Callable[..., np.ndarray] | None = None,
        virtual_camera_opener: Callable[[int, int, float], Any] | None = None,
        virtual_camera_size: tuple[int, int] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if draw is None:
            from ofer_live.render.overlay import draw

        self._draw = draw
        self._config = config
        self._settings = settings
        self._opener = source_opener
        self._factory = pipeline_factory
        self._pace = pace
        self.stored: StoredSettings = settings.load()
        self.toggles = self._initial_toggles(config)
        self.pipeline_config: PipelineConfig = self._initial_pipeline_config(config, pipeline_flags)
        self.render_options: RenderOptions = replace(
            config.render,
            grid=self.toggles["grid"],
            reconstruction=self.toggles["reconstruction"],
            cam=self.toggles["cam"],
            bars=self.toggles["bars"],
            fps=False,  # the status bar shows the rates
        )
        self._overlay = OverlayState(self.render_options)
        self._settings_timer = QTimer(self)
        self._settings_timer.setSingleShot(True)
        self._settings_timer.setInterval(500)
        self._settings_timer.timeout.connect(self._write_settings)
        self._mailbox: Any = None
        self._capture: CaptureWorker | None = None
        self._inference: InferenceWorker | None = None
        self._recorder: RecorderWorker | None = None
        self._generation = 0
        self.requested_source: str | None = None
        self._remember_source = False
        self._fallback_to_auto = False
        self.source_info: SourceInfo | None = None
        self.source_error: str | None = None
        self.pipeline_error: str | None = None
        self.provider: str | None = None
        self.current_frame: CapturedFrame | None = None
        self.current_output: InferenceOutput | None = None
        self.annotated: np.ndarray | None = None  # (H, W, 3) uint8 BGR, the last preview frame with overlays
        self.selected_track: int | None = None
        self._history: dict[int, deque[tuple[float, np.ndarray]]] = {}
        self.paused = False
        self.frames_displayed = 0
        self.results_received = 0
        self.latency_ms: float | None = None
        self._display_rate = RateMeter()
        self._inference_rate = RateMeter()
        self._consecutive_errors = 0
        self._record_when_open: Path | None = None
        self.last_recording: RecordingStatus | None = None
        self._shut_down = False
        self._vcam: Any = None  # io.virtual_camera.VirtualCameraSink while the virtual camera is on
        self._vcam_opener = virtual_camera_opener
        self._vcam_size = virtual_camera_size
        self.virtual_camera_mode = "annotated"  # io.virtual_camera.SEND_MODES
        self._start_vcam_when_open = False
        self.demo_captions = False  # --demo-loop: captions on the demo clip
        self._demo_clip: Any = None
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(500)
        self._status_timer.timeout.connect(self._emit_status)

    def _initial_toggles(self, config: AppConfig) -> dict[str, bool]:
        """The overlay and smoothing check boxes: the saved ones, else the config's."""
        toggles = dict(TOGGLE_DEFAULTS)
        if self.stored.toggles is None:
            toggles.update(
                grid=config.render.grid,
                reconstruction=config.render.reconstruction,
                cam=config.render.cam,
                bars=config.render.bars,
                smoothing=config.pipeline.smoothing or TOGGLE_DEFAULTS["smoothing"],
            )
        else:
            toggles.update(self.stored.toggles)
        return toggles

    def _initial_pipeline_config(self, config: AppConfig, flags: Mapping[str, Any] | None) -> PipelineConfig:
        """defaults < TOML (in ``config``) < saved settings < command-line flags (``config.layered``)."""
        saved = {"sensitivity": self.stored.sensitivity, "smoothing": self.toggles["smoothing"]}
        try:
            return layered(config.pipeline, saved, flags)
        except UserError as exc:  # e.g. a hand-edited settings file: the saved value is dropped, not the app
            log.warning("ignoring a saved setting: %s", exc)
            self.stored.sensitivity = None
            return layered(config.pipeline, {"smoothing": self.toggles["smoothing"]}, flags)

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self, source: str | None = None, record_dir: Path | None = None) -> None:
        """Start inference and capture. ``source`` None: the remembered source, else ``auto``."""
        self._record_when_open = Path(record_dir) if record_dir is not None else None
        self._start_inference()
        if source is not None:
            self.set_source(source, remember=True)
        elif self.stored.source and self.stored.source != AUTO:
            self._fallback_to_auto = True
            self.set_source(self.stored.source, remember=True)
        else:
            self.set_source(AUTO, remember=False)
        self._status_timer.start()

    def shutdown(self) -> None:
        """Stop everything in the fixed order; idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self._status_timer.stop()
        self.stop_virtual_camera()
        capture, inference = self._capture, self._inference
        if capture is not None:
            capture.stop()
        if self._mailbox is not None:
            self._mailbox.close()
        if inference is not None:
            inference.stop()
        for thread in (capture, inference):
            self._join(thread, 10.0)
        self._finish_recording(reason=None)
        self._capture = None
        self._inference = None
        self._settings_timer.stop()
        self._write_settings()

    @staticmethod
    def _join(thread: Any, timeout_s: float) -> None:
        if thread is None:
            return
        if not thread.wait(QDeadlineTimer(int(timeout_s * 1000))):
            log.error("thread %s did not stop within %.0f s", thread.objectName(), timeout_s)
            _STUCK_THREADS.append(thread)

    def _new_mailbox(self) -> Any:
        from ofer_live.pipeline import LatestSlot

        return LatestSlot()

    def _start_inference(self) -> None:
        if self._mailbox is None:
            self._mailbox = self._new_mailbox()
        config = replace(self._config, pipeline=self.pipeline_config)
        worker = InferenceWorker(config, self._mailbox, self._overlay, self._factory)
        worker.ready.connect(self.on_pipeline_ready)
        worker.result_ready.connect(self.on_result_ready)
        worker.frame_error.connect(self.on_frame_error)
        worker.failed.connect(self.on_pipeline_failed)
        self._inference = worker
        self.pipeline_error = None
        worker.start()

    # ---------------------------------------------------------------------------------------- source
    def set_source(self, spec: str, remember: bool = True) -> None:
        """Switch to ``spec`` (camera:N, demo, a file path, or auto). Stops a running recording."""
        if self._shut_down:
            return
        spec = normalize_source(spec)
        self.message_cleared.emit()
        if self._recorder is not None:
            self._finish_recording(reason="the source changed")
        old = self._capture
        if old is not None:
            old.stop()
            self._join(old, 10.0)
        self._generation += 1
        self.requested_source = spec
        self._remember_source = remember and spec != AUTO
        self.source_info = None
        self.source_error = None
        self.current_frame = None
        self.current_output = None
        self.annotated = None
        self.selected_track = None
        self._history.clear()
        self._display_rate.reset()
        self._inference_rate.reset()
        self.latency_ms = None
        self._overlay.set_output(None)
        worker = CaptureWorker(spec, self._generation, self._mailbox, self._overlay, self._opener, pace=self._pace)
        worker.opened.connect(self.on_source_opened)
        worker.frame_ready.connect(self.on_frame_ready)
        worker.notice.connect(self.on_source_notice)
        worker.failed.connect(self.on_source_failed)
        worker.set_paused(self.paused)
        self._capture = worker
        self.source_changing.emit(spec)
        self.face_changed.emit(self._face_view())
        worker.start()

    def retry(self) -> None:
        """Retry what failed: the source, the models, or both."""
        if self._shut_down:
            return
        if self._inference is None or not self._inference.isRunning():
            if self._inference is not None:
                self._join(self._inference, 5.0)
            self._start_inference()
        if self._capture is None or not self._capture.isRunning() or self.source_error:
            self.set_source(self.requested_source or AUTO, remember=self._remember_source)
        self.message_cleared.emit()

    @Slot(object)
    def on_source_opened(self, info: SourceInfo) -> None:
        if info.generation != self._generation:
            return
        self.source_info = info
        self.source_error = None
        self._fallback_to_auto = False
        if self._remember_source:
            self.stored.source = info.requested
            self._save_settings()
        self._demo_clip = self._demo_timeline(info)
        self.source_changed.emit(info)
        if self._record_when_open is not None:
            directory, self._record_when_open = self._record_when_open, None
            self.start_recording(directory)
        if self._start_vcam_when_open:
            self._start_vcam_when_open = False
            self.start_virtual_camera()

    @Slot(int, str)
    def on_source_notice(self, generation: int, text: str) -> None:
        if generation == self._generation:
            self.message.emit("info", text, False)

    @Slot(int, str)
    def on_source_failed(self, generation: int, text: str) -> None:
        if generation != self._generation:
            return
        log.warning("source failed: %s", text)
        self.source_error = text
        if self._recorder is not None:
            self._finish_recording(reason="the source failed")
        if self._fallback_to_auto:
            self._fallback_to_auto = False
            self.set_source(AUTO, remember=False)
            self.message.emit(
                "warning",
                f"Could not open the last source ({text}); using the first working camera or the demo.",
                False,
            )
            return
        self.message.emit("error", f"{text} — Retry, or choose another source.", True)

    # ------------------------------------------------------------------------------------ frames
    @Slot()
    def on_frame_ready(self) -> None:
        capture = self._capture
        if capture is None:
            return
        frame = capture.take_frame()
        if frame is None or frame.generation != self._generation:
            return
        self.current_frame = frame
        self._render_current()
        self.frames_displayed += 1
        self._display_rate.tick()

    def _render_current(self) -> None:
        frame = self.current_frame
        if frame is None:
            return
        output = self.current_output
        image = frame.image
        if output is not None and tuple(output.result.frame_shape) == tuple(image.shape[:2]):
            try:
                image = self._draw(image, output.result, self.render_options, selected_track_id=self.selected_track)
            except Exception as exc:  # noqa: BLE001 - a drawing bug must not freeze the preview
                log.warning("drawing the overlays failed: %s", exc, exc_info=True)
                image = frame.image
        if self.demo_captions and self._demo_clip is not None:
            from ofer_live.render.overlay import draw_caption

            index = frame.source_index % self._demo_clip.n_frames  # the demo source draws frame(index % n)
            image = draw_caption(image, self._demo_clip.caption(index), self.render_options.large_text)
        self.annotated = image
        if self._vcam is not None:
            self._send_to_virtual_camera(frame, image, output)
        self.image_ready.emit(bgr_to_qimage(image))

    # ------------------------------------------------------------------------------------ results
    @Slot(str)
    def on_pipeline_ready(self, provider: str) -> None:
        self.provider = provider
        self.pipeline_error = None
        self._emit_status()

    @Slot()
    def on_result_ready(self) -> None:
        inference = self._inference
        if inference is None:
            return
        output = inference.take_output()
        if output is None or output.generation != self._generation:
            return
        self.current_output = output
        self.results_received += 1
        self._consecutive_errors = 0
        self._inference_rate.tick()
        self.latency_ms = output.latency_ms
        self._update_history(output)
        self.face_changed.emit(self._face_view())
        if self.paused:
            self._render_current()

    @Slot(str)
    def on_frame_error(self, text: str) -> None:
        self._consecutive_errors += 1
        self.status_message.emit(text)
        if self._consecutive_errors == 10:
            self.message.emit("warning", f"Analysis keeps failing: {text}", False)

    @Slot(str)
    def on_pipeline_failed(self, text: str) -> None:
        self.pipeline_error = text
        self.provider = None
        log.warning("pipeline failed: %s", text)
        self.face_changed.emit(self._face_view())
        self.message.emit(
            "error",
            f"Analysis is off: {text}. The video plays without overlays; fix the models (--models DIR) and Retry.",
            True,
        )

    def _update_history(self, output: InferenceOutput) -> None:
        result = output.result
        now = float(result.time_s)
        for i, face in enumerate(result.faces):
            track = face.face.track_id if face.face.track_id >= 0 else -1 - i
            self._history.setdefault(track, deque()).append((now, np.asarray(face.probs, np.float32).copy()))
        for track in list(self._history):
            series = self._history[track]
            while series and (now - series[0][0] > HISTORY_S or series[0][0] > now):
                series.popleft()
            if not series:
                del self._history[track]

    def _selected(self) -> tuple[int, FaceResult | None]:
        output = self.current_output
        if output is None or not output.result.faces:
            return -1, None
        faces = output.result.faces
        for i, face in enumerate(faces):
            if self.selected_track is not None and face.face.track_id == self.selected_track:
                return i, face
        areas = [f.face.box[2] * f.face.box[3] for f in faces]
        i = int(np.argmax(areas))
        self.selected_track = faces[i].face.track_id
        return i, faces[i]

    def _face_view(self) -> FaceView:
        index, face = self._selected()
        output = self.current_output
        track = face.face.track_id if face is not None else -1
        key = track if track >= 0 else -1 - index
        series = self._history.get(key, ()) if face is not None else ()
        times = np.array([t for t, _ in series], np.float64)
        probs = np.array([p for _, p in series], np.float32).reshape(-1, 7)
        return FaceView(
            face=face,
            index=index,
            count=len(output.result.faces) if output is not None else 0,
            track_id=track,
            times=times,
            probs=probs,
            now=float(output.result.time_s) if output is not None else 0.0,
            small_faces=len(output.result.small_faces) if output is not None else 0,
        )

    @Slot(float, float)
    def select_face_at(self, x: float, y: float) -> None:
        """Select the face whose box contains the frame point (x, y)."""
        output = self.current_output
        if output is None:
            return
        hits = [
            f
            for f in output.result.faces
            if f.face.box[0] <= x <= f.face.box[0] + f.face.box[2]
            and f.face.box[1] <= y <= f.face.box[1] + f.face.box[3]
        ]
        if hits:
            self.selected_track = min(hits, key=lambda f: f.face.box[2] * f.face.box[3]).face.track_id
            self.face_changed.emit(self._face_view())

    # ------------------------------------------------------------------------------------ controls
    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if self._capture is not None:
            self._capture.set_paused(paused)
        self.paused_changed.emit(paused)
        self._emit_status()

    def toggle_pause(self) -> None:
        self.set_paused(not self.paused)

    def step(self) -> None:
        """Show exactly one more frame (pauses first)."""
        self.set_paused(True)
        if self._capture is not None:
            self._capture.step()

    def set_sensitivity(self, sensitivity: float) -> int:
        """Scale the SVDD threshold live; returns the config version the next results will carry."""
        self.pipeline_config = replace(self.pipeline_config, sensitivity=float(sensitivity))  # validated there
        self.stored.sensitivity = sensitivity
        self._save_settings()
        return self._push_pipeline_config()

    def set_toggle(self, name: str, on: bool) -> int | None:
        """grid / reconstruction / cam / bars (drawing) or smoothing (pipeline). Returns a config version for
        smoothing, else None (the preview is redrawn at once)."""
        if name not in TOGGLE_DEFAULTS:
            raise KeyError(name)
        self.toggles[name] = bool(on)
        self.stored.toggles = dict(self.toggles)
        self._save_settings()
        if name == "smoothing":
            self.pipeline_config = replace(self.pipeline_config, smoothing=bool(on))
            return self._push_pipeline_config()
        self.render_options = replace(self.render_options, **{name: bool(on)})
        self._overlay.options = self.render_options
        self._render_current()
        self.face_changed.emit(self._face_view())
        return None

    def set_large_text(self, large: bool) -> None:
        self.render_options = replace(self.render_options, large_text=large)
        self._overlay.options = self.render_options
        self._render_current()

    @property
    def config_version(self) -> int:
        return self._inference.config_version if self._inference is not None else 0

    def _push_pipeline_config(self) -> int:
        self.settings_changed.emit()
        if self._inference is None:
            return 0
        version = self._inference.set_pipeline_config(self.pipeline_config)
        # Paused: analyse the frame on screen again so the change is visible at once.
        if self.paused and self._capture is not None and not self._shut_down:
            self._capture.reanalyse()
        return version

    # ------------------------------------------------------------------------------------ output
    @property
    def output_dir(self) -> Path:
        return Path(self.stored.output_dir) if self.stored.output_dir else default_output_dir()

    def set_output_dir(self, directory: str | Path) -> bool:
        try:
            path = check_output_dir(directory)
        except UserError as exc:
            self.message.emit("error", f"Cannot use this output folder: {exc}", False)
            return False
        self.stored.output_dir = str(path)
        self._save_settings()
        self.settings_changed.emit()
        return True

    def set_save_clean(self, on: bool) -> None:
        self.stored.save_clean = bool(on)
        self._save_settings()

    def snapshot(self, directory: str | Path | None = None) -> Path | None:
        """Save the preview frame with its overlays as a PNG; returns the path (None on failure)."""
        import cv2

        if self.annotated is None:
            self.status_message.emit("No frame to save yet.")
            return None
        try:
            out_dir = check_output_dir(directory if directory is not None else self.output_dir)
        except UserError as exc:
            self.message.emit("error", f"Cannot save the snapshot: {exc}", False)
            return None
        path = out_dir / f"{timestamped_stem('ofer_live_snapshot', out_dir)}.png"
        if not cv2.imwrite(str(path), self.annotated):
            self.message.emit("error", f"Cannot save the snapshot: writing {path} failed", False)
            return None
        self.status_message.emit(f"Snapshot saved: {path}")
        self.message.emit("info", f"Snapshot saved: {path}", False)
        return path

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    @property
    def recorder(self) -> RecorderWorker | None:
        return self._recorder

    def start_recording(self, directory: str | Path | None = None) -> bool:
        """Start recording into ``directory`` (default: the output folder). Refuses an unwritable folder."""
        if self._recorder is not None:
            return True
        try:
            out_dir = check_output_dir(directory if directory is not None else self.output_dir)
        except UserError as exc:
            self.message.emit("error", f"Cannot record: {exc}", False)
            return False
        if directory is not None:
            self.stored.output_dir = str(out_dir)
            self._save_settings()
            self.settings_changed.emit()
        info, capture = self.source_info, self._capture
        if info is None or capture is None or not capture.isRunning():
            if capture is not None and capture.isRunning():
                self._record_when_open = out_dir  # starts as soon as the source is open
                return True
            self.message.emit("error", "Cannot record: no source is playing.", False)
            return False
        frame = self.current_frame
        if frame is not None:
            size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
        else:
            size = info.size
        if size[0] <= 0 or size[1] <= 0:
            self._record_when_open = out_dir
            return True
        try:
            recorder = RecorderWorker.open(
                out_dir, timestamped_stem("ofer_live", out_dir), info.fps, size, save_clean=self.stored.save_clean
            )
        except UserError as exc:
            self.message.emit("error", f"Cannot record: {exc}", False)
            return False
        except Exception as exc:  # noqa: BLE001 - an unexpected failure must not take the app down
            log.exception("could not start the recording")
            self.message.emit("error", f"Cannot record: {type(exc).__name__}: {exc}", False)
            return False
        recorder.failed.connect(self.on_recorder_failed)
        self._recorder = recorder
        recorder.start()
        capture.set_recorder(recorder)
        self.status_message.emit(f"Recording to {recorder.paths.video}")
        self.recording_changed.emit(self._recording_status())
        return True

    def stop_recording(self) -> RecordingStatus | None:
        """Stop, finish writing and close the files; returns the final status."""
        return self._finish_recording(reason=None)

    def toggle_recording(self) -> None:
        if self._recorder is None:
            self.start_recording()
        else:
            self.stop_recording()

    @Slot(str)
    def on_recorder_failed(self, text: str) -> None:
        self._finish_recording(reason=text, failed=True)

    def _finish_recording(self, reason: str | None, failed: bool = False) -> RecordingStatus | None:
        recorder = self._recorder
        if recorder is None:
            return None
        self._recorder = None
        if self._capture is not None:
            self._capture.set_recorder(None)
        recorder.stop()
        self._join(recorder, 30.0)
        status = RecordingStatus(
            path=recorder.paths.video,
            jsonl=recorder.paths.jsonl,
            clean=recorder.paths.clean,
            frames=recorder.frames_written,
            elapsed_s=recorder.elapsed_s,
            fps=recorder.fps,
        )
        self.last_recording = status
        summary = f"{status.frames} frames, {status.elapsed_s:.1f} s: {status.path}"
        if failed:
            self.message.emit("error", f"Recording stopped ({reason}). Saved {summary}", False)
        elif reason:
            self.message.emit("warning", f"Recording stopped because {reason}. Saved {summary}", False)
        elif not self._shut_down:
            self.message.emit("info", f"Recording saved ({summary})", False)
        self.recording_changed.emit(None)
        return status

    def _recording_status(self) -> RecordingStatus | None:
        rec = self._recorder
        if rec is None:
            return None
        return RecordingStatus(
            rec.paths.video, rec.paths.jsonl, rec.paths.clean, rec.frames_written, rec.elapsed_s, rec.fps
        )

    # ------------------------------------------------------------------------------------ status
    @property
    def dropped_frames(self) -> int:
        mailbox = self._mailbox
        return int(getattr(mailbox, "dropped", 0)) if mailbox is not None else 0

    def status(self) -> Status:
        now = time.monotonic()
        return Status(
            provider=self.provider,
            display_fps=self._display_rate.rate(now),
            inference_fps=self._inference_rate.rate(now),
            latency_ms=self.latency_ms,
            dropped=self.dropped_frames,
            source=describe_source(self.source_info.spec) if self.source_info else None,
            paused=self.paused,
        )

    @Slot()
    def _emit_status(self) -> None:
        if self._vcam is not None and self._vcam.error:
            error = self._vcam.error
            self.stop_virtual_camera()
            self.message.emit("warning", f"The virtual camera stopped: {error}", False)
        self.status_changed.emit(self.status())
        if self._recorder is not None:
            self.recording_changed.emit(self._recording_status())

    # ------------------------------------------------------------------------------------ virtual camera, demo
    @property
    def virtual_camera_on(self) -> bool:
        return self._vcam is not None

    def start_virtual_camera(self) -> bool:
        """Send the view to a virtual camera (size: --virtual-camera-size, else the source's). When there is no
        backend, a one-sentence message says what to install and the app goes on; returns whether it started."""
        from ofer_live.io.virtual_camera import VirtualCameraError, VirtualCameraSink

        if self._vcam is not None:
            return True
        info = self.source_info
        if info is None:
            self._start_vcam_when_open = True  # starts as soon as the source is open
            return True
        frame = self.current_frame
        size = self._vcam_size or (
            (int(frame.image.shape[1]), int(frame.image.shape[0])) if frame is not None else tuple(info.size)
        )
        try:
            self._vcam = VirtualCameraSink(size, info.fps, opener=self._vcam_opener)
        except VirtualCameraError as exc:
            self.message.emit("warning", str(exc), False)
            self.virtual_camera_changed.emit(False)
            return False
        except Exception as exc:  # noqa: BLE001 - an unexpected failure must not take the app down
            log.exception("could not start the virtual camera")
            self.message.emit("warning", f"No virtual camera: {type(exc).__name__}: {exc}", False)
            self.virtual_camera_changed.emit(False)
            return False
        self.status_message.emit(f"Virtual camera on: {self._vcam.device} ({size[0]}x{size[1]})")
        self.virtual_camera_changed.emit(True)
        return True

    def stop_virtual_camera(self) -> None:
        self._start_vcam_when_open = False
        sink, self._vcam = self._vcam, None
        if sink is not None:
            sink.close()
            self.virtual_camera_changed.emit(False)

    def set_virtual_camera_mode(self, mode: str) -> None:
        """'annotated' | 'strip' (the view plus a strip with the reconstruction and the bars) | 'clean'."""
        from ofer_live.io.virtual_camera import SEND_MODES

        if mode not in SEND_MODES:
            raise ValueError(f"virtual camera mode must be one of {SEND_MODES}, got {mode!r}")
        self.virtual_camera_mode = mode

    def _send_to_virtual_camera(
        self, frame: CapturedFrame, annotated: np.ndarray, output: InferenceOutput | None
    ) -> None:
        if self.virtual_camera_mode == "clean":
            image = frame.image
        elif self.virtual_camera_mode == "strip":
            from ofer_live.render.strip import with_side_strip

            result = output.result if output is not None else None
            image = with_side_strip(annotated, result, self.selected_track)
        else:
            image = annotated
        self._vcam.send(image)

    def _demo_timeline(self, info: SourceInfo) -> Any:
        """The demo clip's timeline (for captions) when the source is the built-in demo, else None."""
        if not info.spec.startswith(DEMO):
            return None
        from ofer_live.io.demo import DemoClip
        from ofer_live.io.sources import DEMO_LOOP_FRAMES

        return DemoClip(n_frames=DEMO_LOOP_FRAMES, fps=info.fps, size=tuple(info.size))

    def play_demo_loop(self) -> None:
        """The built-in demo clip with captions (for a presenter without a camera)."""
        self.demo_captions = True
        self.set_source(DEMO, remember=False)

    def _save_settings(self) -> None:
        """Write the settings half a second after the last change (a dragged slider writes once, not per tick);
        ``shutdown`` writes at once."""
        self._settings_timer.start()

    @Slot()
    def _write_settings(self) -> None:
        try:
            self._settings.save(self.stored)
        except Exception:  # noqa: BLE001 - settings are a convenience; never break the app over them
            log.warning("saving the settings failed", exc_info=True)
