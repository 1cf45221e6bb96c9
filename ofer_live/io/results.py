"""Results writers: JSON lines per frame (``ofer-live video``, GUI recordings) and CSV per image.

JSONL, one line per frame (schema of issue 2, part 8)::

    {"frame": 12, "time_s": 0.4, "faces": [{"track_id": 1, "box": [x, y, w, h], "label": "happy",
     "confidence": 0.87, "probs": {"angry": 0.01, ...}, "occluded_fraction": 0.23,
     "occlusion_grid": "0101...", "timings_ms": {"detect": 2.1, ..., "total": 9.8}}]}

``occlusion_grid`` is the G*G mask as '0'/'1' characters, row-major. ``timings_ms`` are the
frame's stage timings (the stages run on all faces of a frame as one batch). Each line is
flushed when written, so a killed process leaves every finished line on disk; close() fsyncs.

CSV (``ofer-live images``), one row per face, ``CSV_COLUMNS``. An image without a face gives one
row with ``face=-1, label=no_face``; an unreadable image one row with ``face=-1, label=error``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ofer_live.contracts import LABELS
from ofer_live.errors import OutputError
from ofer_live.io.paths import open_output
from ofer_live.types import FaceResult, FrameResult

CSV_COLUMNS: tuple[str, ...] = (
    "path",
    "face",
    "x",
    "y",
    "w",
    "h",
    "label",
    "confidence",
    *LABELS,
    "occluded_fraction",
    "occlusion_grid",
)
NO_FACE_LABEL = "no_face"
ERROR_LABEL = "error"
_PROB_DIGITS = 4
_W = TypeVar("_W", bound="_ResultsFile")


def face_result_to_record(
    face: FaceResult, labels: Sequence[str] = LABELS, timings_ms: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """One face -> the JSONL face object (plain Python types, rounded)."""
    return {
        "track_id": int(face.face.track_id),
        "box": [int(v) for v in face.face.box],
        "label": labels[face.label_index],
        "confidence": round(face.confidence, _PROB_DIGITS),
        "probs": {name: round(float(p), _PROB_DIGITS) for name, p in zip(labels, face.probs, strict=True)},
        "occluded_fraction": round(face.occluded_fraction, _PROB_DIGITS),
        "occlusion_grid": face.occlusion_grid_string(),
        "timings_ms": {k: round(float(v), 3) for k, v in (timings_ms or {}).items()},
    }


def frame_result_to_record(result: FrameResult, labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """FrameResult -> the JSONL record of one frame."""
    return {
        "frame": int(result.frame_index),
        "time_s": round(float(result.time_s), 6),
        "faces": [face_result_to_record(f, labels, result.timings_ms) for f in result.faces],
    }


class _ResultsFile:
    """A results file opened for writing (subclasses flush each record); close() fsyncs. Raises OutputError."""

    def __init__(self, path: str | Path, labels: Sequence[str], newline: str):
        self.path = Path(path)
        self.labels = tuple(labels)
        self._file = open_output(self.path, "w", what="results file", encoding="utf-8", newline=newline)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot finish results file {self.path}: {exc.strerror or exc}") from None
        finally:
            self._file.close()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlWriter(_ResultsFile):
    """Writes one JSON object per line, flushed per line; fsync on close. Raises OutputError."""

    def __init__(self, path: str | Path, labels: Sequence[str] = LABELS):
        super().__init__(path, labels, newline="\n")
        self.lines_written = 0

    def write(self, item: FrameResult | Mapping[str, Any]) -> None:
        """Write a FrameResult (converted with ``frame_result_to_record``) or a ready dict as one line."""
        record = frame_result_to_record(item, self.labels) if isinstance(item, FrameResult) else dict(item)
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        try:
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"cannot write results file {self.path}: {exc.strerror or exc}") from None
        self.lines_written += 1


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL results file (a last line cut by a crash is skipped)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


class CsvWriter(_ResultsFile):
    """The ``ofer-live images`` CSV: header, then rows flushed as they are written. Raises OutputError."""

    def __init__(self, path: str | Path, labels: Sequence[str] = LABELS):
        super().__init__(path, labels, newline="")
        self._csv = csv.writer(self._file)
        self.rows_written = 0
        self._write_row(CSV_COLUMNS)
        self.rows_written = 0

    def _write_row(self, row: Sequence[Any]) -> None:
        try:
            self._csv.writerow(row)
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"cannot write results file {self.path}: {exc.strerror or exc}") from None
        self.rows_written += 1

    def write_face(self, path: str | Path, face_index: int, face: FaceResult, box_scale: float = 1.0) -> None:
        """One row for one face. ``box_scale`` maps the box back to the original image (box / scale),
        for images that ``io.images.load_image`` shrank."""
        x, y, w, h = (round(v / box_scale) for v in face.face.box)
        self._write_row(
            [
                str(path),
                face_index,
                x,
                y,
                w,
                h,
                self.labels[face.label_index],
                f"{face.confidence:.4f}",
                *(f"{float(p):.4f}" for p in face.probs),
                f"{face.occluded_fraction:.4f}",
                face.occlusion_grid_string(),
            ]
        )

    def write_result(self, path: str | Path, result: FrameResult, box_scale: float = 1.0) -> int:
        """All faces of one image (or a no_face row when there is none) -> number of faces."""
        if not result.faces:
            self.write_no_face(path)
            return 0
        for i, face in enumerate(result.faces):
            self.write_face(path, i, face, box_scale)
        return len(result.faces)

    def write_no_face(self, path: str | Path) -> None:
        self._write_row(_empty_row(path, NO_FACE_LABEL, len(self.labels)))

    def write_error(self, path: str | Path) -> None:
        """The row of an unreadable input (the reason goes to stderr, not into the CSV)."""
        self._write_row(_empty_row(path, ERROR_LABEL, len(self.labels)))


def _empty_row(path: str | Path, label: str, n_labels: int) -> list[Any]:
    return [str(path), -1, "", "", "", "", label, "", *([""] * n_labels), "", ""]
