"""The demo clip generator, including the real detector on the written clip."""

from __future__ import annotations

import numpy as np
import pytest

from ofer_live.face.detector import FaceDetector
from ofer_live.io.demo import OCCLUDERS, DemoClip, astronaut_bgr, write_demo_clip
from ofer_live.io.sources import VideoFileSource


def test_astronaut_is_bundled_and_copied():
    a = astronaut_bgr()
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    a[:] = 0
    assert astronaut_bgr().max() > 0


def test_clip_is_deterministic_per_seed():
    a, b, c = DemoClip(10, 30, seed=3), DemoClip(10, 30, seed=3), DemoClip(10, 30, seed=4)
    assert len(a) == 10 and len(list(a)) == 10
    assert np.array_equal(a.frame(7), b.frame(7))
    assert not np.array_equal(a.frame(7), c.frame(7))
    assert a.frame(7).shape == (480, 640, 3)
    assert DemoClip(5, 30, size=(320, 200)).frame(0).shape == (200, 320, 3)


def test_timeline_has_every_occluder_and_clean_intervals():
    clip = DemoClip(n_frames=400, fps=30)
    states = [clip.occluder_at(i) for i in range(round(clip.cycle_s * 30))]
    names = {name for name, _ in states if name}
    assert names == set(OCCLUDERS)
    assert sum(name is None for name, _ in states) > 30  # clean intervals
    assert any(amount == 1.0 for _, amount in states) and any(0 < amount < 1 for _, amount in states)


def test_head_moves_slightly():
    clip = DemoClip(n_frames=300, fps=30)
    eyes = np.array([clip.face_keypoints(i)[:2].mean(0) for i in range(0, 300, 10)])
    spread = eyes.max(0) - eyes.min(0)
    assert 5 < spread[0] < 80 and 2 < spread[1] < 60


def test_bad_arguments():
    with pytest.raises(ValueError):
        DemoClip(0, 30)
    with pytest.raises(ValueError):
        DemoClip(10, 0)
    with pytest.raises(ValueError):
        DemoClip(10, 30).frame(-1)


def test_write_demo_clip_avi_exact(tmp_path):
    path = write_demo_clip(tmp_path / "demo.avi", n_frames=12, fps=24.0, size=(320, 240))
    with VideoFileSource(path) as src:
        assert (src.frame_count, src.fps, src.size) == (12, 24.0, (320, 240))
        assert len(list(src)) == 12


def test_detector_finds_the_face_in_at_least_90_percent_of_the_clip(demo_clip):
    """The real MediaPipe detector on the 30-frame clip (with occluders) written by the fixture."""
    clip = DemoClip(n_frames=30, fps=15.0)
    found = 0
    with VideoFileSource(demo_clip) as src, FaceDetector() as det:
        for frame in src:
            dets = det.detect(frame.image)
            if dets:
                found += 1
                # The detected eyes match the generator's ground truth.
                truth = clip.face_keypoints(frame.index)
                ipd = np.linalg.norm(truth[1] - truth[0])
                assert np.linalg.norm(dets[0].keypoints[:2] - truth[:2], axis=1).max() < 0.3 * ipd
    assert found / 30 >= 0.9


def test_demo_command_writes_the_clip(tmp_path, capsys):
    from ofer_live.cli import main

    out = tmp_path / "demo.avi"
    assert main(["demo", "-o", str(out), "--seconds", "1", "--fps", "10", "--size", "160x120", "--seed", "2"]) == 0
    assert "10 frames" in capsys.readouterr().out
    with VideoFileSource(out) as src:
        assert (src.frame_count, src.fps, src.size) == (10, 10.0, (160, 120))


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--size", "big"], "bad --size 'big'"),
        (["--fps", "0"], "bad --fps 0"),
        (["--seconds", "-1"], "bad --seconds -1"),
    ],
)
def test_demo_command_bad_arguments(tmp_path, capsys, argv, message):
    from ofer_live.cli import main

    assert main(["demo", "-o", str(tmp_path / "x.avi"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ofer-live: error: ") and message in err and err.count("\n") == 1


def test_demo_command_unwritable_output(tmp_path, capsys):
    from ofer_live.cli import main

    assert main(["demo", "-o", str(tmp_path / "no" / "x.avi")]) == 2
    assert "video folder does not exist" in capsys.readouterr().err


def test_occluder_alpha_is_the_drawn_occluder(tmp_path):
    import numpy as np

    from ofer_live.io.demo import DemoClip, write_demo_masks

    clip = DemoClip(n_frames=400, fps=30.0, size=(320, 240))
    clean = [i for i in range(400) if clip.occluder_at(i)[0] is None]
    full = [i for i in range(400) if clip.occluder_at(i)[1] == 1.0]
    assert clean and full
    assert clip.occluder_alpha(clean[0]).max() == 0.0
    for i in full[::20]:
        alpha = clip.occluder_alpha(i)
        assert alpha.dtype == np.float32 and 0.0 <= alpha.min() and alpha.max() == 1.0
        assert 0.005 < (alpha > 0.5).mean() < 0.2  # a face-sized object in a 320x240 frame
    masks = write_demo_masks(tmp_path / "masks.npz", n_frames=60, fps=30.0, size=(320, 240))
    with np.load(masks) as data:
        assert data["alpha"].shape == (60, 240, 320) and data["alpha"].dtype == np.uint8
        names = [str(n) for n in data["occluder"]]
        for i in range(60):
            assert names[i] == (clip.occluder_at(i)[0] or "")
            np.testing.assert_array_equal(data["alpha"][i], np.round(clip.occluder_alpha(i) * 255).astype(np.uint8))


def test_demo_command_writes_masks(tmp_path, capsys):
    import numpy as np

    from ofer_live.cli import main

    assert (
        main(
            [
                "demo",
                "-o",
                str(tmp_path / "d.avi"),
                "--seconds",
                "1",
                "--fps",
                "10",
                "--size",
                "160x120",
                "--masks",
                str(tmp_path / "m.npz"),
            ]
        )
        == 0
    )
    assert "the occluder of each of the 10 frames" in capsys.readouterr().out
    with np.load(tmp_path / "m.npz") as data:
        assert data["alpha"].shape == (10, 120, 160)
    assert main(["demo", "-o", str(tmp_path / "e.avi"), "--masks", str(tmp_path / "m.png")]) == 2
    assert "--masks must name a .npz file" in capsys.readouterr().err
