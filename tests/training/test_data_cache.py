"""Caches (compact face stores, get-or-build, alignment fallback) and the augmented datasets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ofer_live.training.data import cache
from ofer_live.training.data.datasets import AugmentConfig, FaceSource, OccludedFaces, augment_face
from ofer_live.training.data.fake import draw_face, write_fake_data
from ofer_live.training.data.occlusion_synth import OcclusionSynth, template_layout


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_fake_data(tmp_path_factory.mktemp("data"), n_train=20, n_valid=10, n_utk=12)


@pytest.fixture
def settings(data_root, tmp_path):
    return cache.CacheSettings(data_root=data_root, cache_dir=tmp_path / "cache", align="none")


def faces(n=5, size=24, color=True):
    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(draw_face(size, i % 7, rng, color=color), (5, 5), 0) for i in range(n)]


@pytest.mark.parametrize("encoding", ["raw", "png", "jpeg"])
def test_face_store_round_trip(encoding):
    items = faces()
    store = cache.FaceStore.encode(items, encoding, quality=95)
    again = cache.FaceStore.from_arrays(store.to_arrays())
    assert len(again) == 5 and again.shape == (24, 24, 3)
    for i, face in enumerate(items):
        got = again[i]
        assert got.shape == (24, 24, 3) and got.dtype == np.uint8
        if encoding == "jpeg":
            assert np.abs(got.astype(int) - face).mean() < 6
        else:
            np.testing.assert_array_equal(got, face)
    assert again.get(0, 48).shape == (48, 48, 3)
    assert again.batch([0, 2], 12).shape == (2, 12, 12, 3)


def test_gray_store_replicates_channels():
    gray = [f[..., 0] for f in faces(3)]
    store = cache.FaceStore.encode(gray, "png")
    assert store.channels == 1
    out = store[1]
    assert out.shape == (24, 24, 3) and (out[..., 0] == out[..., 2]).all()
    np.testing.assert_array_equal(out[..., 0], gray[1])


def test_build_and_reuse_caches(settings):
    fer = cache.ferplus(settings, "train")
    assert len(fer) == 20 and fer.store.shape == (64, 64, 1)
    assert fer.labels.dtype == np.int64 and (fer.labels[:3] == -1).all()
    assert fer.meta["align"] == "none" and fer.meta["cache_version"] == cache.CACHE_VERSION
    np.testing.assert_allclose(fer.soft.sum(axis=1), 1, atol=1e-2)
    path = cache.ferplus_cache_path(settings.cache_dir, "train")
    mtime = path.stat().st_mtime_ns
    cache.ferplus(settings, "train")
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    utk = cache.utkface(settings, 32)
    assert utk.store.shape == (32, 32, 3) and len(utk) == 12
    assert len(utk.indices(True)) + len(utk.indices(False)) == 12
    bank = cache.occluders(settings)
    assert "face_masks" in bank.kinds


def test_cache_without_source_data_is_used(settings, tmp_path):
    cache.ferplus(settings, "valid")
    moved = cache.CacheSettings(data_root=tmp_path / "absent", cache_dir=settings.cache_dir, align="none")
    assert len(cache.ferplus(moved, "valid")) == 10  # the carried cache suffices


def test_align_mode_change_rebuilds(settings, monkeypatch):
    cache.ferplus(settings, "valid")
    path = cache.ferplus_cache_path(settings.cache_dir, "valid")
    assert cache.is_current(path, "none") and not cache.is_current(path, "detect")


class FakeAligner:
    """Finds 'faces' only in some images and returns shifted keypoints for one outlier."""

    def keypoints(self, rgb):
        marker = int(rgb[0, 0, 0])
        if marker == 0:
            return None
        kps = np.array([[10, 12], [20, 12], [15, 18], [15, 22], [6, 14], [24, 14]], np.float32)
        return kps * (3.0 if marker == 2 else 1.0)

    def align(self, rgb, keypoints, size):
        out = np.zeros((size, size, 3), np.uint8)
        out[..., 0] = int(keypoints[0, 0])  # remember which keypoints were used
        return out


def test_align_all_falls_back_to_median():
    images = [np.full((32, 32, 3), v, np.uint8) for v in (1, 1, 0, 2, 1)]
    out, own, stats = cache.align_all(lambda i: images[i], len(images), 16, FakeAligner(), gray=False)
    assert own.tolist() == [True, True, False, False, True]
    assert stats.as_dict() == {"total": 5, "detected": 3, "fallback": 2}
    assert [int(o[0, 0, 0]) for o in out] == [10, 10, 10, 10, 10]  # the outlier used the median keypoints


def test_occluded_faces_deterministic_per_epoch(settings):
    fer = cache.ferplus(settings, "train")
    bank = cache.occluders(settings)
    source = FaceSource("fer", fer.store, np.arange(3, 20), fer.labels, fer.soft)
    synth = OcclusionSynth(4, bank, template_layout())
    ds = OccludedFaces([source], 32, 4, synth, AugmentConfig(), seed=7)
    a = ds[5]
    assert a["face"].shape == (32, 32, 3) and a["coverage"].shape == (4, 4)
    assert a["label"] == fer.labels[8] and a["soft"].shape == (7,)
    np.testing.assert_array_equal(ds[5]["face"], a["face"])  # same (seed, epoch, index) -> same item
    ds.set_epoch(1)
    changed = [
        not np.array_equal(ds[i]["face"], OccludedFaces([source], 32, 4, synth, AugmentConfig(), 7)[i]["face"])
        for i in range(6)
    ]
    assert any(changed)
    fixed = OccludedFaces([source], 32, 4, synth, None, seed=7, fixed=True)
    first = fixed[2]["face"]
    fixed.set_epoch(3)
    np.testing.assert_array_equal(fixed[2]["face"], first)


def test_augment_face_keeps_shape_and_is_seeded():
    f = draw_face(32, 1, np.random.default_rng(0), color=True)
    a = augment_face(f, np.random.default_rng(1), AugmentConfig(grayscale_p=1.0))
    b = augment_face(f, np.random.default_rng(1), AugmentConfig(grayscale_p=1.0))
    np.testing.assert_array_equal(a, b)
    assert a.shape == f.shape and (a[..., 0] == a[..., 1]).all()
