"""The crash-safe recorder: exact count + fps on close, playable after SIGKILL or a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ofer_live.errors import OutputError
from ofer_live.io.recorder import VideoRecorder, fps_fraction

W, H = 160, 120


def numbered_frame(i: int, size: tuple[int, int] = (W, H)) -> np.ndarray:
    """A frame whose brightness encodes i (0..24) so the order can be checked after decoding."""
    w, h = size
    img = np.full((h, w, 3), 20 + 9 * (i % 25), np.uint8)
    cv2.putText(img, str(i), (5, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return img


def read_all(path: Path) -> tuple[float, float, list[np.ndarray]]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert cap.isOpened(), f"{path} does not open"
    fps, count = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return fps, count, frames


@pytest.mark.parametrize("fps", [30.0, 29.97, 12.5, 30000 / 1001])
def test_exact_frame_count_and_fps_on_close(tmp_path, fps):
    path = tmp_path / "out.avi"
    with VideoRecorder(path, fps, (W, H)) as rec:
        assert rec.crash_safe
        for i in range(37):
            rec.write(numbered_frame(i))
        assert rec.frames_written == 37
    read_fps, count, frames = read_all(path)
    assert count == 37 and len(frames) == 37
    assert read_fps == pytest.approx(fps, abs=1e-3)
    assert fps_fraction(29.97).denominator == 100 and fps_fraction(30000 / 1001).denominator == 1001


def test_frames_round_trip_in_order_across_opendml_riffs(tmp_path):
    path = tmp_path / "long.avi"
    with VideoRecorder(path, 25.0, (W, H), riff_limit=16 * 1024) as rec:  # many AVIX RIFFs
        for i in range(120):
            rec.write(numbered_frame(i))
    data = path.read_bytes()
    assert data.count(b"AVIX") > 3 and b"indx" in data
    fps, count, frames = read_all(path)
    assert (fps, count, len(frames)) == (25.0, 120, 120)
    for i, img in enumerate(frames):
        ref = numbered_frame(i)
        assert np.abs(img.astype(int) - ref).mean() < 3.0, f"frame {i} differs"


def test_resizes_other_sizes_and_accepts_gray(tmp_path):
    path = tmp_path / "mixed.avi"
    with VideoRecorder(path, 10, (W, H)) as rec:
        rec.write(numbered_frame(0, (640, 480)))
        rec.write(cv2.cvtColor(numbered_frame(1), cv2.COLOR_BGR2GRAY))
        rec.write(numbered_frame(2, (32, 24)))
    _, count, frames = read_all(path)
    assert count == 3 and all(f.shape == (H, W, 3) for f in frames)


def test_repeat_last_keeps_duration(tmp_path):
    path = tmp_path / "rep.avi"
    with VideoRecorder(path, 10, (W, H)) as rec:
        rec.repeat_last(3)  # nothing written yet: no-op
        rec.write(numbered_frame(0))
        rec.repeat_last(4)
    _, count, frames = read_all(path)
    assert count == 5 and len(frames) == 5


def test_mp4_through_ffmpeg(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoRecorder(path, 15, (W, H)) as rec:
        assert not rec.crash_safe
        for i in range(10):
            rec.write(numbered_frame(i))
    fps, count, frames = read_all(path)
    assert (fps, count, len(frames)) == (15.0, 10, 10)


def test_unwritable_outputs_are_refused_up_front(tmp_path):
    with pytest.raises(OutputError, match="video folder does not exist"):
        VideoRecorder(tmp_path / "missing" / "x.avi", 30, (W, H))
    with pytest.raises(OutputError, match="video path is a folder"):
        VideoRecorder(tmp_path, 30, (W, H))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="video folder is not a folder"):
        VideoRecorder(a_file / "x.avi", 30, (W, H))
    with pytest.raises(OutputError, match="unsupported video extension '.gif'"):
        VideoRecorder(tmp_path / "x.gif", 30, (W, H))
    with pytest.raises(OutputError, match="fps must be > 0"):
        VideoRecorder(tmp_path / "x.avi", 0, (W, H))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            VideoRecorder(folder / "x.avi", 30, (W, H))
    finally:
        folder.chmod(0o700)


def test_write_after_close_is_an_error(tmp_path):
    rec = VideoRecorder(tmp_path / "x.avi", 30, (W, H))
    rec.close()
    rec.close()
    with pytest.raises(OutputError, match="already closed"):
        rec.write(numbered_frame(0))


_KILL_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ofer_live.io.recorder import VideoRecorder
    rec = VideoRecorder(sys.argv[1], 29.97, (320, 240), riff_limit=int(sys.argv[2]))
    rng = np.random.default_rng(0)
    i = 0
    while True:
        frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # incompressible: big chunks
        rec.write(frame)
        i += 1
        print(i, flush=True)
    """
)


@pytest.mark.parametrize("riff_limit", [1 << 30, 512 * 1024], ids=["one-riff", "opendml"])
def test_sigkill_mid_recording_leaves_a_playable_file(tmp_path, riff_limit):
    """A recording process killed with SIGKILL leaves a file that plays every frame written before the kill."""
    path = tmp_path / "killed.avi"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_CHILD, str(path), str(riff_limit)],
        stdout=subprocess.PIPE,
        text=True,
    )
    written = 0
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    for line in proc.stdout:
        written = int(line)
        if written >= 40 or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for line in proc.stdout:  # the pipe still holds every count the child printed before it died
        written = int(line)
    proc.stdout.close()
    assert written >= 40
    fps, _, frames = read_all(path)
    assert fps == pytest.approx(29.97, abs=1e-3)  # the header (with the rate) is on disk from the start
    # Every frame whose write() returned is readable; at most one more was written but not yet reported.
    assert written <= len(frames) <= written + 1


_FULL_DISK_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from ofer_live.errors import OutputError
    from ofer_live.io.recorder import VideoRecorder
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))
    rec = VideoRecorder(sys.argv[1], 30, (320, 240), riff_limit=int(sys.argv[2]))
    rng = np.random.default_rng(0)
    n = 0
    try:
        while True:
            rec.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
            n += 1
    except OutputError as exc:
        print(n)
        print(exc)
    rec.close()
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE to simulate a full disk")
@pytest.mark.parametrize("riff_limit", [1 << 30, 100_000], ids=["one-riff", "opendml"])
def test_full_disk_stops_cleanly_and_the_file_plays(tmp_path, riff_limit):
    path = tmp_path / "full.avi"
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_CHILD, str(path), str(riff_limit)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    n_text, message = proc.stdout.strip().splitlines()
    n = int(n_text)
    assert n > 0
    assert "file too large" in message and f"stopped after frame {n}" in message
    fps, count, frames = read_all(path)
    assert len(frames) == n and count == n and fps == 30.0
    assert path.stat().st_size <= 400_000
