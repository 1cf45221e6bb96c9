"""FramePipeline with the real face finder and the tiny exported models."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ofer_live.config import AppConfig, PipelineConfig, RuntimeConfig
from ofer_live.pipeline import STAGES, FramePipeline
from ofer_live.pipeline.frame_stream import FrameStream


@pytest.fixture
def pipeline(tiny_models_dir):
    config = AppConfig(runtime=RuntimeConfig(models_dir=tiny_models_dir, intra_op_threads=1))
    with FramePipeline.create(config) as pipe:
        yield pipe


def _frame(astronaut_bgr):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 64:576] = astronaut_bgr[16:496]
    return frame


def test_real_face_end_to_end(pipeline, astronaut_bgr):
    frame = _frame(astronaut_bgr)
    before = frame.copy()
    results = [pipeline.process(frame, i, i / 30) for i in range(3)]
    np.testing.assert_array_equal(frame, before)  # the input is not modified
    for r in results:
        assert len(r.faces) == 1 and r.frame_shape == (480, 640)
        assert set(r.timings_ms) == set(STAGES) and r.timings_ms["total"] > 0
        f = r.faces[0]
        assert f.face.aligned.shape == (32, 32, 3)
        assert f.patch_score.shape == f.mask.shape == f.cam.shape == (4, 4)
        assert f.reconstruction.shape == (32, 32, 3) and f.reconstruction.dtype == np.uint8
        assert f.probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert 0.0 <= f.cam.min() and f.cam.max() <= 1.0
    assert len({r.faces[0].face.track_id for r in results}) == 1  # stable track
    assert pipeline.provider == "CPUExecutionProvider"


def test_empty_frame(pipeline):
    r = pipeline.process(np.zeros((240, 320, 3), np.uint8))
    assert r.faces == () and set(r.timings_ms) == set(STAGES)


def test_sensitivity_changes_the_mask(pipeline, astronaut_bgr):
    frame = _frame(astronaut_bgr)
    pipeline.update_config(sensitivity=1e6)
    assert pipeline.process(frame).faces[0].mask.all()
    pipeline.update_config(sensitivity=0.0)
    assert not pipeline.process(frame).faces[0].mask.any()


def test_config_updates_while_processing(pipeline, astronaut_bgr):
    frame = _frame(astronaut_bgr)
    stop = threading.Event()
    errors = []

    def fiddle():
        values = [0.5, 1.0, 2.0]
        i = 0
        while not stop.is_set():
            try:
                pipeline.update_config(PipelineConfig(sensitivity=values[i % 3], smoothing=bool(i % 2)))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            i += 1

    t = threading.Thread(target=fiddle)
    t.start()
    try:
        for i in range(10):
            assert len(pipeline.process(frame, i).faces) == 1
    finally:
        stop.set()
        t.join()
    assert not errors


def test_process_aligned_real_models(pipeline, astronaut_bgr):
    from ofer_live.face.align import crop_to_face

    faces = np.stack([crop_to_face(astronaut_bgr[40:240, 150:350], 32)] * 2)
    results = pipeline.process_aligned(faces)
    assert len(results) == 2
    np.testing.assert_allclose(results[0].probs, results[1].probs, rtol=1e-5)


def test_no_reconstruction_ablation(tiny_models_dir, astronaut_bgr):
    config = AppConfig(
        runtime=RuntimeConfig(models_dir=tiny_models_dir), pipeline=PipelineConfig(use_reconstruction=False)
    )
    with FramePipeline.create(config) as pipe:
        face = pipe.process(_frame(astronaut_bgr)).faces[0]
        np.testing.assert_array_equal(face.reconstruction, face.face.aligned)


def test_stream_with_the_real_finder_and_tiny_models(tiny_models_dir, astronaut_bgr):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 64:576] = astronaut_bgr[16:496]
    frames = [np.roll(frame, 3 * k, axis=1) for k in range(6)]
    config = AppConfig(runtime=RuntimeConfig(models_dir=tiny_models_dir, frames_in_flight=2))
    assert config.runtime.session_threads(cpu_count=2) == 1
    with FramePipeline.create(config) as pipe:
        expected = [pipe.process(f, k) for k, f in enumerate(frames)]
    with FramePipeline.create(config) as pipe, FrameStream(pipe, 2) as stream:
        got = [d for k, f in enumerate(frames) for d in stream.submit(f, k)] + stream.drain()
    assert [d.result.frame_index for d in got] == list(range(6))
    for done, want in zip(got, expected, strict=True):
        assert [f.face.track_id for f in done.result.faces] == [f.face.track_id for f in want.faces]
        np.testing.assert_allclose(done.result.faces[0].probs, want.faces[0].probs, atol=1e-5)


def test_direct_view_averages_the_logits_of_the_reconstruction_and_the_face(tiny_models_dir, astronaut_bgr):
    """A face with flagged patches: the FER net's logits on its reconstruction and on the face as it is are
    averaged; a face without: one pass, the same result with the direct view on or off."""
    import cv2

    from ofer_live.pipeline.frame_pipeline import softmax

    config = AppConfig(runtime=RuntimeConfig(models_dir=tiny_models_dir, intra_op_threads=1))
    with FramePipeline.create(config, detect=False) as pipe:
        s, g = pipe.face_size, pipe.models.patch_grid
        face = cv2.resize(astronaut_bgr[60:380, 100:420, ::-1], (s, s), interpolation=cv2.INTER_AREA)
        faces = np.ascontiguousarray(np.stack([face, face[:, ::-1]]))
        mask = np.zeros((2, g, g), np.float32)
        mask[0, : g // 2] = 1  # the first face has its top half flagged, the second nothing
        fused = pipe.process_aligned(faces, mask=mask)
        alone = pipe.process_aligned(faces, mask=mask, direct_view=False)
        recon, latents = pipe.models.reconstructor(faces, mask)
        on_recon, _ = pipe.models.expression(recon, latents)
        on_face, _ = pipe.models.expression(faces, latents)
    np.testing.assert_allclose(alone[0].probs, softmax(on_recon)[0], atol=1e-5)
    np.testing.assert_allclose(fused[0].probs, softmax((on_recon + on_face) / 2)[0], atol=1e-5)
    assert not np.allclose(fused[0].probs, alone[0].probs, atol=1e-4)  # the direct view changed the result
    np.testing.assert_allclose(fused[1].probs, alone[1].probs, atol=1e-6)
    np.testing.assert_array_equal(fused[1].reconstruction, faces[1])
