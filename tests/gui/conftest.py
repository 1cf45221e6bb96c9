"""Fixtures for the Qt tests: offscreen windows on tiny models, isolated settings, no dangling QThreads."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ofer_live.config import AppConfig, PipelineConfig, RuntimeConfig
from ofer_live.errors import InputError

# OpenCV points Qt at its own plugins (on import); remove that before pytest-qt creates the QApplication.
os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)

WAIT_MS = 30_000  # generous: the machine is shared; tests return as soon as the condition holds


@pytest.fixture(autouse=True)
def no_dangling_qthreads():
    """Fail any test that leaves one of the app's worker threads running."""
    yield
    from ofer_live.gui.workers import running_threads

    left = running_threads()
    if left:
        names = [t.objectName() for t in left]
        for thread in left:
            if hasattr(thread, "stop"):
                thread.stop()
            thread.wait(5000)
        pytest.fail(f"QThreads left running after the test: {names}")


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "settings" / "ofer-live.ini"


@pytest.fixture
def make_window(qtbot, tmp_path: Path, tiny_models_dir: Path, settings_path: Path):
    """Factory: an offscreen MainWindow on the tiny models with temporary settings, started on ``source``."""
    from ofer_live.gui.app import LaunchOptions, build_window

    windows = []

    def make(
        source: str | None = "demo",
        *,
        models: Path | None = None,
        start: bool = True,
        record_dir: Path | None = None,
        settings: Path | None = None,
        pipeline: PipelineConfig | None = None,
        pipeline_flags: dict | None = None,
        **controller_kwargs,
    ):
        options = LaunchOptions(
            config=AppConfig(
                runtime=RuntimeConfig(models_dir=Path(models or tiny_models_dir)), pipeline=pipeline or PipelineConfig()
            ),
            settings_path=settings or settings_path,
            pipeline_flags=pipeline_flags or {},
        )
        window = build_window(options, **controller_kwargs)
        # Never write into the user's folders: the default output folder is under tmp_path.
        if not window.controller.stored.output_dir:
            window.controller.stored.output_dir = str(tmp_path / "out")
        qtbot.addWidget(window)
        window.show()
        if start:
            window.controller.start(source, record_dir)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        window.controller.shutdown()


class FakeSource:
    """A FrameSource stand-in: numbered gray frames; raises or ends after ``fail_after`` frames."""

    def __init__(self, fail_after: int = 10, live: bool = False, fps: float = 30.0, error: str = "read error"):
        self.fail_after = fail_after
        self.is_live = live
        self.fps = fps
        self.size = (320, 240)
        self.frame_count = None
        self.error = error
        self.index = 0
        self.closed = False

    def read(self):
        if self.index >= self.fail_after:
            if self.is_live:
                return None  # a camera that stops delivering
            raise InputError(self.error)
        image = np.full((240, 320, 3), 40 + 10 * (self.index % 10), np.uint8)
        frame = SimpleNamespace(index=self.index, time_s=self.index / self.fps, image=image)
        self.index += 1
        return frame

    def close(self):
        self.closed = True


@pytest.fixture
def fake_source_cls():
    return FakeSource


def count_video_frames(path: Path) -> tuple[int, float]:
    """Decode every frame of ``path`` with OpenCV; returns (frames, fps)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"OpenCV cannot open {path}"
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n, fps


@pytest.fixture
def video_frames():
    return count_video_frames
