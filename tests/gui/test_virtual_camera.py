"""The virtual-camera toggle and the demo loop in the window (offscreen, tiny models, a fake backend)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
WAIT = 30_000


class FakeCamera:
    def __init__(self, width, height, fps):
        self.size, self.fps, self.device = (width, height), fps, "/dev/video-fake"
        self.frames: list[np.ndarray] = []
        self.lock = threading.Lock()
        self.closed = False

    def send(self, frame):
        with self.lock:
            self.frames.append(frame.copy())

    def sleep_until_next_frame(self):
        pass

    def close(self):
        self.closed = True


def test_toggle_sends_the_view_in_the_chosen_mode(make_window, qtbot):
    cameras = []

    def opener(w, h, fps):
        cameras.append(FakeCamera(w, h, fps))
        return cameras[-1]

    window = make_window("demo", virtual_camera_opener=opener)
    controller = window.controller
    qtbot.waitUntil(lambda: controller.source_info is not None and controller.current_output is not None, timeout=WAIT)
    window.act_vcam.trigger()  # the toolbar toggle beside Record
    qtbot.waitUntil(lambda: cameras and len(cameras[0].frames) >= 3, timeout=WAIT)
    camera = cameras[0]
    assert controller.virtual_camera_on and window.act_vcam.isChecked()
    assert camera.size == (640, 480) and all(f.shape == (480, 640, 3) for f in camera.frames)
    window.vcam_mode_box.setCurrentIndex(window.vcam_mode_box.findData("strip"))
    assert controller.virtual_camera_mode == "strip"
    with camera.lock:
        before = len(camera.frames)
    qtbot.waitUntil(lambda: len(camera.frames) >= before + 3, timeout=WAIT)
    with camera.lock:
        strip_frame = camera.frames[-1]
    # The 640x480 view plus a 144 px strip, fitted into 640x480: black bars above and below.
    assert strip_frame.shape == (480, 640, 3) and strip_frame[:20].max() == 0 and strip_frame[240].max() > 0
    window.act_vcam.trigger()
    assert not controller.virtual_camera_on and camera.closed and not window.act_vcam.isChecked()


def test_missing_backend_shows_the_sentence_and_the_app_goes_on(make_window, qtbot, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    window = make_window("demo")
    controller = window.controller
    qtbot.waitUntil(lambda: controller.source_info is not None, timeout=WAIT)
    window.act_vcam.trigger()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT)
    assert "No virtual camera is available" in window.banner.text() and "install" in window.banner.text()
    assert not window.act_vcam.isChecked() and not controller.virtual_camera_on
    shown = controller.frames_displayed
    qtbot.waitUntil(lambda: controller.frames_displayed > shown + 5, timeout=WAIT)  # still playing


def test_demo_loop_captions_follow_the_clip(make_window, qtbot):
    from ofer_live.io.demo import CAPTIONS

    window = make_window("demo")
    controller = window.controller
    qtbot.waitUntil(lambda: controller.source_info is not None, timeout=WAIT)
    assert not controller.demo_captions
    assert window.source_label.text() == "640×480 @ 30 fps"  # what the source really gives, in the status bar
    window.act_demo_loop.trigger()  # Playback > Play the demo loop with captions
    qtbot.waitUntil(
        lambda: (
            controller.source_info is not None
            and controller.annotated is not None
            and controller.current_frame is not None
            and controller.current_frame.generation > 1
        ),
        timeout=WAIT,
    )
    assert controller.demo_captions and controller.source_info.spec == "demo"
    frame = controller.current_frame
    expected = controller._demo_clip.caption(frame.source_index % controller._demo_clip.n_frames)
    assert expected in CAPTIONS.values()
    band = controller.annotated[-30:]
    assert band.mean() < frame.image[-30:].mean()  # the dark caption band along the bottom
