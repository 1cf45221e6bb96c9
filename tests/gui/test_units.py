"""Qt-light pieces: display detection, source specs, output folders, rate meter, slider mapping, mailbox."""

from __future__ import annotations

import sys

import pytest

from ofer_live.errors import OutputError
from ofer_live.gui.display import NO_DISPLAY_HINT, display_problem
from ofer_live.gui.sources import (
    camera_index,
    describe_source,
    normalize_source,
    timestamped_stem,
)
from ofer_live.io.paths import check_output_dir


@pytest.mark.parametrize(
    ("env", "platform", "ok"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"QT_QPA_PLATFORM": "minimal"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_display_problem(env, platform, ok):
    assert (display_problem(env, platform) is None) == ok


def test_no_display_hint_names_the_headless_command():
    assert "ofer-live video" in NO_DISPLAY_HINT and "\n" not in NO_DISPLAY_HINT


def test_source_specs(tmp_path):
    assert normalize_source("demo") == "demo" and normalize_source("DEMO") == "demo"
    assert normalize_source("0") == "camera:0" and normalize_source("camera:2") == "camera:2"
    assert normalize_source(str(tmp_path / "a.mp4")) == str((tmp_path / "a.mp4").resolve())
    assert camera_index("camera:3") == 3 and camera_index("demo") is None
    assert describe_source("camera:1") == "Camera 1"
    assert describe_source("demo") == "Demo clip"
    assert describe_source("/x/y/clip.mp4") == "clip.mp4"


def test_check_output_dir(tmp_path):
    assert check_output_dir(tmp_path / "new" / "dir") == (tmp_path / "new" / "dir").resolve()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot use output folder"):
        check_output_dir(blocker / "sub")
    with pytest.raises(OutputError):
        check_output_dir(blocker)


def test_timestamped_stem_is_unique(tmp_path):
    first = timestamped_stem("rec", tmp_path)
    (tmp_path / f"{first}.mkv").write_bytes(b"")
    second = timestamped_stem("rec", tmp_path)
    assert second != first and second.startswith(first)


def test_slider_mapping_round_trips():
    from ofer_live.gui.controller import sensitivity_from_slider, slider_from_sensitivity

    assert sensitivity_from_slider(50) == pytest.approx(1.0)
    assert sensitivity_from_slider(0) == pytest.approx(0.25)
    assert sensitivity_from_slider(100) == pytest.approx(4.0)
    for v in (0, 13, 50, 77, 100):
        assert slider_from_sensitivity(sensitivity_from_slider(v)) == v


def test_rate_meter():
    from ofer_live.gui.controller import RateMeter

    meter = RateMeter(window_s=2.0)
    for i in range(31):
        meter.tick(100.0 + i / 15)
    assert meter.rate(102.0) == pytest.approx(15.0)
    assert meter.rate(110.0) == 0.0


def test_coalescer_notifies_once_until_taken():
    from ofer_live.gui.workers import Coalescer

    box = Coalescer()
    assert box.offer(1) is True
    assert box.offer(2) is False
    assert box.take() == 2 and box.replaced == 1
    assert box.take() is None
    assert box.offer(3) is True


def test_installed_pyside_keeps_references_to_none_and_true():
    """PySide6 6.12.0 drops a reference to None on every void call and to True on every emit on Python < 3.12,
    which aborts the interpreter (none_dealloc); pyproject pins PySide6 below 6.12. Guard the pin."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtGui import QColor

    class Emitter(QObject):
        sig = Signal()

    color, emitter = QColor(1, 2, 3), Emitter()
    before_none, before_true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(2_000):
        color.setAlpha(7)
        emitter.sig.emit()
    assert abs(sys.getrefcount(None) - before_none) < 100
    assert abs(sys.getrefcount(True) - before_true) < 100


class _EndingSource:
    """Non-live source with ``n`` gray frames, then the end."""

    is_live = False
    fps = 30.0
    size = (64, 48)
    frame_count = None

    def __init__(self, n):
        self.n, self.i = n, 0

    def read(self):
        from types import SimpleNamespace

        import numpy as np

        if self.i >= self.n:
            return None
        self.i += 1
        return SimpleNamespace(index=self.i - 1, time_s=(self.i - 1) / self.fps, image=np.zeros((48, 64, 3), np.uint8))

    def close(self):
        pass


def test_capture_loops_a_file_and_fails_on_a_pass_without_frames(qtbot):
    from PySide6.QtCore import Qt

    from ofer_live.config import RenderOptions
    from ofer_live.gui.workers import CaptureWorker, OverlayState
    from ofer_live.pipeline import LatestSlot

    passes = [5, 5, 0]
    worker = CaptureWorker(
        "clip.mp4",
        1,
        LatestSlot(),
        OverlayState(RenderOptions()),
        lambda spec: _EndingSource(passes.pop(0)),
        pace=False,
    )
    failures = []
    worker.failed.connect(lambda gen, text: failures.append(text), Qt.ConnectionType.DirectConnection)
    worker.start()
    assert worker.wait(10_000)
    assert worker.frames_read == 10
    assert failures and "has no readable frames" in failures[0]
    assert worker.take_frame() is not None


def test_camera_list_leaves_out_metadata_nodes(tmp_path, monkeypatch):
    import sys as _sys

    from ofer_live.gui import sources

    monkeypatch.setattr(_sys, "platform", "linux")
    nodes = ["/dev/video0", "/dev/video1", "/dev/video2", "/dev/video3", "/dev/video12"]
    monkeypatch.setattr(sources.glob, "glob", lambda pattern: nodes)
    for n, index in ((0, "0"), (1, "1"), (2, "0"), (3, "1")):  # two webcams: capture + metadata node each
        (tmp_path / f"video{n}").mkdir()
        (tmp_path / f"video{n}" / "index").write_text(index + "\n")
    assert sources.list_cameras(sysfs=str(tmp_path)) == [0, 2]  # video12 is past max_index
