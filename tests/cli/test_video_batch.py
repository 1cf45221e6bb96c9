"""`ofer-live video IN1 IN2 ... -o OUTDIR/`: one video and one JSONL per input, a corrupt input skipped, exit 2,
shards that add up to one run, reruns that skip finished inputs, and nothing overwritten without --overwrite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from ofer_live.commands._batch_video import is_finished, output_stem, parse_shard, plan
from ofer_live.errors import UserError


@pytest.fixture(scope="module")
def four_inputs(tmp_path_factory, demo_clip) -> list[Path]:
    """Three short clips (copies of the demo clip) and one corrupt file."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = []
    for name in ("a", "b", "c"):
        paths.append(folder / f"{name}.mp4")
        shutil.copy(demo_clip, paths[-1])
    bad = folder / "broken.mp4"
    bad.write_bytes(b"\x00\x01 not a video" * 100)
    return [paths[0], bad, paths[1], paths[2]]


def _frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _outputs(folder: Path) -> dict[str, object]:
    """File name -> bytes (videos) or records without the timings (JSONL: the wall-clock timings differ)."""
    out: dict[str, object] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".jsonl":
            records = [json.loads(line) for line in p.read_text().splitlines()]
            for record in records:
                for face in record.get("faces", []):
                    face.pop("timings_ms")
            out[p.name] = records
        else:
            out[p.name] = p.read_bytes()
    return out


def test_four_inputs_one_corrupt(ofer, four_inputs, tiny_models_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = ofer("video", *four_inputs, "-o", out, "--models", tiny_models_dir, "--max-frames", 6)
    assert result.code == 2, result.err
    assert sorted(p.name for p in out.iterdir()) == ["a.avi", "a.jsonl", "b.avi", "b.jsonl", "c.avi", "c.jsonl"]
    named = [line for line in result.err.splitlines() if "broken.mp4" in line]
    assert len(named) == 1 and named[0].startswith("ofer-live: ")
    assert "3 annotated, 0 skipped (finished earlier), 1 failed" in result.out
    for name in "abc":
        lines = (out / f"{name}.jsonl").read_text().splitlines()
        assert len(lines) == 7 and _frames(out / f"{name}.avi") == 6
        assert json.loads(lines[-1]) == {
            "end": True,
            "input": str(four_inputs["abc".index(name) + (name != "a")]),
            "frames": 6,
        }
    # A rerun skips what is finished and still names the bad input.
    again = ofer("video", *four_inputs, "-o", out, "--models", tiny_models_dir, "--max-frames", 6)
    assert again.code == 2 and "0 annotated, 3 skipped (finished earlier), 1 failed" in again.out


def test_two_shards_write_what_one_run_writes(ofer, four_inputs, tiny_models_dir, tmp_path):
    good = [four_inputs[0], four_inputs[2], four_inputs[3]]
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    one.mkdir()
    sharded.mkdir()
    assert ofer("video", *good, "-o", one, "--models", tiny_models_dir, "--max-frames", 4).code == 0
    first = ofer("video", *good, "-o", sharded, "--models", tiny_models_dir, "--max-frames", 4, "--shard", "1/2")
    second = ofer(
        "video", *good, "-o", sharded, "--models", tiny_models_dir, "--max-frames", 4, "--shard", "2/2", "--jobs", 2
    )
    assert first.code == 0 and second.code == 0
    assert "2 annotated" in first.out and "1 annotated" in second.out
    assert _outputs(one) == _outputs(sharded)


def test_cut_off_run_is_redone_and_foreign_files_are_kept(ofer, four_inputs, tiny_models_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.partial.avi").write_bytes(b"cut off")  # what a killed run leaves: this command's own
    (out / "b.avi").write_bytes(b"someone else's file")  # not finished by this command
    result = ofer("video", four_inputs[0], four_inputs[2], "-o", out, "--models", tiny_models_dir, "--max-frames", 3)
    assert result.code == 2
    assert (out / "a.avi").is_file() and not (out / "a.partial.avi").exists()
    assert (out / "b.avi").read_bytes() == b"someone else's file" and "--overwrite" in result.err
    forced = ofer(
        "video",
        four_inputs[0],
        four_inputs[2],
        "-o",
        out,
        "--models",
        tiny_models_dir,
        "--max-frames",
        3,
        "--overwrite",
    )
    assert forced.code == 0 and _frames(out / "b.avi") == 3


def test_planning_rules(tmp_path):
    assert parse_shard(None) == (1, 1) and parse_shard("2/8") == (2, 8)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)
    assert output_stem("dir/clip.mp4") == "clip" and output_stem("demo:30") == "demo_30"
    inputs = [f"v{i}.mp4" for i in range(7)]
    shards = [plan(inputs, tmp_path, (k, 3)) for k in (1, 2, 3)]
    assert sorted(j.input for s in shards for j in s) == sorted(inputs)
    assert [j.input for j in shards[1]] == ["v1.mp4", "v4.mp4"]
    with pytest.raises(UserError, match="would both write clip.avi"):
        plan(["x/clip.mp4", "y/clip.mp4"], tmp_path, (1, 1))
    job = plan(["v.mp4"], tmp_path, (1, 1))[0]
    assert not is_finished(job)
    job.video.write_bytes(b"x")
    job.jsonl.write_text('{"frame": 0}\n{"end": true, "input": "v.mp4", "frames": 1}\n')
    assert is_finished(job)
    job.jsonl.write_text('{"frame": 0}\n')
    assert not is_finished(job)


def test_batch_only_flags(ofer, one_line_error, demo_clip, tiny_models_dir, tmp_path):
    one_line_error(
        ofer("video", demo_clip, "-o", tmp_path / "x.avi", "--jobs", 2, "--models", tiny_models_dir),
        "--jobs applies to several inputs",
    )
    out = tmp_path / "d"
    out.mkdir()
    one_line_error(
        ofer("video", demo_clip, demo_clip, "-o", out, "--jsonl", tmp_path / "r.jsonl", "--models", tiny_models_dir),
        "--jsonl is for one input",
    )
