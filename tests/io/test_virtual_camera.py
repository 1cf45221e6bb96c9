"""The virtual camera: frames in order and at the camera's size, newest-wins for the live app, the missing-backend
sentence, a backend that dies, and `ofer-live video --virtual-camera` with a fake backend."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from ofer_live.errors import UserError
from ofer_live.io import virtual_camera as vc


class FakeBackend:
    """Stands in for pyvirtualcam: records what it is sent."""

    def __init__(self, width, height, fps, fail_after=None, delay_s=0.0):
        self.size, self.fps = (width, height), fps
        self.device = "/dev/video-fake"
        self.frames: list[np.ndarray] = []
        self.paced = 0
        self.closed = False
        self.fail_after = fail_after
        self.delay_s = delay_s

    def send(self, frame):
        if self.fail_after is not None and len(self.frames) >= self.fail_after:
            raise OSError("device unplugged")
        time.sleep(self.delay_s)
        self.frames.append(frame.copy())

    def sleep_until_next_frame(self):
        self.paced += 1

    def close(self):
        self.closed = True


def opener_for(backends, **kwargs):
    def opener(width, height, fps):
        backend = FakeBackend(width, height, fps, **kwargs)
        backends.append(backend)
        return backend

    return opener


def numbered(i, size=(64, 48)):
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[...] = i % 256
    return frame


def test_keep_all_sends_every_frame_in_order_at_the_camera_size():
    backends = []
    sink = vc.VirtualCameraSink((32, 24), 25.0, keep_all=True, pace=True, opener=opener_for(backends))
    for i in range(40):
        sink.send(numbered(i))
    sink.close()
    (backend,) = backends
    assert backend.size == (32, 24) and backend.fps == 25.0 and backend.closed
    assert [int(f[0, 0, 0]) for f in backend.frames] == list(range(40))
    assert all(f.shape == (24, 32, 3) and f.dtype == np.uint8 for f in backend.frames)
    assert sink.sent == 40 and backend.paced == 40 and sink.error is None


def test_live_mode_never_blocks_and_the_newest_frame_wins():
    backends = []
    sink = vc.VirtualCameraSink((64, 48), 30.0, opener=opener_for(backends, delay_s=0.05))
    start = time.perf_counter()
    for i in range(50):
        sink.send(numbered(i))
    elapsed = time.perf_counter() - start
    time.sleep(0.2)
    sink.close()
    sent = [int(f[0, 0, 0]) for f in backends[0].frames]
    assert elapsed < 0.5  # 50 sends while the backend takes 50 ms a frame: the caller never waited
    assert sent == sorted(sent) and sent[-1] == 49 and sink.dropped == 50 - sink.sent
    assert sink.dropped > 0


def test_frames_are_fitted_with_the_aspect_kept():
    frame = np.full((100, 200, 3), 255, np.uint8)
    out = vc.fit_into(frame, (100, 100))
    assert out.shape == (100, 100, 3)
    assert out[25:75].min() == 255 and out[:24].max() == 0 and out[76:].max() == 0  # black bars above and below


def test_missing_backend_is_one_sentence_per_os(monkeypatch):
    linux = vc.missing_backend_message("Linux")
    assert "sudo modprobe v4l2loopback exclusive_caps=1" in linux and linux.endswith(".") and "\n" not in linux
    assert "OBS Studio 30" in vc.missing_backend_message("Windows")
    assert "OBS Studio 30" in vc.missing_backend_message("Darwin")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # as if the [meeting] extra were not installed
    with pytest.raises(vc.VirtualCameraError, match="pyvirtualcam is not installed"):
        vc.VirtualCameraSink((64, 48), 30.0)


def test_a_backend_that_dies_is_reported_and_sending_stops():
    backends = []
    sink = vc.VirtualCameraSink((64, 48), 30.0, keep_all=True, opener=opener_for(backends, fail_after=3))
    done = threading.Event()

    def produce():
        for i in range(30):
            sink.send(numbered(i))
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(5.0)  # the producer is never stuck behind a dead backend
    sink.close()
    assert sink.sent == 3 and "device unplugged" in sink.error


def test_size_flag():
    from ofer_live.commands.common import parse_size

    assert parse_size("1280x720", even=True) == (1280, 720)
    for bad in ("1280", "12x720", "1281x720", "axb"):
        with pytest.raises(UserError, match="--virtual-camera-size"):
            parse_size(bad, "--virtual-camera-size", even=True)


def test_video_command_sends_every_frame_to_the_virtual_camera(tiny_models_dir, tmp_path, monkeypatch, capsys):
    from ofer_live.cli import main

    backends = []
    monkeypatch.setattr(vc, "open_backend", opener_for(backends))
    code = main(
        [
            "video",
            "demo:90",
            "-o",
            str(tmp_path / "out.avi"),
            "--virtual-camera",
            "--virtual-camera-size",
            "320x240",
            "--models",
            str(tiny_models_dir),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    (backend,) = backends
    assert len(backend.frames) == 90 and backend.size == (320, 240) and backend.closed
    assert "sent 90 frames to the virtual camera /dev/video-fake" in out


def test_video_command_without_a_backend_warns_and_still_writes(tiny_models_dir, tmp_path, monkeypatch, capsys):
    from ofer_live.cli import main

    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    code = main(
        [
            "video",
            "demo:5",
            "-o",
            str(tmp_path / "out.avi"),
            "--virtual-camera",
            "--models",
            str(tiny_models_dir),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0 and (tmp_path / "out.avi").stat().st_size > 0
    warning = [line for line in captured.err.splitlines() if "virtual camera" in line]
    assert len(warning) == 1 and "No virtual camera is available" in warning[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2loopback is Linux only")
def test_v4l2loopback_end_to_end(tmp_path):
    """Frames sent through pyvirtualcam come back through OpenCV, where a loopback device exists."""
    import glob

    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        pytest.skip("pyvirtualcam (the [meeting] extra) is not installed")
    devices = [d for d in glob.glob("/sys/devices/virtual/video4linux/video*") if os.path.exists(d)]
    if not devices:
        pytest.skip("no v4l2loopback device: the module cannot be loaded in this environment (no modprobe)")
    import cv2

    sink = vc.VirtualCameraSink((64, 48), 30.0, keep_all=True)
    for _ in range(10):
        sink.send(np.full((48, 64, 3), 200, np.uint8))
    cap = cv2.VideoCapture(sink.device)
    ok, frame = cap.read()
    cap.release()
    sink.close()
    assert ok and abs(int(frame.mean()) - 200) < 20


def test_the_real_backend_without_a_device_gives_the_sentence():
    pytest.importorskip("pyvirtualcam", reason="the [meeting] extra is not installed")
    if os.path.exists("/dev/video0") or not sys.platform.startswith("linux"):
        pytest.skip("a video device exists here; this checks the no-device message on Linux")
    with pytest.raises(vc.VirtualCameraError) as err:
        vc.VirtualCameraSink((64, 48), 30.0)
    message = str(err.value)
    assert "sudo modprobe v4l2loopback" in message and "\n" not in message
