"""The annotated view as a virtual camera (Zoom, Teams, Meet pick "ofer_live" like any webcam).

``VirtualCameraSink`` sends frames to a virtual-camera backend from its own thread, so the caller (the GUI thread,
the ``video`` loop) never waits on the backend:

- ``keep_all=False`` (the live app): a one-slot mailbox, the newest frame wins and ``send`` never blocks;
- ``keep_all=True`` (``ofer-live video``): every frame in order through a short queue, paced at the frame rate
  when ``pace`` is set (so a meeting sees the video at its real speed).

Frames are fitted into the camera's size (aspect kept, black bars). The default backend is ``pyvirtualcam`` (the
optional ``.[meeting]`` extra): v4l2loopback on Linux, the OBS virtual camera on Windows and macOS. When none is
there, opening raises ``VirtualCameraError`` with one sentence that says what to install; the app keeps running
without it.
"""

from __future__ import annotations

import logging
import platform
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from ofer_live.errors import UserError

log = logging.getLogger(__name__)

SEND_MODES: tuple[str, ...] = ("annotated", "strip", "clean")  # what the GUI sends: see render.strip


class VirtualCameraError(UserError):
    """No virtual camera could be opened (the message says what to install)."""


def missing_backend_message(system: str | None = None, detail: str = "") -> str:
    """One sentence naming what to install on this OS (``system`` as ``platform.system()`` gives it)."""
    system = system or platform.system()
    if system == "Linux":
        how = (
            "install the v4l2loopback module and load it with 'sudo modprobe v4l2loopback exclusive_caps=1 "
            "card_label=ofer_live', then pip install 'ofer_live[meeting]'"
        )
    elif system in ("Windows", "Darwin"):
        how = "install OBS Studio 30 or newer (its virtual camera) and pip install 'ofer_live[meeting]'"
    else:
        how = f"no virtual-camera backend is known for {system}"
    reason = f" ({detail})" if detail else ""
    return f"No virtual camera is available{reason}: {how}."


class Backend(Protocol):
    """A virtual camera: ``send(frame)`` takes (H, W, 3) uint8 BGR at the opened size."""

    device: str

    def send(self, frame_bgr: np.ndarray) -> None: ...

    def sleep_until_next_frame(self) -> None: ...

    def close(self) -> None: ...


class _PyVirtualCam:
    def __init__(self, camera: Any) -> None:
        self.camera = camera
        self.device = str(getattr(camera, "device", "virtual camera"))

    def send(self, frame_bgr: np.ndarray) -> None:
        self.camera.send(frame_bgr)

    def sleep_until_next_frame(self) -> None:
        self.camera.sleep_until_next_frame()

    def close(self) -> None:
        self.camera.close()


def open_backend(width: int, height: int, fps: float) -> Backend:
    """The pyvirtualcam camera (BGR frames) -> Backend; VirtualCameraError when there is none."""
    try:
        import pyvirtualcam
    except ImportError:
        raise VirtualCameraError(missing_backend_message(detail="pyvirtualcam is not installed")) from None
    try:
        camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR)
    except Exception as exc:  # noqa: BLE001 - pyvirtualcam raises RuntimeError, OSError, ... per backend
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VirtualCameraError(missing_backend_message(detail=first)) from None
    return _PyVirtualCam(camera)


def fit_into(frame_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """frame_bgr: (H, W, 3) uint8 -> (h, w, 3) uint8 of ``size`` = (w, h): scaled to fit, aspect kept, black bars."""
    w, h = size
    fh, fw = frame_bgr.shape[:2]
    if (fw, fh) == (w, h):
        return np.ascontiguousarray(frame_bgr)
    scale = min(w / fw, h / fh)
    nw, nh = max(1, round(fw * scale)), max(1, round(fh * scale))
    resized = cv2.resize(frame_bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y : y + nh, x : x + nw] = resized
    return out


class VirtualCameraSink:
    """Sends BGR frames to a virtual camera from a daemon thread (see module docstring).

    ``opener(width, height, fps) -> Backend`` is called here, on the caller's thread, so a missing backend is
    reported at once (VirtualCameraError). ``sent`` / ``dropped`` count frames; ``error`` holds the message of a
    backend that failed later (the thread then stops; the caller shows it).
    """

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        *,
        keep_all: bool = False,
        pace: bool = False,
        opener: Callable[[int, int, float], Backend] | None = None,
        queue_size: int = 8,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.keep_all = keep_all
        self.pace = pace
        self.backend = (opener or open_backend)(self.size[0], self.size[1], self.fps)
        self.device = getattr(self.backend, "device", "virtual camera")
        self.sent = 0
        self.dropped = 0
        self.error: str | None = None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=queue_size if keep_all else 1)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="virtual-camera", daemon=True)
        self._thread.start()

    def send(self, frame_bgr: np.ndarray) -> None:
        """frame_bgr: (H, W, 3) uint8. keep_all: waits while the queue is full; else replaces a waiting frame."""
        if self._closed or self.error is not None:
            return
        if self.keep_all:
            while True:
                try:
                    self._queue.put(frame_bgr, timeout=0.2)
                    return
                except queue.Full:
                    if self.error is not None or self._closed:
                        return
        with self._lock:
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
            self._queue.put_nowait(frame_bgr)

    def _run(self) -> None:
        w, h = self.size
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            try:
                self.backend.send(fit_into(frame, (w, h)))
                self.sent += 1
                if self.pace:
                    self.backend.sleep_until_next_frame()
            except Exception as exc:  # noqa: BLE001 - report, stop sending; the app goes on
                self.error = f"the virtual camera stopped: {type(exc).__name__}: {exc}"
                log.warning("%s", self.error)
                self._drain()
                return

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (keep_all), stop the thread and close the backend; idempotent."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    self._drain()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.backend.close()
        except Exception as exc:  # noqa: BLE001 - closing must not raise into shutdown
            log.warning("closing the virtual camera failed: %s", exc)

    def __enter__(self) -> VirtualCameraSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
