"""FER+ / UTKFace / user-folder loaders on generated files (never ../shared)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ofer_live.contracts import LABELS
from ofer_live.errors import InputError
from ofer_live.training.data.fake import write_fake_ferplus, write_fake_utkface
from ofer_live.training.data.fer_plus import load_ferplus, majority_labels, soft_labels
from ofer_live.training.data.folders import kdef_label, load_folder_dataset, parse_label
from ofer_live.training.data.utk_face import is_heldout, list_utkface, parse_utk_name, read_rgb, split_utkface

# FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
VOTES = np.array(
    [
        [0, 8, 0, 0, 0, 0, 0, 0, 2, 0],  # happiness -> happy
        [6, 0, 0, 0, 0, 0, 0, 4, 0, 0],  # neutral
        [0, 0, 0, 0, 3, 3, 0, 0, 0, 0],  # tie anger/disgust -> dropped
        [1, 0, 0, 0, 0, 0, 0, 7, 0, 2],  # contempt majority -> dropped
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 9],  # NF -> dropped
        [0, 0, 0, 0, 0, 0, 0, 0, 6, 0],  # unknown -> dropped
        [0, 0, 4, 1, 0, 0, 5, 0, 0, 0],  # fear
        [0, 0, 0, 5, 2, 0, 0, 0, 0, 0],  # sadness -> sad
        [0, 0, 7, 0, 0, 0, 0, 0, 0, 0],  # surprise
        [0, 0, 0, 0, 6, 1, 0, 0, 0, 0],  # anger -> angry
        [0, 0, 0, 0, 0, 9, 0, 0, 0, 0],  # disgust
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # no votes -> dropped
    ],
    dtype=np.uint8,
)


def L(name: str) -> int:
    return LABELS.index(name)


def test_majority_vote_mapping():
    expected = [
        L("happy"),
        L("neutral"),
        -1,
        -1,
        -1,
        -1,
        L("fear"),
        L("sad"),
        L("surprise"),
        L("angry"),
        L("disgust"),
        -1,
    ]
    assert majority_labels(VOTES).tolist() == expected


def test_soft_labels_use_the_seven_emotions_only():
    soft = soft_labels(VOTES)
    assert soft.shape == (12, 7)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert soft[0, L("happy")] == 1.0  # the 2 'unknown' votes are ignored
    np.testing.assert_allclose(soft[6, [L("surprise"), L("sad"), L("fear")]], [0.4, 0.1, 0.5])
    np.testing.assert_allclose(soft[11], 1 / 7)  # no emotion votes: uniform


def test_majority_rejects_bad_shape():
    with pytest.raises(InputError, match="shape"):
        majority_labels(np.zeros((3, 8)))


def test_load_ferplus_split(tmp_path):
    write_fake_ferplus(tmp_path, n_train=20, n_valid=10)
    split = load_ferplus(tmp_path, "train")
    assert split.images.shape == (20, 48, 48) and split.images.dtype == np.uint8
    assert split.labels[:3].tolist() == [-1, -1, -1]  # two contempt majorities and a tie
    assert (split.labels[3:] >= 0).all()
    assert split.valid.sum() == 17 and len(split) == 20
    # the root may also be the ferplus/ folder itself
    assert len(load_ferplus(tmp_path / "ferplus", "valid")) == 10


def test_load_ferplus_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_ferplus(tmp_path, "train")
    with pytest.raises(InputError, match="unknown FER\\+ split"):
        load_ferplus(tmp_path, "test")
    (tmp_path / "ferplus").mkdir()
    np.savez(tmp_path / "ferplus" / "train.npz", images=np.zeros((2, 48, 48), np.uint8))
    with pytest.raises(InputError, match="'votes' is missing"):
        load_ferplus(tmp_path, "train")
    (tmp_path / "ferplus" / "valid.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable"):
        load_ferplus(tmp_path, "valid")


def test_utkface_listing_names_and_split(tmp_path):
    write_fake_utkface(tmp_path, n=12)
    paths = list_utkface(tmp_path)
    assert len(paths) == 12
    assert read_rgb(paths[0]).shape == (200, 200, 3)
    attrs = parse_utk_name("25_1_3_20170104.jpg")
    assert (attrs.age, attrs.gender, attrs.race) == (25, 1, 3)
    garbled = parse_utk_name("61_1_20170109142408075.jpg")  # the race field is missing in a few files
    assert (garbled.age, garbled.gender, garbled.race) == (61, 1, None)
    assert parse_utk_name("x.jpg").age is None
    train, held = split_utkface(paths, fraction=0.5)
    assert len(train) + len(held) == 12
    # the split is a pure function of the name
    assert [is_heldout(p.name, 0.5) for p in paths] == [p in held for p in paths]


def test_utkface_missing(tmp_path):
    with pytest.raises(InputError, match="UTKFace images not found"):
        list_utkface(tmp_path)


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((20, 20, 3), 128, np.uint8))


def test_class_folders_with_synonyms(tmp_path):
    for folder, n in (("Anger", 2), ("happiness", 3), ("surprised", 1), ("contempt", 2)):
        for i in range(n):
            _image(tmp_path / folder / f"{i}.png")
    data = load_folder_dataset(tmp_path)
    assert len(data) == 6  # contempt skipped
    assert data.counts()["angry"] == 2 and data.counts()["happy"] == 3 and data.counts()["surprise"] == 1


def test_numeric_schemes_and_kdef():
    assert parse_label("1", "rafdb") == L("surprise")
    assert parse_label("7", "rafdb") == L("neutral")
    assert parse_label("0", "affectnet") == L("neutral")
    assert parse_label("7", "affectnet") is None  # contempt
    assert parse_label("3") == L("happy")
    assert kdef_label("AF01ANS.JPG") == L("angry")
    assert kdef_label("BM21SUHR.JPG") == L("surprise")
    with pytest.raises(InputError, match="unknown label scheme"):
        parse_label("1", "ckplus")


def test_csv_dataset(tmp_path):
    _image(tmp_path / "img" / "a.jpg")
    _image(tmp_path / "img" / "b.jpg")
    _image(tmp_path / "img" / "c.jpg")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,label\nimg/a.jpg,happy\nimg/b.jpg,4\nimg/c.jpg,contempt\n", encoding="utf-8")
    data = load_folder_dataset(csv_path, "rafdb")
    assert [p.name for p in data.paths] == ["a.jpg", "b.jpg"]
    assert data.labels == (L("happy"), L("happy"))
    bad = tmp_path / "bad.csv"
    bad.write_text("img/missing.jpg,happy\n", encoding="utf-8")
    with pytest.raises(InputError, match="image not found"):
        load_folder_dataset(bad)
    with pytest.raises(InputError, match="no labelled images"):
        (tmp_path / "empty").mkdir()
        load_folder_dataset(tmp_path / "empty")
