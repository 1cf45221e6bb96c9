"""The app's worker threads: capture, inference and recorder.

Each worker is a ``QThread`` subclass whose ``run()`` owns its resources: it opens them and closes them
itself. Signals are emitted from the worker thread; connect them only to ``@Slot`` methods of QObjects that
live on the GUI thread (Qt then queues the call to the GUI thread). A lambda or a plain function connected
to a worker's signal would run in the worker thread.

Frames and results do not travel inside signals. Each worker keeps its newest output in a ``Coalescer``
and emits a bare notification only when the GUI has taken the previous one, so a busy GUI thread never
accumulates a queue of frames (memory stays flat); the GUI slot takes the newest item.

Data flow::

    CaptureWorker ──put──► LatestSlot (newest wins) ──get──► InferenceWorker ──► OverlayState + result_ready
         │ frame_ready (coalesced) ──► AppController.on_frame_ready (GUI thread: overlays + QImage)
         └─ submit(frame, newest result) ──► RecorderWorker (bounded FIFO: video, clean video, JSONL)
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from PySide6.QtCore import QThread, Signal

from ofer_live.config import AppConfig, PipelineConfig, RenderOptions
from ofer_live.errors import InputError, UserError
from ofer_live.gui.sources import AUTO, DEMO, camera_index, describe_source, list_cameras
from ofer_live.types import FrameResult

log = logging.getLogger(__name__)

T = TypeVar("T")

# Every worker thread ever created, so tests (and shutdown) can prove none is left running.
_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def running_threads() -> list[QThread]:
    """The app's worker threads that are still running."""
    return [t for t in list(_THREADS) if t.isRunning()]


def _register(thread: QThread) -> None:
    _THREADS.add(thread)


class Coalescer(Generic[T]):
    """One-item mailbox that tells its producer when to notify the consumer.

    ``offer`` replaces the item and returns True only when the consumer has taken the previous one,
    so at most one notification is in flight (the consumer always takes the newest item).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None
        self._pending = False
        self.replaced = 0

    def offer(self, item: T) -> bool:
        with self._lock:
            if self._pending:
                self.replaced += 1
            self._item = item
            notify = not self._pending
            self._pending = True
            return notify

    def take(self) -> T | None:
        with self._lock:
            item, self._item, self._pending = self._item, None, False
            return item

    def clear(self) -> None:
        self.take()


@dataclass(frozen=True, eq=False)
class CapturedFrame:
    """One frame on the app's timeline.

    index: frame number on the app timeline (keeps counting when a file or the demo loops).
    time_s: seconds on the app timeline (source time for files and the demo; pause-aware wall time for cameras).
    image: (H, W, 3) uint8 BGR.
    generation: which source this frame came from (the controller increments it at every source switch).
    captured_at: time.monotonic() when the frame was read (for the latency readout).
    source_index: the frame's own index in its source (restarts when a file or the demo loops).
    """

    index: int
    time_s: float
    image: np.ndarray
    generation: int
    captured_at: float
    source_index: int = -1


@dataclass(frozen=True)
class SourceInfo:
    """What the capture thread opened."""

    spec: str  # the spec actually opened (``auto`` resolves to a camera or ``demo``)
    requested: str  # the spec asked for
    name: str
    fps: float
    size: tuple[int, int]  # (w, h)
    is_live: bool
    frame_count: int | None
    generation: int
    backend: str | None = None  # the camera's capture backend (V4L2, DirectShow, AVFoundation, ...)


@dataclass(frozen=True, eq=False)
class InferenceOutput:
    """A FrameResult plus where it came from."""

    result: FrameResult
    generation: int
    config_version: int  # which PipelineConfig (see InferenceWorker.set_pipeline_config) produced it
    captured_at: float
    done_at: float

    @property
    def latency_ms(self) -> float:
        """Capture-to-result latency in ms."""
        return (self.done_at - self.captured_at) * 1000.0


class OverlayState:
    """Thread-safe holder of the newest inference output and the current render options.

    Written by the inference thread (results) and the GUI thread (options); read by the capture thread when
    it hands a frame to the recorder, so each recorded frame carries the overlays that were newest when it was
    captured, exactly as the preview shows them.
    """

    def __init__(self, options: RenderOptions) -> None:
        self._lock = threading.Lock()
        self._output: InferenceOutput | None = None
        self._options = options

    def set_output(self, output: InferenceOutput | None) -> None:
        with self._lock:
            self._output = output

    def output_for(self, generation: int) -> InferenceOutput | None:
        with self._lock:
            out = self._output
        return out if out is not None and out.generation == generation else None

    @property
    def options(self) -> RenderOptions:
        with self._lock:
            return self._options

    @options.setter
    def options(self, options: RenderOptions) -> None:
        with self._lock:
            self._options = options


def _default_opener(spec: str) -> Any:
    from ofer_live.io.sources import open_source

    return open_source(spec)


# --------------------------------------------------------------------------------------------- capture


class CaptureWorker(QThread):
    """Reads frames from one source, paces files and the demo at their fps, and hands every frame on.

    Each frame goes (1) into the inference mailbox (a LatestSlot: newest wins), (2) to the preview through a
    coalesced ``frame_ready`` notification, and (3) to the recorder when one is attached. Files and the demo
    loop at their end. A camera that stops delivering is reopened a few times before ``failed`` is emitted.
    """

    opened = Signal(object)  # SourceInfo
    frame_ready = Signal()  # take the frame with take_frame()
    notice = Signal(int, str)  # (generation, informational message for the user)
    failed = Signal(int, str)  # (generation, message): the source failed (open or mid-run); the thread ends

    reconnect_attempts = 5
    reconnect_delay_s = 1.0

    def __init__(
        self,
        spec: str,
        generation: int,
        mailbox: Any,
        overlay_state: OverlayState,
        opener: Callable[[str], Any] | None = None,
        pace: bool = True,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(f"capture-{generation}")
        self._spec = spec
        self._generation = generation
        self._mailbox = mailbox
        self._overlay = overlay_state
        self._opener = opener or _default_opener
        self._pace = pace
        self._cond = threading.Condition()
        self._stop = False
        self._paused = False
        self._steps = 0
        self._reanalyse = False
        self._last: CapturedFrame | None = None
        self._recorder: RecorderWorker | None = None
        self._display = Coalescer[CapturedFrame]()
        self.frames_read = 0
        self.info: SourceInfo | None = None
        _register(self)

    # -- called from the GUI thread -------------------------------------------------------------
    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            self._steps = 0
            self._cond.notify_all()

    def step(self) -> None:
        """While paused: deliver exactly one more frame."""
        with self._cond:
            self._steps += 1
            self._cond.notify_all()

    def reanalyse(self) -> None:
        """Send the newest frame to the analysis again (paused: shows the effect of a new setting at once).

        Done by this thread, after any frame it was still delivering, so the frame analysed is the one shown.
        """
        with self._cond:
            self._reanalyse = True
            self._cond.notify_all()

    def take_frame(self) -> CapturedFrame | None:
        return self._display.take()

    @property
    def display_replaced(self) -> int:
        """Frames the preview skipped because the GUI thread was busy."""
        return self._display.replaced

    def set_recorder(self, recorder: RecorderWorker | None) -> None:
        self._recorder = recorder

    # -- worker thread ------------------------------------------------------------------------
    def _stopped(self) -> bool:
        with self._cond:
            return self._stop

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped (or un-paused/stepped); return True when stopped."""
        with self._cond:
            if not self._stop:
                self._cond.wait(timeout=max(0.0, seconds))
            return self._stop

    def _open(self, spec: str) -> tuple[Any, str, Any]:
        """Open ``spec`` (``auto``: first working camera, else the demo). Returns (source, spec, first frame)."""
        if spec != AUTO:
            return self._opener(spec), spec, None
        for index in list_cameras():
            if self._stopped():
                break
            cam = f"camera:{index}"
            try:
                source = self._opener(cam)
            except UserError as exc:
                log.info("camera %d not usable: %s", index, exc)
                continue
            try:
                first = source.read()
            except Exception as exc:  # noqa: BLE001 - a broken camera is skipped, whatever the driver raises
                log.info("camera %d gave no frame: %s", index, exc)
                first = None
            if first is not None:
                return source, cam, first
            source.close()
        self.notice.emit(self._generation, "No working camera found; playing the demo clip.")
        return self._opener(DEMO), DEMO, None

    def _reconnect(self, spec: str) -> Any | None:
        name = describe_source(spec)
        self.notice.emit(self._generation, f"{name} stopped delivering frames; reconnecting…")
        for attempt in range(self.reconnect_attempts):
            if self._sleep(self.reconnect_delay_s):
                return None
            try:
                source = self._opener(spec)
                first = source.read()
            except Exception as exc:  # noqa: BLE001 - keep trying; reported below when all attempts fail
                log.info("reconnect %d/%d to %s failed: %s", attempt + 1, self.reconnect_attempts, spec, exc)
                continue
            if first is not None:
                self.notice.emit(self._generation, f"{name} reconnected.")
                return source, first
            source.close()
        return None

    def run(self) -> None:  # noqa: C901 - one loop with a few clearly separated cases
        try:
            source, spec, pending = self._open(self._spec)
        except UserError as exc:
            self.failed.emit(self._generation, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - thread boundary: report, never crash the app
            log.exception("could not open source %s", self._spec)
            self.failed.emit(
                self._generation, f"could not open {describe_source(self._spec)}: {type(exc).__name__}: {exc}"
            )
            return
        try:
            fps = float(getattr(source, "fps", 0.0) or 0.0)
            if not np.isfinite(fps) or fps <= 0:
                fps = 30.0
            live = bool(getattr(source, "is_live", camera_index(spec) is not None))
            size = tuple(int(v) for v in getattr(source, "size", (0, 0)))
            self.info = SourceInfo(
                spec=spec,
                requested=self._spec,
                name=describe_source(spec),
                fps=fps,
                size=(size[0], size[1]),
                is_live=live,
                frame_count=getattr(source, "frame_count", None),
                generation=self._generation,
                backend=getattr(source, "backend", None),
            )
            self.opened.emit(self.info)
            source = self._loop(source, spec, pending, fps, live)
        except UserError as exc:
            self.failed.emit(self._generation, f"{describe_source(spec)}: {exc}")
        except Exception as exc:  # noqa: BLE001 - thread boundary: report, never crash the app
            log.exception("capture from %s failed", spec)
            self.failed.emit(self._generation, f"{describe_source(spec)} failed: {type(exc).__name__}: {exc}")
        finally:
            if source is not None:
                try:
                    source.close()
                except Exception:  # noqa: BLE001 - closing a broken source must not mask the real error
                    log.warning("closing %s failed", spec, exc_info=True)

    def _loop(self, source: Any, spec: str, pending: Any, fps: float, live: bool) -> Any:
        """Read, time-stamp and hand on frames until stopped -> the source still open (or None)."""
        clock = _CaptureClock(fps=fps, live=live)
        while True:
            control = self._take_control()
            if control is None:
                return source
            paused, stepping = control
            if paused and not stepping:
                clock.pause()
                self._idle_while_paused(source, live)
                continue
            if pending is not None:
                frame, pending = pending, None
            else:
                frame = source.read()
            if frame is None:
                source.close()
                if live:
                    got = self._reconnect(spec)
                    if got is None:
                        if not self._stopped():
                            self.failed.emit(
                                self._generation,
                                f"{describe_source(spec)} stopped delivering frames (unplugged?). "
                                "Retry, or choose another source.",
                            )
                        return None
                    source, pending = got
                    continue
                # End of a file or of the demo clip: loop (a pass without a single frame is an error).
                if clock.frames_this_pass == 0:
                    raise InputError(f"{describe_source(spec)} has no readable frames")
                source = None
                source = self._opener(spec)
                clock.next_pass()
                continue
            stamped = self._timestamp(frame, clock, pace=self._pace and not stepping)
            if stamped is None:
                return source
            self._publish(frame, *stamped, clock, live)

    def _take_control(self) -> tuple[bool, bool] | None:
        """Apply a pending re-analysis; -> (paused, stepping this frame), or None when asked to stop."""
        with self._cond:
            if self._stop:
                return None
            if self._reanalyse:
                self._reanalyse = False
                if self._last is not None:
                    self._mailbox.put(self._last)
            paused, stepping = self._paused, False
            if paused and self._steps > 0:
                self._steps -= 1
                stepping = True
        return paused, stepping

    def _idle_while_paused(self, source: Any, live: bool) -> None:
        if live:
            # Keep draining the camera so that resuming shows a fresh frame, not a stale buffer.
            if source.read() is None:
                self._sleep(0.05)
            return
        with self._cond:
            if not self._stop and self._paused and self._steps == 0 and not self._reanalyse:
                self._cond.wait(timeout=0.5)

    def _timestamp(self, frame: Any, clock: _CaptureClock, pace: bool) -> tuple[float, float] | None:
        """-> (the frame's time on the output timeline, monotonic now); a file is paced to its own rate when
        ``pace``. None when asked to stop while waiting."""
        now = time.monotonic()
        if clock.live:
            return clock.live_time(now), now
        t = clock.file_time(float(getattr(frame, "time_s", 0.0)))
        if pace:
            if clock.pace_origin is None:
                clock.pace_origin = (now, t)
            delay = clock.pace_origin[0] + (t - clock.pace_origin[1]) - now
            if delay > 0:
                if self._sleep(delay):
                    return None
                now = time.monotonic()
            elif delay < -0.5:  # far behind (slow machine, debugger): resynchronise
                clock.pace_origin = (now, t)
        return t, now

    def _publish(self, frame: Any, t: float, now: float, clock: _CaptureClock, live: bool) -> None:
        """Hand the frame to inference (mailbox), the display and the recorder."""
        image = frame.image if hasattr(frame, "image") else frame
        captured = CapturedFrame(
            index=clock.index,
            time_s=t,
            image=image,
            generation=self._generation,
            captured_at=now,
            source_index=int(getattr(frame, "index", -1)),
        )
        clock.index += 1
        clock.frames_this_pass += 1
        self.frames_read = clock.index
        self._last = captured
        self._mailbox.put(captured)
        if self._display.offer(captured):
            self.frame_ready.emit()
        recorder = self._recorder
        if recorder is not None:
            output = self._overlay.output_for(self._generation)
            recorder.submit(
                captured,
                output.result if output else None,
                self._overlay.options,
                block=not live,
                should_stop=self._stopped,
            )


@dataclass
class _CaptureClock:
    """The capture loop's timeline: frame count, pause-aware camera time, looping file time, pacing origin."""

    fps: float
    live: bool
    index: int = 0
    frames_this_pass: int = 0
    time_offset: float = 0.0  # added to a file's own time stamps once it has looped
    last_source_time: float = 0.0
    live_clock: float = 0.0  # pause-aware seconds for cameras
    live_last: float | None = None
    pace_origin: tuple[float, float] | None = None  # (monotonic, timeline) pair that pacing counts from

    def pause(self) -> None:
        self.pace_origin = None
        self.live_last = None

    def next_pass(self) -> None:
        """A file or the demo clip starts again: its time stamps continue after the last frame."""
        self.frames_this_pass = 0
        self.time_offset += self.last_source_time + 1.0 / self.fps
        self.last_source_time = 0.0
        self.pace_origin = None

    def live_time(self, now: float) -> float:
        if self.live_last is not None:
            self.live_clock += now - self.live_last
        self.live_last = now
        return self.live_clock

    def file_time(self, source_time: float) -> float:
        self.last_source_time = source_time
        return self.time_offset + source_time


# ------------------------------------------------------------------------------------------- inference


def _default_pipeline_factory(config: AppConfig) -> Any:
    from ofer_live.pipeline import FramePipeline

    return FramePipeline.create(config)


class InferenceWorker(QThread):
    """Owns the FramePipeline (MediaPipe detector + the three ONNX Runtime sessions) for its whole life.

    Creates it in ``run()``, takes the newest frame from the mailbox, runs the pipeline (up to
    ``RuntimeConfig.frames_in_flight`` frames at once, results in frame order), publishes each result
    (OverlayState + coalesced ``result_ready``) and closes the pipeline when stopped. An error on
    one frame is reported with ``frame_error`` and the loop goes on; a pipeline that cannot be created
    (missing or bad models) is reported with ``failed`` and the thread ends.
    """

    ready = Signal(str)  # provider actually used
    result_ready = Signal()  # take it with take_output()
    frame_error = Signal(str)
    failed = Signal(str)

    def __init__(
        self,
        config: AppConfig,
        mailbox: Any,
        overlay_state: OverlayState,
        factory: Callable[[AppConfig], Any] | None = None,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("inference")
        self._config = config
        self._mailbox = mailbox
        self._overlay = overlay_state
        self._factory = factory or _default_pipeline_factory
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending_config: PipelineConfig | None = None
        self._version = 0
        self._applied_version = 0
        self._outputs = Coalescer[InferenceOutput]()
        self.frames_processed = 0
        self.frame_errors = 0
        self.provider: str | None = None
        _register(self)

    # -- GUI thread -----------------------------------------------------------------------------
    def set_pipeline_config(self, config: PipelineConfig) -> int:
        """Apply ``config`` before the next frame; returns its version (InferenceOutput.config_version)."""
        with self._lock:
            self._version += 1
            self._pending_config = config
            return self._version

    @property
    def config_version(self) -> int:
        with self._lock:
            return self._version

    def stop(self) -> None:
        self._stop.set()

    def take_output(self) -> InferenceOutput | None:
        return self._outputs.take()

    # -- worker thread ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            pipeline = self._factory(self._config)
        except UserError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - thread boundary: report, never crash the app
            log.exception("could not create the pipeline")
            self.failed.emit(f"the models could not be loaded: {type(exc).__name__}: {exc}")
            return
        try:
            self.provider = str(getattr(pipeline, "provider", "") or "unknown")
            self.ready.emit(self.provider)
            self._loop(pipeline)
        finally:
            try:
                pipeline.close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.warning("closing the pipeline failed", exc_info=True)

    def _loop(self, pipeline: Any) -> None:
        """Newest frame in, results out in frame order; with frames_in_flight > 1 the next frame is taken while
        the previous one is still in process (``FrameStream``)."""
        from ofer_live.pipeline.frame_stream import FrameStream

        with FrameStream(pipeline, self._config.runtime.resolved_frames_in_flight()) as stream:
            while not self._stop.is_set():
                # while a frame is in process, look back often so that its result is published at once
                frame = self._mailbox.get(timeout=0.005 if stream.pending else 0.1)
                if frame is None:
                    self._publish(stream.poll())
                    continue
                self._apply_pending_config(pipeline)
                tag = (frame, self._applied_version)
                self._publish(stream.submit(frame.image, frame.index, frame.time_s, tag=tag))

    def _apply_pending_config(self, pipeline: Any) -> None:
        with self._lock:
            config, self._pending_config = self._pending_config, None
            version = self._version
        if config is not None:
            try:
                pipeline.update_config(config)
                self._applied_version = version
            except Exception as exc:  # noqa: BLE001 - a bad setting must not kill the thread
                log.warning("update_config failed", exc_info=True)
                self.frame_error.emit(f"could not apply the new settings: {exc}")

    def _publish(self, finished: list) -> None:
        """FrameStream results (oldest first) -> OverlayState + coalesced ``result_ready``; failures -> frame_error."""
        for done in finished:
            frame, config_version = done.tag
            if done.error is not None:  # one bad frame is reported, the next one is tried
                self.frame_errors += 1
                exc = done.error
                log.warning("analysis of frame %d failed: %s", frame.index, exc, exc_info=log.isEnabledFor(10))
                self.frame_error.emit(f"analysis of frame {frame.index} failed: {type(exc).__name__}: {exc}")
                continue
            self.frames_processed += 1
            output = InferenceOutput(
                result=done.result,
                generation=frame.generation,
                config_version=config_version,
                captured_at=frame.captured_at,
                done_at=time.monotonic(),
            )
            self._overlay.set_output(output)
            if self._outputs.offer(output):
                self.result_ready.emit()


# -------------------------------------------------------------------------------------------- recorder


@dataclass
class RecordingPaths:
    video: Path
    jsonl: Path
    clean: Path | None = None


@dataclass
class _Item:
    frame: CapturedFrame
    result: FrameResult | None
    options: RenderOptions


_STOP = object()


@dataclass
class RecorderStats:
    frames_written: int = 0
    frames_dropped: int = 0  # could not be queued in time (live sources); the timeline is filled by repeats
    error: str | None = None


class RecorderWorker(QThread):
    """Writes the annotated video (+ optional clean video) and the per-frame JSONL from a bounded FIFO.

    Frames are placed on the output timeline by their time stamps: frame k of the output is the newest
    source frame at k / fps, so the recording plays at true speed even when a camera delivers fewer frames
    than it announces or frames had to be dropped. For files and the demo this is exactly one output
    frame per source frame. The writers are opened on the GUI thread by ``open()`` (so an unwritable
    folder is refused before anything starts); from then on this thread owns them and closes them.
    """

    failed = Signal(str)

    def __init__(
        self,
        paths: RecordingPaths,
        fps: float,
        size: tuple[int, int],
        video: Any,
        jsonl: Any,
        clean: Any | None,
        draw: Callable[..., np.ndarray],
        to_record: Callable[[FrameResult], dict],
        queue_size: int | None = None,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("recorder")
        self.paths = paths
        self.fps = float(fps)
        self.size = size
        self._video = video
        self._jsonl = jsonl
        self._clean = clean
        self._draw = draw
        self._to_record = to_record
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size or max(32, int(round(2 * fps))))
        self._t0: float | None = None
        self._accepting = True
        self._closed = False
        self.stats = RecorderStats()
        _register(self)

    @classmethod
    def open(cls, out_dir: Path, stem: str, fps: float, size: tuple[int, int], save_clean: bool) -> RecorderWorker:
        """Open the writers (raises OutputError) and return a recorder ready to ``start()``."""
        from ofer_live.contracts import LABELS
        from ofer_live.io.recorder import DEFAULT_EXTENSION, VideoRecorder  # .avi: crash-safe MJPEG AVI
        from ofer_live.io.results import JsonlWriter, frame_result_to_record
        from ofer_live.render.overlay import draw

        video = clean = jsonl = None
        paths = RecordingPaths(
            video=out_dir / f"{stem}{DEFAULT_EXTENSION}",
            jsonl=out_dir / f"{stem}.jsonl",
            clean=out_dir / f"{stem}_clean{DEFAULT_EXTENSION}" if save_clean else None,
        )
        try:
            video = VideoRecorder(paths.video, fps, size)
            if paths.clean is not None:
                clean = VideoRecorder(paths.clean, fps, size)
            jsonl = JsonlWriter(paths.jsonl)
        except BaseException:
            for writer in (video, clean, jsonl):
                if writer is not None:
                    writer.close()
            raise
        return cls(paths, fps, size, video, jsonl, clean, draw, lambda r: frame_result_to_record(r, LABELS))

    # -- capture thread -----------------------------------------------------------------------
    def submit(
        self,
        frame: CapturedFrame,
        result: FrameResult | None,
        options: RenderOptions,
        block: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Queue a frame. ``block``: wait for room (files, demo); otherwise drop when full (cameras)."""
        if not self._accepting:
            return
        item = _Item(frame, result, options)
        if not block:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.stats.frames_dropped += 1
            return
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._accepting or (should_stop is not None and should_stop()):
                    return

    # -- GUI thread -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the queued frames, then close the files (the thread ends)."""
        self._accepting = False
        if not self.isRunning() and not self.isFinished():  # never started: close the files here
            self._close()
            return
        while self.isRunning():
            try:
                self._queue.put(_STOP, timeout=0.1)
                return
            except queue.Full:
                continue

    @property
    def frames_written(self) -> int:
        return self.stats.frames_written

    @property
    def elapsed_s(self) -> float:
        return self.stats.frames_written / self.fps if self.fps > 0 else 0.0

    # -- worker thread ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                self._write(item)
        except (OSError, UserError) as exc:
            self.stats.error = str(exc)
            log.error("recording stopped: %s", exc)
            self._accepting = False
            self.failed.emit(f"recording stopped: {exc}")
        except Exception as exc:  # noqa: BLE001 - thread boundary: report, never crash the app
            self.stats.error = f"{type(exc).__name__}: {exc}"
            log.exception("recording failed")
            self._accepting = False
            self.failed.emit(f"recording stopped: {type(exc).__name__}: {exc}")
        finally:
            self._close()

    def _write(self, item: _Item) -> None:
        frame = item.frame
        if self._t0 is None:
            self._t0 = frame.time_s
        target = int(np.floor((frame.time_s - self._t0) * self.fps + 0.5)) + 1
        repeats = target - self.stats.frames_written
        if repeats <= 0:
            return
        image = frame.image
        h, w = image.shape[:2]
        result = item.result
        if result is not None and tuple(result.frame_shape) != (h, w):
            result = None  # a result for another frame size (source switch) must not be drawn here
        annotated = self._draw(image, result, item.options) if result is not None else image
        record = self._to_record(result) if result is not None else {"faces": []}
        rest = {k: v for k, v in record.items() if k not in ("frame", "time_s")}
        # VideoRecorder resizes frames of another size; repeats (a camera slower than its announced fps,
        # or dropped frames) reuse the encoded frame.
        self._video.write(annotated)
        if repeats > 1:
            self._video.repeat_last(repeats - 1)
        if self._clean is not None:
            self._clean.write(image)
            if repeats > 1:
                self._clean.repeat_last(repeats - 1)
        for _ in range(repeats):
            n = self.stats.frames_written
            self._jsonl.write({"frame": n, "time_s": round(n / self.fps, 6), **rest})
            self.stats.frames_written = n + 1

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for writer in (self._video, self._clean, self._jsonl):
            if writer is None:
                continue
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - close every writer even if one fails
                log.warning("closing a recording file failed", exc_info=True)
        # Drop whatever is still queued (after a write error) so the capture thread never blocks on us.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
