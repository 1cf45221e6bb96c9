"""Camera opening per OS with a fake cv2.VideoCapture: backend order, the timeout, the macOS permission message,
and the requested size and rate passed on (no camera needed)."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from ofer_live.errors import InputError
from ofer_live.io import sources


class FakeCapture:
    """Opens only with the backends in ``works``; may hang in the constructor; delivers frames of the set size."""

    calls: list[tuple[int, int]] = []
    works: set[int] = set()
    hang_s = 0.0
    released = 0

    def __init__(self, index, backend=cv2.CAP_ANY):
        FakeCapture.calls.append((index, backend))
        if FakeCapture.hang_s:
            time.sleep(FakeCapture.hang_s)
        self.opened = backend in FakeCapture.works
        self.props = {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480, cv2.CAP_PROP_FPS: 30.0}

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self.opened

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_FPS:
            value = min(value, 25.0)  # a driver that cannot do what was asked
        self.props[prop] = value
        return True

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def read(self):
        w, h = int(self.props[cv2.CAP_PROP_FRAME_WIDTH]), int(self.props[cv2.CAP_PROP_FRAME_HEIGHT])
        return True, np.zeros((h, w, 3), np.uint8)

    def release(self):
        FakeCapture.released += 1


@pytest.fixture
def fake_cv2(monkeypatch):
    FakeCapture.calls, FakeCapture.works, FakeCapture.hang_s, FakeCapture.released = [], set(), 0.0, 0
    monkeypatch.setattr(sources.cv2, "VideoCapture", FakeCapture)
    return FakeCapture


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Windows", [cv2.CAP_DSHOW, cv2.CAP_MSMF]),
        ("Darwin", [cv2.CAP_AVFOUNDATION]),
        ("Linux", [cv2.CAP_V4L2, cv2.CAP_ANY]),
        ("Plan9", [cv2.CAP_ANY]),
    ],
)
def test_backend_order_per_os(system, expected, fake_cv2):
    assert [b for _, b in sources.camera_backends(system)] == expected
    with pytest.raises(InputError):
        sources.open_camera(0, timeout_s=2.0, system=system)
    assert [b for _, b in fake_cv2.calls] == expected  # every backend tried, in order, once
    assert fake_cv2.released == len(expected)


def test_windows_falls_back_to_media_foundation(fake_cv2):
    fake_cv2.works = {cv2.CAP_MSMF}
    cap, name = sources.open_camera(1, system="Windows")
    assert name == "Media Foundation" and cap.isOpened() and fake_cv2.calls == [(1, cv2.CAP_DSHOW), (1, cv2.CAP_MSMF)]


def test_macos_names_the_camera_permission(fake_cv2):
    with pytest.raises(InputError, match="Privacy & Security > Camera"):
        sources.open_camera(0, system="Darwin")


def test_a_stuck_driver_times_out_with_a_clear_message(fake_cv2):
    fake_cv2.works = {cv2.CAP_V4L2}
    fake_cv2.hang_s = 1.5
    start = time.monotonic()
    with pytest.raises(InputError, match="did not open within 0.3 s"):
        sources.open_camera(0, timeout_s=0.3, system="Linux")
    assert time.monotonic() - start < 1.0  # the caller is not held up by the driver
    deadline = time.monotonic() + 5
    while fake_cv2.released == 0 and time.monotonic() < deadline:  # the late capture is released, not leaked
        time.sleep(0.05)
    assert fake_cv2.released == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("open-camera") and t.is_alive()]


def test_requested_size_and_rate_reach_the_driver(fake_cv2, monkeypatch):
    monkeypatch.setattr(sources.platform, "system", lambda: "Linux")
    fake_cv2.works = {cv2.CAP_V4L2}
    with sources.open_source("camera:2", camera_size=(1280, 720), camera_fps=60) as cam:
        assert cam.backend == "V4L2" and cam.size == (1280, 720)
        assert cam.fps == 25.0  # what the driver really gives, not what was asked
        assert cam.read().image.shape == (720, 1280, 3)
