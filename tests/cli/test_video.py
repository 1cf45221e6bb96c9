"""`ofer-live video`: end to end on the demo clip, and every kind of bad input/output as a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ofer_live.contracts import LABELS


def _read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


def test_video_end_to_end(ofer, demo_clip, tiny_models_dir, tmp_path):
    out, jsonl = tmp_path / "annotated.avi", tmp_path / "results.jsonl"
    result = ofer("video", demo_clip, "-o", out, "--jsonl", jsonl, "--models", tiny_models_dir)
    assert result.code == 0, result.err
    assert "wrote 30 frames" in result.out
    frames, fps = _read_video(out)
    source, source_fps = _read_video(demo_clip)
    assert len(frames) == len(source) == 30
    assert fps == pytest.approx(source_fps, rel=1e-3) and fps == pytest.approx(15.0)
    assert frames[0].shape == source[0].shape
    # overlays were drawn: the annotated frames differ clearly from the input somewhere
    assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(frames, source, strict=True)) > 100

    lines = jsonl.read_text().splitlines()
    assert len(lines) == 30
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(30))
    assert records[1]["time_s"] == pytest.approx(1 / 15, abs=1e-4)
    with_face = sum(bool(r["faces"]) for r in records)
    assert with_face >= 27, f"a face in only {with_face}/30 frames"
    face = next(r["faces"][0] for r in records if r["faces"])
    assert set(face) >= {
        "track_id",
        "box",
        "label",
        "confidence",
        "probs",
        "occluded_fraction",
        "occlusion_grid",
        "timings_ms",
    }
    assert list(face["probs"]) == list(LABELS)
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert len(face["occlusion_grid"]) == 16 and set(face["occlusion_grid"]) <= {"0", "1"}
    assert face["occluded_fraction"] == pytest.approx(face["occlusion_grid"].count("1") / 16, abs=1e-3)
    assert set(face["timings_ms"]) == {"detect", "align", "occlusion", "reconstruct", "expression", "total"}
    assert len(face["box"]) == 4 and face["track_id"] >= 0


def test_no_overlay_max_frames_and_smoothing(ofer, demo_clip, tiny_models_dir, tmp_path):
    out, jsonl = tmp_path / "plain.mp4", tmp_path / "r.jsonl"
    result = ofer(
        "video",
        demo_clip,
        "-o",
        out,
        "--jsonl",
        jsonl,
        "--no-overlay",
        "--max-frames",
        4,
        "--smoothing",
        "--no-progress",
        "--models",
        tiny_models_dir,
    )
    assert result.code == 0, result.err
    assert "[" not in result.err  # no progress bar
    frames, _ = _read_video(out)
    source, _ = _read_video(demo_clip)
    assert len(frames) == 4 and len(jsonl.read_text().splitlines()) == 4
    diff = np.abs(frames[2].astype(float) - source[2].astype(float)).mean()
    assert diff < 8, diff  # just re-encoded, nothing drawn


def test_demo_source(ofer, tiny_models_dir, tmp_path):
    result = ofer("video", "demo:3", "-o", tmp_path / "d.avi", "--models", tiny_models_dir)
    assert result.code == 0, result.err
    assert len(_read_video(tmp_path / "d.avi")[0]) == 3


def test_endless_demo_needs_max_frames(ofer, one_line_error, tiny_models_dir, tmp_path):
    one_line_error(ofer("video", "demo", "-o", tmp_path / "d.avi", "--models", tiny_models_dir), "--max-frames")


# -- bad input -------------------------------------------------------------------------------------------------


def _truncated_mp4(demo_clip: Path, tmp: Path) -> Path:
    path = tmp / "truncated.mp4"
    path.write_bytes(demo_clip.read_bytes()[: demo_clip.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda clip, tmp: tmp / "missing.mp4", ["video not found", "missing.mp4"]),
        (lambda clip, tmp: (tmp / "empty.mp4").write_bytes(b"") and None or tmp / "empty.mp4", ["empty", "empty.mp4"]),
        (
            lambda clip, tmp: (tmp / "notes.mp4").write_text("just some text\n" * 50) and None or tmp / "notes.mp4",
            ["not a readable video", "notes.mp4"],
        ),
        (_truncated_mp4, ["truncated.mp4"]),
    ],
    ids=["missing", "empty", "not-a-video", "truncated-mp4"],
)
def test_bad_input_is_one_line(ofer, one_line_error, demo_clip, tiny_models_dir, tmp_path, make, fragments):
    path = make(demo_clip, tmp_path)
    result = ofer("video", path, "-o", tmp_path / "out.avi", "--models", tiny_models_dir)
    one_line_error(result, *fragments)
    assert not (tmp_path / "out.avi").exists()


def test_truncated_avi_plays_to_the_cut(ofer, tiny_models_dir, tmp_path):
    from ofer_live.io.demo import write_demo_clip

    clip = write_demo_clip(tmp_path / "clip.avi", n_frames=10, fps=10.0, size=(320, 240))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    out, jsonl = tmp_path / "out.avi", tmp_path / "out.jsonl"
    result = ofer("video", cut, "-o", out, "--jsonl", jsonl, "--models", tiny_models_dir)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    n = len(_read_video(out)[0])
    assert 2 <= n < 10
    assert len(jsonl.read_text().splitlines()) == n


def test_bad_input_in_a_subprocess_has_no_traceback(ofer_subprocess, one_line_error, tmp_path):
    bad = tmp_path / "fake.mp4"
    bad.write_bytes(b"\x00" * 1000)
    one_line_error(ofer_subprocess("video", bad, "-o", tmp_path / "o.avi"), "not a readable video")


# -- bad output ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        (lambda tmp: tmp / "no" / "such" / "dir" / "out.avi", ["does not exist"]),
        (lambda tmp: tmp / "a_file.txt" / "out.avi", ["is not a folder"]),
        (lambda tmp: tmp, ["output video path is a folder"]),
        (lambda tmp: tmp / "out.gif", ["unsupported video extension '.gif'"]),
    ],
    ids=["missing-folder", "parent-is-a-file", "output-is-a-folder", "bad-extension"],
)
def test_unwritable_output_fails_before_work(ofer, one_line_error, demo_clip, tmp_path, target, fragments):
    (tmp_path / "a_file.txt").write_text("x")
    # a models folder that does not exist proves the output is checked first
    result = ofer("video", demo_clip, "-o", target(tmp_path), "--models", tmp_path / "no-models")
    one_line_error(result, *fragments)


def test_unwritable_jsonl(ofer, one_line_error, demo_clip, tmp_path):
    result = ofer("video", demo_clip, "-o", tmp_path / "o.avi", "--jsonl", tmp_path / "nope" / "r.jsonl")
    one_line_error(result, "JSONL file", "does not exist")


def test_output_must_not_overwrite_input(ofer, one_line_error, tmp_path):
    from ofer_live.io.demo import write_demo_clip

    clip = write_demo_clip(tmp_path / "clip.avi", n_frames=2, fps=10.0, size=(160, 120))
    one_line_error(ofer("video", clip, "-o", clip), "would overwrite the input")
    assert clip.stat().st_size > 0
