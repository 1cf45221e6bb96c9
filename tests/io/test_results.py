"""JSONL and CSV writers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ofer_live.contracts import LABELS
from ofer_live.errors import OutputError
from ofer_live.io.results import (
    CSV_COLUMNS,
    CsvWriter,
    JsonlWriter,
    frame_result_to_record,
    read_jsonl,
)
from ofer_live.types import Face, FaceResult, FrameResult

G, S = 4, 32


def make_face_result(track_id: int = 3, box=(10, 20, 64, 64)) -> FaceResult:
    mask = np.zeros((G, G), bool)
    mask[0, 1] = mask[3, 3] = True
    probs = np.array([0.05, 0.05, 0.1, 0.6, 0.1, 0.05, 0.05], np.float32)
    face = Face(
        box=box,
        keypoints=np.zeros((6, 2), np.float32),
        score=0.9,
        track_id=track_id,
        aligned=np.zeros((S, S, 3), np.uint8),
        frame_to_face=np.eye(2, 3, dtype=np.float32),
        face_to_frame=np.eye(2, 3, dtype=np.float32),
    )
    return FaceResult(
        face=face,
        patch_score=mask.astype(np.float32) * 2,
        mask=mask,
        cam=np.zeros((G, G), np.float32),
        reconstruction=np.zeros((S, S, 3), np.uint8),
        probs=probs,
    )


def make_frame_result(n_faces: int = 1) -> FrameResult:
    return FrameResult(
        frame_index=12,
        time_s=0.4,
        frame_shape=(480, 640),
        faces=tuple(make_face_result(track_id=i + 1) for i in range(n_faces)),
        timings_ms={
            "detect": 2.0,
            "align": 0.5,
            "occlusion": 3.0,
            "reconstruct": 4.0,
            "expression": 2.5,
            "total": 12.0,
        },
    )


def test_record_schema_matches_issue_2():
    record = frame_result_to_record(make_frame_result())
    assert list(record) == ["frame", "time_s", "faces"]
    assert record["frame"] == 12 and record["time_s"] == 0.4
    face = record["faces"][0]
    assert list(face) == [
        "track_id",
        "box",
        "label",
        "confidence",
        "probs",
        "occluded_fraction",
        "occlusion_grid",
        "timings_ms",
    ]
    assert face["track_id"] == 1 and face["box"] == [10, 20, 64, 64]
    assert face["label"] == "happy" and face["confidence"] == pytest.approx(0.6)
    assert list(face["probs"]) == list(LABELS)
    assert face["occlusion_grid"] == "0100000000000001" and face["occluded_fraction"] == 0.125
    assert face["timings_ms"]["total"] == 12.0
    json.dumps(record)  # plain Python types only
    assert frame_result_to_record(make_frame_result(0))["faces"] == []


def test_jsonl_lines_are_on_disk_before_close(tmp_path):
    path = tmp_path / "out.jsonl"
    writer = JsonlWriter(path)
    writer.write(make_frame_result())
    writer.write({"frame": 13, "time_s": 0.5, "faces": []})
    assert len(path.read_text().splitlines()) == 2  # flushed per line
    writer.close()
    writer.close()
    records = read_jsonl(path)
    assert [r["frame"] for r in records] == [12, 13] and writer.lines_written == 2


def test_read_jsonl_skips_a_cut_last_line(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text('{"frame": 0, "time_s": 0, "faces": []}\n{"frame": 1, "ti')
    assert [r["frame"] for r in read_jsonl(path)] == [0]


def test_csv_rows(tmp_path):
    path = tmp_path / "out.csv"
    with CsvWriter(path) as writer:
        assert writer.write_result("a.png", make_frame_result(2)) == 2
        writer.write_result("empty.png", make_frame_result(0))
        writer.write_error("broken.png")
        writer.write_face("big.png", 0, make_face_result(box=(40, 80, 100, 100)), box_scale=0.5)
    text = path.read_text()
    assert text.splitlines()[0] == (
        "path,face,x,y,w,h,label,confidence,angry,disgust,fear,happy,sad,surprise,neutral,"
        "occluded_fraction,occlusion_grid"
    )
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["path"], r["face"], r["label"]) for r in rows] == [
        ("a.png", "0", "happy"),
        ("a.png", "1", "happy"),
        ("empty.png", "-1", "no_face"),
        ("broken.png", "-1", "error"),
        ("big.png", "0", "happy"),
    ]
    assert rows[0]["happy"] == "0.6000" and rows[0]["occlusion_grid"] == "0100000000000001"
    assert (rows[4]["x"], rows[4]["y"], rows[4]["w"]) == ("80", "160", "200")  # mapped back to the original


@pytest.mark.parametrize("cls", [JsonlWriter, CsvWriter])
def test_unwritable_results_paths(tmp_path, cls):
    with pytest.raises(OutputError, match="results file folder does not exist"):
        cls(tmp_path / "missing" / "out.txt")
    with pytest.raises(OutputError, match="results file path is a folder"):
        cls(tmp_path)
