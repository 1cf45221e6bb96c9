"""Synthetic skin occluders: hand silhouettes filled with a donor's skin, and CutPaste regions."""

from __future__ import annotations

import numpy as np

from ofer_live.training.data.fake import draw_face
from ofer_live.training.data.occlusion_synth import OcclusionSynth, SynthConfig, is_gray, template_layout
from ofer_live.training.data.skin_occluders import CUTPASTE_KIND, HAND_KIND, cutpaste, hand_alpha, skin_hand

ONLY = dict(clean=0.0, cutout=0.0, procedural=0.0, irregular=0.0, random_patches=0.0)


def test_hand_silhouette_is_seeded_soft_and_hand_sized():
    a1, creases = hand_alpha(np.random.default_rng(3), 128)
    a2, _ = hand_alpha(np.random.default_rng(3), 128)
    assert np.array_equal(a1, a2) and a1.dtype == np.float32 and 0.0 <= a1.min() and a1.max() <= 1.0
    assert 0.08 < a1.mean() < 0.6  # a palm, fingers and maybe an arm, not a blob filling the canvas
    soft = ((a1 > 0.05) & (a1 < 0.95)).mean()
    assert 0 < soft < 0.1  # anti-aliased edges only
    assert creases.max() > 0 and (creases[a1 < 0.9] == 0).all()  # finger creases lie inside the hand


def test_hand_takes_the_donors_skin_matched_to_the_face():
    rng = np.random.default_rng(0)
    face = draw_face(112, 3, rng, color=True)
    dark_donor = (draw_face(112, 3, rng, color=True) * 0.4).astype(np.uint8)
    occ = skin_hand(face, dark_donor, np.random.default_rng(1))
    assert occ.kind == HAND_KIND and occ.rgba.shape == (128, 128, 4)
    inside = occ.rgba[..., 3] > 250
    from ofer_live.training.data.skin_occluders import _mean_skin

    ratio = occ.rgba[..., :3][inside].mean() / _mean_skin(face).mean()
    assert 0.6 < ratio < 1.3  # brightness follows the face, not the dark donor
    gray_face = draw_face(112, 3, rng, color=False)
    assert is_gray(skin_hand(gray_face, dark_donor, np.random.default_rng(2)).rgba[..., :3])


def test_cutpaste_is_a_soft_face_region():
    rng = np.random.default_rng(4)
    face = draw_face(112, 5, rng, color=True)
    occ = cutpaste(face, face, np.random.default_rng(5))
    assert occ.kind == CUTPASTE_KIND and occ.rgba.shape[2] == 4
    h, w = occ.rgba.shape[:2]
    assert 0.18 * 112 - 1 <= h <= 0.4 * 112 and 0.18 * 112 - 1 <= w <= 0.4 * 112
    assert occ.rgba[..., 3].max() == 255 and occ.rgba[0, 0, 3] < 128  # opaque inside, faded at the corner


def test_synth_draws_hands_and_cutpaste_with_a_donor():
    face = draw_face(112, 3, np.random.default_rng(6), color=True)
    donor = draw_face(112, 1, np.random.default_rng(7), color=True)
    calls = []

    def give_donor():
        calls.append(1)
        return donor

    for kind in ("hands", "cutpaste"):
        synth = OcclusionSynth(14, None, template_layout(), SynthConfig(**ONLY, **{kind: 1.0}))
        occ = synth.sample(face, np.random.default_rng(8), donor=give_donor)
        assert occ.kind == kind and occ.alpha.max() > 0.99 and occ.coverage.max() > 0.5
        changed = np.abs(occ.image.astype(int) - face.astype(int)).sum(axis=2) > 0
        assert changed[occ.alpha > 0.5].mean() > 0.5  # the pixels it covers are the occluder's
    assert len(calls) == 2
    # The default mixture has no hands or CutPaste, so earlier runs draw exactly what they drew before.
    default = OcclusionSynth(14, None, template_layout())
    assert default.probs[default.types.index("hands")] == 0 and default.probs[default.types.index("cutpaste")] == 0
