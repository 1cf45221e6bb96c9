"""Frame sources and their bad-input messages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ofer_live.errors import InputError
from ofer_live.io.demo import DemoClip
from ofer_live.io.recorder import VideoRecorder
from ofer_live.io.sources import DemoSource, Frame, ImageSource, VideoFileSource, open_source


def test_video_file_source_reads_the_demo_clip(demo_clip):
    with open_source(demo_clip) as src:
        assert isinstance(src, VideoFileSource)
        assert (src.fps, src.frame_count, src.size, src.is_live) == (15.0, 30, (640, 480), False)
        frames = list(src)
    assert [f.index for f in frames] == list(range(30))
    assert frames[3].time_s == pytest.approx(3 / 15)
    assert all(isinstance(f, Frame) and f.image.shape == (480, 640, 3) for f in frames)
    assert src.read() is None  # closed


def test_demo_source_finite_and_looping():
    with open_source("demo:4") as src:
        assert isinstance(src, DemoSource) and src.frame_count == 4 and src.fps == 30.0
        assert len(list(src)) == 4
    clip = DemoClip(n_frames=3, fps=30.0)
    with DemoSource(n_frames=3, loop=True) as src:
        assert src.frame_count is None and not src.is_live
        frames = [src.read() for _ in range(7)]
    assert [f.index for f in frames] == list(range(7))
    assert frames[6].time_s == pytest.approx(6 / 30)
    assert np.array_equal(frames[4].image, clip.frame(1))  # wrapped around
    looping = open_source("demo")
    assert looping.frame_count is None and looping.name == "demo"
    looping.close()


def test_image_sources(tmp_path, astronaut_bgr):
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), astronaut_bgr)
    with open_source(tmp_path / "b.png") as src:
        assert isinstance(src, ImageSource) and src.frame_count == 1 and src.size == (512, 512)
        assert len(list(src)) == 1
    with open_source(str(tmp_path)) as src:
        frames = list(src)
    assert len(frames) == 2 and src.paths[0].name == "a.jpg"


def test_image_list_with_a_bad_later_image(tmp_path, astronaut_bgr):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), astronaut_bgr)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    with ImageSource([good, bad]) as src:
        assert src.read() is not None
        with pytest.raises(InputError, match="not a readable image"):
            src.read()
        assert src.read() is None  # moved on past the bad image


def _write_avi(path, n=30):
    clip = DemoClip(n_frames=n, fps=15.0, size=(320, 240))
    with VideoRecorder(path, 15.0, clip.size) as rec:
        for frame in clip:
            rec.write(frame)
    return path


def test_truncated_avi_stops_cleanly_at_the_last_readable_frame(tmp_path):
    path = _write_avi(tmp_path / "full.avi")
    cut = tmp_path / "cut.avi"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cut) as src:
        frames = list(src)  # no exception
    assert 5 < len(frames) < 30


def test_truncated_mp4_is_a_clear_error(tmp_path, demo_clip):
    cut = tmp_path / "cut.mp4"
    data = demo_clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # OpenCV's mp4 writer puts the index (moov) at the end
    with pytest.raises(InputError, match="not a readable video") as err:
        open_source(cut)
    assert "cut before it was finished" in str(err.value)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p, img: None, "video not found"),
        (lambda p, img: p.write_bytes(b""), "video file is empty"),
        (lambda p, img: p.write_text("definitely not a video\n" * 50), "not a readable video"),
        (lambda p, img: p.write_bytes(cv2.imencode(".png", img)[1].tobytes()[:5000]), "readable"),
        (lambda p, img: p.mkdir(), "no images found in folder"),
    ],
    ids=["missing", "empty", "text-renamed-mp4", "png-renamed-mp4", "folder"],
)
def test_bad_video_inputs(tmp_path, astronaut_bgr, make, message):
    path = tmp_path / "input.mp4"
    make(path, astronaut_bgr)
    with pytest.raises(InputError, match=message) as err:
        open_source(path)
    text = str(err.value)
    assert "\n" not in text and "input.mp4" in text


def test_bad_source_specs():
    with pytest.raises(InputError, match="bad camera source"):
        open_source("camera:front")
    with pytest.raises(InputError, match="bad demo source"):
        open_source("demo:many")
    with pytest.raises(InputError, match="N must be at least 1"):
        open_source("demo:0")
    with pytest.raises(InputError, match="empty source"):
        open_source("  ")


def test_missing_camera_is_an_input_error():
    with pytest.raises(InputError, match="camera 97 could not be opened"):
        open_source("camera:97")


def test_empty_image_folder(tmp_path):
    with pytest.raises(InputError, match="no images found"):
        open_source(tmp_path)


def test_one_parser_for_the_source_grammar(tmp_path):
    from ofer_live.gui.sources import normalize_source
    from ofer_live.io.sources import parse_source

    assert parse_source("camera").canonical == "camera:0" and parse_source("Camera:2").canonical == "camera:2"
    assert parse_source("3").canonical == "camera:3"  # a bare number that is not a file
    assert parse_source("demo").frames is None and parse_source("DEMO:40").canonical == "demo:40"
    clip = tmp_path / "clip.mp4"
    assert parse_source(str(clip)).canonical == str(clip.resolve())
    for bad, message in (("camera:x", "bad camera source"), ("demo:0", "at least 1"), ("  ", "empty source")):
        with pytest.raises(InputError, match=message):
            parse_source(bad)
    # the app's chooser spells a spec the same way, and keeps its own 'auto'
    assert normalize_source(" camera:1 ") == "camera:1" and normalize_source("auto") == "auto"
    with pytest.raises(InputError, match="bad camera source"):
        normalize_source("camera:x")
