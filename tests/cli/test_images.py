"""`ofer-live images`: files and folders -> CSV; no-face and error rows; exit code and summary."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from ofer_live.contracts import LABELS

COLUMNS = ["path", "face", "x", "y", "w", "h", "label", "confidence", *LABELS, "occluded_fraction", "occlusion_grid"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


@pytest.fixture
def image_dir(tmp_path, astronaut_bgr) -> Path:
    root = tmp_path / "images"
    (root / "nested" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(root / "face.jpg"), astronaut_bgr)
    cv2.imwrite(str(root / "nested" / "gray.png"), cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(root / "nested" / "rgba.png"), cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(root / "nested" / "deeper" / "deep16.png"), astronaut_bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(root / "blank.png"), np.full((120, 160, 3), 200, np.uint8))
    cv2.imwrite(str(root / "one_pixel.png"), np.zeros((1, 1, 3), np.uint8))
    (root / "notes.txt").write_text("not an image, and not picked up from a folder")
    return root


def test_folder_recursive(ofer, image_dir, tiny_models_dir, tmp_path):
    out = tmp_path / "results.csv"
    result = ofer("images", image_dir, "--out", out, "--models", tiny_models_dir)
    assert result.code == 0, result.err
    rows = _rows(out)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"face.jpg", "gray.png", "rgba.png", "deep16.png", "blank.png", "one_pixel.png"}
    for name in ("face.jpg", "gray.png", "rgba.png", "deep16.png"):
        row = by_name[name]
        assert row["face"] == "0" and row["label"] in LABELS
        assert sum(float(row[k]) for k in LABELS) == pytest.approx(1.0, abs=2e-3)
        assert len(row["occlusion_grid"]) == 16
        x, y, w, h = (int(row[k]) for k in "xywh")
        assert 100 < x < 350 and 30 < y < 250 and 50 < w < 250  # the astronaut's face in a 512x512 photo
    for name in ("blank.png", "one_pixel.png"):
        assert by_name[name]["face"] == "-1" and by_name[name]["label"] == "no_face"
    assert "6 input(s)" in result.out and "0 failed" in result.out


def test_unreadable_inputs_are_reported_and_the_run_goes_on(ofer, image_dir, tiny_models_dir, tmp_path):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")
    (image_dir / "empty.jpg").write_bytes(b"")
    empty_folder = tmp_path / "empty_folder"
    empty_folder.mkdir()
    out = tmp_path / "results.csv"
    result = ofer(
        "images",
        image_dir / "face.jpg",
        image_dir / "broken.png",
        tmp_path / "missing.png",
        image_dir / "empty.jpg",
        empty_folder,
        "--out",
        out,
        "--models",
        tiny_models_dir,
    )
    assert result.code == 2
    assert "Traceback" not in result.err
    rows = _rows(out)
    labels = {Path(r["path"]).name: r["label"] for r in rows}
    assert labels["face.jpg"] in LABELS
    assert labels["broken.png"] == labels["missing.png"] == labels["empty.jpg"] == labels["empty_folder"] == "error"
    assert all(r["face"] == "-1" for r in rows if r["label"] == "error")
    for fragment in ("broken.png", "missing.png", "empty.jpg", "empty_folder"):
        assert any(fragment in line for line in result.err.splitlines()), fragment
    assert "4 failed" in result.out


def test_aligned_faces(ofer, tiny_models_dir, tmp_path, astronaut_bgr):
    crop = astronaut_bgr[40:240, 150:350]  # a rough face crop, 200x200
    cv2.imwrite(str(tmp_path / "crop.png"), crop)
    cv2.imwrite(str(tmp_path / "gray48.png"), cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48)))
    cv2.imwrite(str(tmp_path / "wide.png"), np.zeros((40, 100, 3), np.uint8))
    out = tmp_path / "aligned.csv"
    result = ofer(
        "images",
        tmp_path / "crop.png",
        tmp_path / "gray48.png",
        tmp_path / "wide.png",
        "--aligned",
        "--out",
        out,
        "--models",
        tiny_models_dir,
    )
    assert result.code == 0, result.err
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert [rows["crop.png"][k] for k in "xywh"] == ["0", "0", "200", "200"]
    assert [rows["gray48.png"][k] for k in "xywh"] == ["0", "0", "48", "48"]
    assert [rows["wide.png"][k] for k in "xywh"] == ["30", "0", "40", "40"]  # the centre square
    assert all(r["face"] == "0" and r["label"] in LABELS for r in rows.values())
    assert "3 face(s) (2 aligned, 1 centre-cropped)" in result.out  # the black image has no face to align


def test_unwritable_csv(ofer, one_line_error, image_dir, tmp_path):
    result = ofer("images", image_dir, "--out", tmp_path / "missing" / "r.csv", "--models", tmp_path / "nope")
    one_line_error(result, "CSV file", "does not exist")
