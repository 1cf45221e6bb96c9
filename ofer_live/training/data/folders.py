"""User expression data sets (RAF-DB, AffectNet, KDEF, ...): class sub-folders or a CSV of path,label.

Two layouts are read:
- a folder with one sub-folder per class (``angry/``, ``happy/``, ... or numbers, see ``scheme``);
- a CSV file with two columns ``path,label`` (an optional header row; paths relative to the CSV).

Labels may be names (synonyms such as ``anger``, ``happiness``, ``fearful``, ``surprised`` are
accepted; ``contempt`` and unknown names are skipped with a count in the log) or numbers, read
with the numbering ``scheme``:
- ``fer2013`` (default): 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral;
- ``rafdb``: 1 surprise, 2 fear, 3 disgust, 4 happy, 5 sad, 6 angry, 7 neutral;
- ``affectnet``: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 angry, 7 contempt (skipped).
KDEF file names (``AF01ANS.JPG``) carry the expression in characters 5-6; ``scheme='kdef'`` reads
the label from the file name and ignores folders.

Images in these sets are not aligned to our template: ``cache.build_folder_cache`` runs the
face detector and ``face.align`` on each one.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ofer_live.contracts import LABELS
from ofer_live.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

SYNONYMS: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "an": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "af": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "ha": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
    "neutral": "neutral",
    "ne": "neutral",
    "calm": "neutral",
}
NUMBERING: dict[str, dict[int, str | None]] = {
    "fer2013": dict(enumerate(LABELS)),
    "rafdb": {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"},
    "affectnet": {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry", 7: None},
}
SCHEMES: tuple[str, ...] = (*NUMBERING, "kdef")


@dataclass(frozen=True)
class LabeledImages:
    """Image paths with FER2013 class indices (contracts.LABELS order)."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        c = Counter(self.labels)
        return {LABELS[i]: c.get(i, 0) for i in range(len(LABELS))}


def parse_label(value: str, scheme: str = "fer2013") -> int | None:
    """A label cell or folder name -> FER2013 class index, or None when it is not one of the 7 classes."""
    if scheme not in SCHEMES:
        raise InputError(f"unknown label scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    text = value.strip().lower()
    if text.lstrip("-").isdigit():
        numbering = NUMBERING["fer2013" if scheme == "kdef" else scheme]
        name = numbering.get(int(text))
        return None if name is None else LABELS.index(name)
    name = SYNONYMS.get(text)
    return None if name is None else LABELS.index(name)


def kdef_label(filename: str) -> int | None:
    """KDEF name ``AF01ANS.JPG`` -> class of ``AN`` (angry); None when the name does not parse."""
    stem = Path(filename).stem
    if len(stem) < 6:
        return None
    return parse_label(stem[4:6], "fer2013")


def load_folder_dataset(path: str | Path, scheme: str = "fer2013") -> LabeledImages:
    """Read a class-folder tree, a KDEF tree (``scheme='kdef'``) or a ``path,label`` CSV."""
    path = Path(path)
    if scheme not in SCHEMES:
        raise InputError(f"unknown label scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if path.is_file():
        return _load_csv(path, scheme)
    if not path.is_dir():
        raise InputError(f"expression data set not found: {path}")
    paths: list[Path] = []
    labels: list[int] = []
    skipped = Counter()
    if scheme == "kdef":
        for file in sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            label = kdef_label(file.name)
            if label is None:
                skipped[file.name[4:6]] += 1
                continue
            paths.append(file)
            labels.append(label)
    else:
        for folder in sorted(p for p in path.iterdir() if p.is_dir()):
            label = parse_label(folder.name, scheme)
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if label is None:
                skipped[folder.name] += len(files)
                continue
            paths.extend(files)
            labels.extend([label] * len(files))
    if skipped:
        log.info("%s: skipped images of classes %s", path, dict(skipped))
    if not paths:
        raise InputError(f"{path}: no labelled images found (expected class sub-folders such as angry/, happy/ ...)")
    return LabeledImages(tuple(paths), tuple(labels), str(path))


def _load_csv(path: Path, scheme: str) -> LabeledImages:
    paths: list[Path] = []
    labels: list[int] = []
    skipped = 0
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read CSV ({exc})") from None
    for line_no, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise InputError(f"{path}:{line_no}: expected 'path,label', got {','.join(row)!r}")
        if line_no == 1 and row[0].strip().lower() in ("path", "file", "filename", "image", "subdirectory"):
            continue
        label = kdef_label(row[0]) if scheme == "kdef" else parse_label(row[1], scheme)
        if label is None:
            skipped += 1
            continue
        file = Path(row[0].strip())
        paths.append(file if file.is_absolute() else path.parent / file)
        labels.append(label)
    if skipped:
        log.info("%s: skipped %d rows whose label is not one of the 7 classes", path, skipped)
    if not paths:
        raise InputError(f"{path}: no labelled rows found")
    missing = [p for p in paths[:50] if not p.is_file()]
    if missing:
        raise InputError(f"{path}: image not found: {missing[0]}")
    return LabeledImages(tuple(paths), tuple(labels), str(path))
