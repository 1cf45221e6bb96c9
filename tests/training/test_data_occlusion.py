"""Occluder loading and synthetic occlusion: seeded, with exact per-patch ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from ofer_live.errors import InputError
from ofer_live.training.data.fake import draw_face, write_fake_occluders
from ofer_live.training.data.occluders import (
    Occluder,
    OccluderBank,
    load_occluders,
    pack_occluders,
    remove_white_background,
    unpack_occluders,
)
from ofer_live.training.data.occlusion_synth import (
    CamOcclusion,
    FaceLayout,
    OcclusionSynth,
    cam_patch_mask,
    fill_pixels,
    irregular_mask,
    paste_occluder,
    paste_to_coverage,
    patch_coverage,
    patch_labels,
    patch_mask_to_pixels,
    procedural_occluder,
    random_patch_mask,
    template_layout,
)

S, G = 32, 4


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("occ")
    write_fake_occluders(root)
    return load_occluders(root)


@pytest.fixture(scope="module")
def layout():
    return template_layout()


def face(seed=0, color=True):
    return draw_face(S, 3, np.random.default_rng(seed), color=color)


def test_load_occluders_kinds_alpha_and_anchors(bank):
    assert set(bank.kinds) == {"sunglasses", "eyeglasses", "scarves", "objects", "masks", "face_masks"}
    for occ in bank:
        assert occ.rgba.dtype == np.uint8 and occ.rgba.shape[2] == 4
        assert occ.rgba[..., 3].max() == 255
    jpg = bank.by_kind("masks")[0]  # RGB on white: the background became transparent
    assert jpg.rgba[0, 0, 3] == 0 and jpg.rgba[jpg.rgba.shape[0] // 2, jpg.rgba.shape[1] // 2, 3] == 255
    fm = bank.by_kind("face_masks")
    assert all(o.anchors is not None and o.anchors.shape == (6, 2) for o in fm)
    assert all(o.placement == "face_mask" for o in fm)
    assert bank.by_kind("sunglasses")[0].placement == "eyes"
    assert bank.by_kind("objects")[0].placement == "anywhere"


def test_split_and_pack_round_trip(bank):
    train, held = bank.split(["scarves", "objects"])
    assert set(held.kinds) == {"scarves", "objects"}
    assert not set(train.kinds) & set(held.kinds)
    assert len(train) + len(held) == len(bank)
    with pytest.raises(InputError, match="not found"):
        bank.split(["hats"])
    again = unpack_occluders(pack_occluders(bank))
    assert [o.name for o in again] == [o.name for o in bank]
    for a, b in zip(again, bank, strict=True):
        np.testing.assert_array_equal(a.rgba, b.rgba)
        assert (a.anchors is None) == (b.anchors is None)


def test_remove_white_background_keeps_inner_white():
    img = np.full((20, 20, 3), 255, np.uint8)
    img[5:15, 5:15] = (10, 10, 10)
    img[9:11, 9:11] = 255  # white inside the object, not connected to the border
    rgba = remove_white_background(img)
    assert rgba[0, 0, 3] == 0 and rgba[10, 10, 3] == 255


def test_patch_coverage_is_exact():
    alpha = np.zeros((S, S), np.float32)
    alpha[0:8, 0:8] = 1.0  # patch (0, 0) fully
    alpha[8:12, 8:16] = 1.0  # half of patch (1, 1)
    alpha[24:32, 24:32] = 0.25  # a quarter-opaque patch (3, 3)
    cov = patch_coverage(alpha, G)
    expected = np.zeros((G, G), np.float32)
    expected[0, 0], expected[1, 1], expected[3, 3] = 1.0, 0.5, 0.25
    np.testing.assert_allclose(cov, expected)
    np.testing.assert_array_equal(patch_labels(cov), (expected >= 0.5).astype(np.float32))
    with pytest.raises(ValueError):
        patch_coverage(np.zeros((30, 30)), G)


def test_random_patch_mask_exact_count_and_seeded():
    a = random_patch_mask(14, 0.3, np.random.default_rng(5))
    b = random_patch_mask(14, 0.3, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.sum() == round(0.3 * 196)
    assert random_patch_mask(14, 0.0, np.random.default_rng(0)).sum() == 0
    px = patch_mask_to_pixels(a, 112)
    np.testing.assert_array_equal(patch_coverage(px, 14), a)


def test_cam_patch_mask_hides_the_top_patches():
    cam = np.arange(16, dtype=np.float32).reshape(4, 4)
    mask = cam_patch_mask(cam, 4, 0.25)
    assert mask.sum() == 4 and mask.reshape(-1)[-4:].sum() == 4
    # a finer CAM is averaged onto the grid
    fine = np.kron(cam, np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(cam_patch_mask(fine, 4, 0.25), mask)
    occl = CamOcclusion(lambda faces: np.stack([cam] * len(faces)), 4)
    masks = occl(np.zeros((3, S, S, 3), np.uint8), 0.5)
    assert masks.shape == (3, 4, 4) and (masks.sum(axis=(1, 2)) == 8).all()


def test_irregular_mask_seeded_and_in_range():
    a = irregular_mask(64, np.random.default_rng(3), (0.15, 0.35))
    b = irregular_mask(64, np.random.default_rng(3), (0.15, 0.35))
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 1.0}
    covs = [irregular_mask(64, np.random.default_rng(i), (0.15, 0.35)).mean() for i in range(20)]
    assert 0.15 <= np.median(covs) <= 0.35


def test_fill_modes_touch_only_the_mask():
    f = face()
    alpha = np.zeros((S, S), np.float32)
    alpha[:8] = 1.0
    for mode in ("black", "gray", "noise", "color", "blur"):
        out = fill_pixels(f, alpha, np.random.default_rng(0), mode)
        np.testing.assert_array_equal(out[8:], f[8:])
    assert (fill_pixels(f, alpha, np.random.default_rng(0), "black")[:8] == 0).all()


def test_paste_occluder_seeded_and_ground_truth_matches_pixels(bank, layout):
    f = face()
    for occ in bank:
        out1, a1 = paste_occluder(f, occ, layout, np.random.default_rng(11))
        out2, a2 = paste_occluder(f, occ, layout, np.random.default_rng(11))
        np.testing.assert_array_equal(out1, out2)
        np.testing.assert_array_equal(a1, a2)
        assert a1.shape == (S, S) and 0 <= a1.min() and a1.max() <= 1
        assert a1.sum() > 0, occ.name
        # pixels outside the alpha are untouched
        np.testing.assert_array_equal(out1[a1 == 0], f[a1 == 0])


def test_paste_places_by_kind(bank):
    layout = FaceLayout(
        np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.5, 0.78], [0.14, 0.45], [0.86, 0.45]], np.float32)
    )
    size = 64
    f = draw_face(size, 0, np.random.default_rng(0), color=True)
    glasses = bank.by_kind("sunglasses")[0]
    _, a = paste_occluder(f, glasses, layout, np.random.default_rng(0))
    ys = np.nonzero(a > 0.5)[0]
    assert abs(ys.mean() / size - 0.43) < 0.1  # on the eyes
    mask = bank.by_kind("face_masks")[0]
    _, a = paste_occluder(f, mask, layout, np.random.default_rng(0))
    ys = np.nonzero(a > 0.5)[0]
    assert ys.mean() / size > 0.6  # on the lower face


def test_anywhere_placement_follows_the_configured_centre_range(layout):
    from ofer_live.training.data.occlusion_synth import PasteConfig

    size = 64
    f = draw_face(size, 0, np.random.default_rng(0), color=True)
    blob = np.zeros((16, 16, 4), np.uint8)
    blob[6:10, 6:10] = 255  # a small opaque square at the cut-out's centre
    occ = Occluder(kind="objects", name="square", rgba=blob)
    right = PasteConfig(anywhere_center_x=(0.9, 0.95), anywhere_center_y=(0.5, 0.5), flip_p=0.0, scale=(1.0, 1.0))
    for seed in range(5):
        _, default_alpha = paste_occluder(f, occ, layout, np.random.default_rng(seed))
        _, a = paste_occluder(f, occ, layout, np.random.default_rng(seed), right)
        xs = np.nonzero(a > 0.5)[1] / size
        assert 0.85 < xs.mean() < 1.0  # on the crop's right edge, where the default range never reaches
        assert np.nonzero(default_alpha > 0.5)[1].mean() / size < 0.85


def test_gray_faces_get_gray_occluders(bank, layout):
    from ofer_live.training.data.occlusion_synth import PasteConfig, is_gray

    f = face(color=False)
    out, _ = paste_occluder(
        f, bank.by_kind("objects")[0], layout, np.random.default_rng(0), PasteConfig(gray_on_gray_face_p=1.0)
    )
    assert is_gray(out)


def test_paste_to_coverage_reaches_the_target(bank, layout):
    covs = []
    for i in range(8):
        out, alpha, names = paste_to_coverage(face(i), bank, layout, np.random.default_rng(i), target=0.25)
        assert names and out.shape == (S, S, 3)
        covs.append(alpha.mean())
    assert 0.15 <= np.mean(covs) <= 0.35


def test_procedural_occluder():
    occ = procedural_occluder(np.random.default_rng(0), 48)
    assert isinstance(occ, Occluder) and occ.kind == "procedural" and occ.rgba.shape == (48, 48, 4)
    assert 0 < occ.coverage < 1


def test_synth_mixture_exact_and_seeded(bank, layout):
    synth = OcclusionSynth(G, bank, layout)
    f = face()
    for kind in synth.TYPES:
        o1 = synth.sample(f, np.random.default_rng(4), kind)
        o2 = synth.sample(f, np.random.default_rng(4), kind)
        np.testing.assert_array_equal(o1.image, o2.image)
        np.testing.assert_allclose(o1.coverage, patch_coverage(o1.alpha, G))
        if kind == "clean":
            assert o1.alpha.sum() == 0 and (o1.image == f).all()
        else:
            assert o1.alpha.sum() > 0
    no_bank = OcclusionSynth(G, OccluderBank(), layout)
    assert no_bank.probs[no_bank.TYPES.index("cutout")] == 0
