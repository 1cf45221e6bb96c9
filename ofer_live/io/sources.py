"""Frame sources: camera, video file, still images and the demo clip, behind one small interface.

``open_source(spec)`` understands:
- ``camera`` or ``camera:N`` (also a bare integer ``N``): OpenCV camera index N;
- ``demo``: the built-in demo clip, looping forever (for the GUI); ``demo:N``: N frames, then the end;
- a path to a video file; a path to an image file or a folder of images.

Every source returns ``Frame(index, time_s, image)`` from ``read()`` (None at the end), and has
``fps``, ``frame_count`` (None when unknown or endless), ``size`` (w, h), ``is_live`` and ``close()``.
``is_live`` is True only for cameras: they deliver frames in real time, so a consumer never waits.
Other sources return frames as fast as they are asked; a viewer paces them at ``fps``.

Bad input raises InputError with a one-line message: a missing or empty file, a file that is not a
video (e.g. renamed to .mp4), an .mp4 cut before its index was written. A video truncated
mid-stream (e.g. an AVI cut by a crash) plays up to its last readable frame and then ends cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# FFmpeg's own log lines ("moov atom not found", "overread 8") duplicate our one-line errors;
# keep them quiet unless the user asked otherwise. Read by OpenCV when FFmpeg is first used.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# Windows: Media Foundation's hardware transforms make opening a webcam take 10-30 s (read when cv2 loads;
# ofer_live/__init__.py sets it too, in case cv2 is imported before this module).
os.environ.setdefault("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS", "0")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ofer_live.errors import InputError  # noqa: E402
from ofer_live.io.images import check_input_file, is_image_path, iter_image_paths, read_image  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
DEMO_LOOP_FRAMES = 600  # the looping demo repeats every 20 s at 30 fps
CAMERA_OPEN_TIMEOUT_S = 6.0  # a camera that has not opened by then is reported, never waited on


def camera_backends(system: str | None = None) -> list[tuple[str, int]]:
    """OpenCV capture backends to try for a camera on ``system`` (``platform.system()``), in order.

    Windows: DirectShow first (Media Foundation can take 10-30 s to open a webcam), then Media Foundation;
    macOS: AVFoundation; Linux: V4L2, then whatever OpenCV picks.
    """
    system = system or platform.system()
    if system == "Windows":
        return [("DirectShow", cv2.CAP_DSHOW), ("Media Foundation", cv2.CAP_MSMF)]
    if system == "Darwin":
        return [("AVFoundation", cv2.CAP_AVFOUNDATION)]
    if system == "Linux":
        return [("V4L2", cv2.CAP_V4L2), ("any", cv2.CAP_ANY)]
    return [("any", cv2.CAP_ANY)]


def _open_capture_with_timeout(index: int, backend: int, timeout_s: float) -> cv2.VideoCapture | None:
    """``cv2.VideoCapture(index, backend)`` in a helper thread; None when it has not returned within
    ``timeout_s`` (a stuck driver). A capture that opens after the deadline is released by the helper."""
    result: dict[str, cv2.VideoCapture] = {}
    abandoned = threading.Event()

    def open_it() -> None:
        with _quiet_opencv():
            cap = cv2.VideoCapture(index, backend)
        if abandoned.is_set():
            cap.release()
        else:
            result["cap"] = cap

    thread = threading.Thread(target=open_it, name=f"open-camera-{index}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        abandoned.set()
        return None
    return result.get("cap")


def open_camera(
    index: int, timeout_s: float = CAMERA_OPEN_TIMEOUT_S, system: str | None = None
) -> tuple[cv2.VideoCapture, str]:
    """Open camera ``index`` with the OS's backends in turn (``camera_backends``) within ``timeout_s`` in all.
    -> (opened capture, backend name); InputError with one line that says why not."""
    system = system or platform.system()
    deadline = time.monotonic() + timeout_s
    for name, backend in camera_backends(system):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        cap = _open_capture_with_timeout(index, backend, left)
        if cap is None:
            raise InputError(
                f"camera {index} did not open within {timeout_s:g} s (its driver did not answer; "
                "unplug and replug it, or close the program using it)"
            )
        if cap.isOpened():
            return cap, name
        cap.release()
    if system == "Darwin":
        raise InputError(
            f"camera {index} could not be opened: allow camera access for this program (or its "
            "terminal) in System Settings > Privacy & Security > Camera, then try again"
        )
    raise InputError(f"camera {index} could not be opened (not connected, or in use by another program)")


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame: index from 0, time_s since the start of the source, image (H, W, 3) BGR uint8."""

    index: int
    time_s: float
    image: np.ndarray


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own WARN lines (e.g. 'backend can't capture by name') while opening."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _valid_fps(value: float, default: float = DEFAULT_FPS) -> float:
    return float(value) if np.isfinite(value) and 0.5 <= value <= 1000 else default


class FrameSource:
    """Base class: iterate frames with ``read()`` or ``for frame in source``; close when done."""

    fps: float = DEFAULT_FPS
    frame_count: int | None = None
    size: tuple[int, int] = (0, 0)
    is_live: bool = False
    name: str = ""

    def read(self) -> Frame | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.size[0]}x{self.size[1]} @ {self.fps:g} fps)"


class _CaptureSource(FrameSource):
    """A source read through a ``cv2.VideoCapture`` (``_cap``; None once closed), frames numbered from 0."""

    _cap: cv2.VideoCapture | None
    _index: int

    def _next_frame(self, image: np.ndarray, time_s: float) -> Frame:
        """Wrap ``image`` as frame number ``_index`` and move on to the next number."""
        frame = Frame(self._index, time_s, image)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_CaptureSource):
    """An OpenCV camera, opened with the OS's backend (``open_camera``, within ``timeout_s``). ``size`` (w, h) and
    ``fps`` are requested from the driver; ``size``/``fps``/``backend`` then hold what it actually gives (fps from
    the driver when it reports a sane value, else 30).

    ``read()`` returns None when the camera stops delivering frames (e.g. unplugged) after
    ``max_failures`` consecutive failed grabs; the caller then reports it and may reopen.
    """

    is_live = True

    def __init__(
        self,
        index: int = 0,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        max_failures: int = 5,
        timeout_s: float = CAMERA_OPEN_TIMEOUT_S,
    ):
        self.index = int(index)
        self.name = f"camera:{self.index}"
        self._cap, self.backend = open_camera(self.index, timeout_s)
        if size is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(f"camera {self.index} opened but delivers no frames")
        self._pending: np.ndarray | None = first
        self.size = (first.shape[1], first.shape[0])
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self.frame_count = None
        self.max_failures = max_failures
        self._index = 0
        self._t0 = time.monotonic()

    def read(self) -> Frame | None:
        if self._cap is None:
            return None
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            image = None
            for _ in range(self.max_failures):
                ok, img = self._cap.read()
                if ok and img is not None:
                    image = img
                    break
            if image is None:
                logger.warning("camera %d stopped delivering frames", self.index)
                return None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return self._next_frame(image, time.monotonic() - self._t0)


class VideoFileSource(_CaptureSource):
    """A video file read with OpenCV's FFmpeg backend. time_s = index / fps.

    ``frame_count`` is the container's count (None if it has none, e.g. a recording cut by a crash);
    it can be larger than what is readable in a truncated file: reading simply ends early.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path)
        check_input_file(self.path, "video")
        with _quiet_opencv():
            self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            self._cap.release()
            raise InputError(
                f"not a readable video: {self.path} (unknown format, corrupt, or an .mp4 cut before it was finished)"
            )
        ok, first = self._read_raw()
        if not ok:
            self._cap.release()
            raise InputError(f"no readable frames in {self.path} (not a video, or corrupt)")
        self._pending: np.ndarray | None = first
        self.size = (first.shape[1], first.shape[0])
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if np.isfinite(count) and 0 < count < 1e9 else None
        self._index = 0
        self._ended = False

    def _read_raw(self) -> tuple[bool, np.ndarray | None]:
        """-> (ok, (H, W, 3) BGR uint8 image or None); a decoding error counts as the end."""
        try:
            ok, img = self._cap.read()
        except cv2.error as exc:  # a damaged stream: treat as the end
            logger.warning("%s: read error, stopping: %s", self.path, exc)
            return False, None
        if not ok or img is None or img.size == 0:
            return False, None
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        return True, img

    def read(self) -> Frame | None:
        if self._cap is None or self._ended:
            return None
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            ok, image = self._read_raw()
            if not ok:
                self._ended = True
                if self.frame_count is not None and self._index < self.frame_count:
                    logger.warning(
                        "%s: stopped after %d of %d frames (truncated or damaged file)",
                        self.path,
                        self._index,
                        self.frame_count,
                    )
                return None
        return self._next_frame(image, self._index / self.fps)


class ImageSource(FrameSource):
    """One still image or a list of images, each once. time_s = index / fps (fps 1 by default).

    The first image is read when the source opens (so a bad single image fails up front); later
    unreadable images raise InputError from ``read()``.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], fps: float = 1.0):
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputError("no images to read")
        self.name = str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} images"
        self.fps = float(fps)
        self.frame_count = len(self.paths)
        self._pending: np.ndarray | None = read_image(self.paths[0])
        self.size = (self._pending.shape[1], self._pending.shape[0])
        self._index = 0

    def read(self) -> Frame | None:
        if self._index >= len(self.paths):
            return None
        index = self._index
        self._index += 1  # a bad image is skipped after its error: the next read() moves on
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            image = read_image(self.paths[index])
        return Frame(index, index / self.fps, image)


class DemoSource(FrameSource):
    """The demo clip (io/demo.py). With ``loop=True`` it never ends (frames repeat every ``n_frames``)."""

    def __init__(
        self,
        n_frames: int = DEMO_LOOP_FRAMES,
        fps: float = DEFAULT_FPS,
        size: tuple[int, int] = (640, 480),
        seed: int = 0,
        loop: bool = False,
    ):
        from ofer_live.io.demo import DemoClip

        self.clip = DemoClip(n_frames=n_frames, fps=fps, size=size, seed=seed)
        self.loop = bool(loop)
        self.name = "demo" if loop else f"demo:{n_frames}"
        self.fps = float(fps)
        self.size = self.clip.size
        self.frame_count = None if loop else self.clip.n_frames
        self._index = 0

    def read(self) -> Frame | None:
        if not self.loop and self._index >= self.clip.n_frames:
            return None
        image = self.clip.frame(self._index % self.clip.n_frames)
        frame = Frame(self._index, self._index / self.fps, image)
        self._index += 1
        return frame


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source spec: ``kind`` camera | demo | path, with the camera ``index``, the demo's ``frames``
    (None: loops forever) or the ``path``. ``canonical`` is the one spelling of it (camera:N, demo, demo:N, or
    an absolute path)."""

    kind: str
    index: int | None = None
    frames: int | None = None
    path: Path | None = None

    @property
    def canonical(self) -> str:
        if self.kind == "camera":
            return f"camera:{self.index}"
        if self.kind == "demo":
            return "demo" if self.frames is None else f"demo:{self.frames}"
        return str(self.path)


def parse_source(spec: str | Path) -> SourceSpec:
    """'camera[:N]' | N (no such file) | 'demo[:N]' | a path -> SourceSpec; InputError for a malformed spec.
    The one parser of the source grammar (``open_source`` and the app's source chooser use it)."""
    text = str(spec).strip()
    if not text:
        raise InputError("empty source; use camera:N, demo, or a video/image path")
    lower = text.lower()
    if lower == "camera" or lower.startswith("camera:"):
        index_text = text.split(":", 1)[1] if ":" in text else "0"
        try:
            index = int(index_text)
        except ValueError:
            raise InputError(f"bad camera source '{text}': use camera:N with N a number, e.g. camera:0") from None
        return SourceSpec("camera", index=index)
    if lower == "demo" or lower.startswith("demo:"):
        if ":" not in text:
            return SourceSpec("demo")
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            raise InputError(f"bad demo source '{text}': use demo or demo:N with N frames") from None
        if n < 1:
            raise InputError(f"bad demo source '{text}': N must be at least 1")
        return SourceSpec("demo", frames=n)
    path = Path(text).expanduser()
    if text.isdigit() and not path.exists():
        return SourceSpec("camera", index=int(text))
    return SourceSpec("path", path=path.resolve())


def open_source(
    spec: str | Path, camera_size: tuple[int, int] | None = None, camera_fps: float | None = None
) -> FrameSource:
    """'camera[:N]' | N | 'demo[:N]' | video path | image path | image folder -> an open FrameSource.
    ``camera_size`` (w, h) and ``camera_fps`` are asked of cameras (ignored by the other sources)."""
    parsed = parse_source(spec)
    if parsed.kind == "camera":
        return CameraSource(parsed.index, camera_size, camera_fps)
    if parsed.kind == "demo":
        return DemoSource(loop=True) if parsed.frames is None else DemoSource(n_frames=parsed.frames)
    path = Path(str(spec).strip()).expanduser()  # as given, so messages name the file the way the user did
    if path.is_dir():
        images = iter_image_paths([path])
        if not images:
            raise InputError(f"no images found in folder {path}")
        return ImageSource(images)
    if is_image_path(path):
        return ImageSource(path)
    return VideoFileSource(path)
