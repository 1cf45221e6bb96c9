"""FramePipeline and FrameStream with fake models and a fake finder (fast, no ORT, no MediaPipe)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ofer_live.config import PipelineConfig, RuntimeConfig
from ofer_live.errors import UserError
from ofer_live.pipeline import STAGES, FramePipeline, occlusion_mask
from ofer_live.pipeline.frame_pipeline import Turnstile
from ofer_live.pipeline.frame_stream import FrameStream
from ofer_live.types import Face

S, G, D = 8, 2, 3


class FakeModels:
    """Contract-shaped numpy stand-ins that record every call."""

    face_size, patch_grid, latent_dim, threshold, provider = S, G, D, 1.0, "FakeExecutionProvider"

    def __init__(self, scores=None):
        self.calls = []
        self.scores = scores  # fixed (G, G) patch scores for every face
        self.closed = False
        self.occlusion = self._occlusion
        self.reconstructor = self._reconstructor
        self.expression = self._expression

    def _occlusion(self, faces):
        self.calls.append(("occlusion", faces.shape[0]))
        if self.scores is not None:
            return np.broadcast_to(self.scores, (faces.shape[0], G, G)).astype(np.float32)
        return faces.reshape(-1, G, S // G, G, S // G, 3).mean(axis=(2, 4, 5)).astype(np.float32) / 100.0

    def _reconstructor(self, faces, mask):
        self.calls.append(("reconstructor", faces.shape[0]))
        self.last_mask = mask.copy()
        latents = np.repeat(mask.reshape(-1, G * G, 1), D, axis=2).astype(np.float32)
        return (255 - faces).astype(np.uint8), latents

    def _expression(self, faces, latents):
        self.calls.append(("expression", faces.shape[0]))
        self.last_fer_input = faces.copy()
        logits = np.zeros((faces.shape[0], 7), np.float32)
        logits[:, 3] = faces.reshape(faces.shape[0], S * S * 3).mean(axis=1) / 10.0
        return logits, np.full((faces.shape[0], G, G), 0.5, np.float32)

    def close(self):
        self.closed = True


def _face(value: int, track_id: int = 0) -> Face:
    eye = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    return Face(
        box=(10 * track_id, 0, 50, 50),
        keypoints=np.zeros((6, 2), np.float32),
        score=0.9,
        track_id=track_id,
        aligned=np.full((S, S, 3), value, np.uint8),
        frame_to_face=eye,
        face_to_frame=eye,
    )


class FakeFinder:
    def __init__(self, faces_per_call=None, small=()):
        self.faces_per_call = list(faces_per_call or [])
        self.small = list(small)
        self.closed = False
        self.frames = 0

    def find(self, frame):
        self.frames += 1
        faces = self.faces_per_call.pop(0) if self.faces_per_call else []
        return faces, self.small

    def close(self):
        self.closed = True


FRAME = np.zeros((48, 64, 3), np.uint8)


def test_two_faces_one_batch_per_model():
    models = FakeModels()
    finder = FakeFinder([[_face(200, 1), _face(50, 2)]], small=[(1, 2, 3, 4)])
    pipe = FramePipeline(models, finder, PipelineConfig())
    result = pipe.process(FRAME, frame_index=7, time_s=0.5)
    # one batch per model; the FER net's batch also holds the flagged face as it is (the direct view)
    assert models.calls == [("occlusion", 2), ("reconstructor", 2), ("expression", 3)]
    assert result.frame_index == 7 and result.time_s == 0.5 and result.frame_shape == (48, 64)
    assert len(result.faces) == 2 and result.small_faces == ((1, 2, 3, 4),)
    assert set(result.timings_ms) == set(STAGES)
    assert all(v >= 0 for v in result.timings_ms.values())
    parts = sum(result.timings_ms[k] for k in STAGES if k != "total")
    assert result.timings_ms["total"] >= parts * 0.99
    first = result.faces[0]
    assert first.face.track_id == 1
    assert first.patch_score.shape == (G, G) and first.mask.shape == (G, G) and first.mask.dtype == bool
    assert first.cam.shape == (G, G) and first.reconstruction.shape == (S, S, 3)
    assert first.probs.shape == (7,) and first.probs.sum() == pytest.approx(1.0)
    assert first.mask.all()  # 200/100 > threshold 1.0
    assert not result.faces[1].mask.any()  # 50/100 < 1.0
    assert first.label == "happy"
    np.testing.assert_array_equal(first.reconstruction, 55)  # the reconstructor's output, not the input


def test_no_faces_gives_empty_well_shaped_result():
    pipe = FramePipeline(FakeModels(), FakeFinder([]), PipelineConfig())
    result = pipe.process(FRAME)
    assert result.faces == () and result.small_faces == ()
    assert set(result.timings_ms) == set(STAGES)


@pytest.mark.parametrize(("sensitivity", "expected"), [(1.0, 1), (2.0, 3), (0.5, 0), (0.0, 0)])
def test_sensitivity_scales_the_threshold(sensitivity, expected):
    scores = np.array([[0.4, 0.6], [0.9, 1.5]], np.float32)
    models = FakeModels(scores=scores)
    pipe = FramePipeline(models, FakeFinder([[_face(0)]]), PipelineConfig(sensitivity=sensitivity))
    result = pipe.process(FRAME)
    assert int(result.faces[0].mask.sum()) == expected
    np.testing.assert_array_equal(models.last_mask[0], result.faces[0].mask.astype(np.float32))
    assert result.faces[0].occluded_fraction == expected / 4


def test_occlusion_mask_function():
    score = np.array([[[0.5, 2.0], [1.0, 1.01]]], np.float32)
    assert occlusion_mask(score, 1.0, 1.0).tolist() == [[[False, True], [False, True]]]
    assert occlusion_mask(np.zeros((0, 2, 2), np.float32), 1.0, 1.0).shape == (0, 2, 2)


def test_without_reconstruction_the_face_goes_straight_to_fer():
    models = FakeModels(scores=np.full((G, G), 5.0, np.float32))
    pipe = FramePipeline(models, FakeFinder([[_face(30)]]), PipelineConfig(use_reconstruction=False))
    result = pipe.process(FRAME)
    np.testing.assert_array_equal(models.last_fer_input, 30)
    np.testing.assert_array_equal(models.last_mask, 0.0)  # latents of the unmasked face
    assert result.faces[0].mask.all()  # the detected occlusion is still reported
    np.testing.assert_array_equal(result.faces[0].reconstruction, 30)


def test_smoothing_per_track_and_toggle():
    frames = [[_face(0, 1)], [_face(250, 1)], [_face(250, 1)], [_face(250, 1)]]
    raw = FramePipeline(FakeModels(), FakeFinder([list(f) for f in frames]), PipelineConfig())
    raw_probs = [raw.process(FRAME).faces[0].probs for _ in frames]
    pipe = FramePipeline(FakeModels(), FakeFinder(frames), PipelineConfig(smoothing=True, smoothing_alpha=0.5))
    p0 = pipe.process(FRAME).faces[0].probs
    p1 = pipe.process(FRAME).faces[0].probs
    np.testing.assert_allclose(p0, raw_probs[0], rtol=1e-6)
    np.testing.assert_allclose(p1, 0.5 * raw_probs[0] + 0.5 * raw_probs[1], rtol=1e-5)
    pipe.update_config(smoothing=False)
    np.testing.assert_allclose(pipe.process(FRAME).faces[0].probs, raw_probs[2], rtol=1e-6)
    pipe.update_config(smoothing=True)  # re-enabled: starts fresh, no stale state
    np.testing.assert_allclose(pipe.process(FRAME).faces[0].probs, raw_probs[3], rtol=1e-6)


def test_update_config_from_another_thread_applies_next_frame():
    models = FakeModels(scores=np.full((G, G), 0.8, np.float32))
    pipe = FramePipeline(models, FakeFinder([[_face(0)], [_face(0)]]), PipelineConfig())
    assert not pipe.process(FRAME).faces[0].mask.any()
    t = threading.Thread(target=pipe.update_config, kwargs={"sensitivity": 2.0})
    t.start()
    t.join()
    assert pipe.config.sensitivity == 2.0
    assert pipe.process(FRAME).faces[0].mask.all()


def test_bad_settings_are_user_errors():
    pipe = FramePipeline(FakeModels(), FakeFinder(), PipelineConfig())
    with pytest.raises(UserError, match="sensitivity"):
        pipe.update_config(sensitivity=-1.0)
    with pytest.raises(UserError, match="smoothing_alpha"):
        pipe.update_config(PipelineConfig(smoothing_alpha=0.0))
    assert pipe.config.sensitivity == 1.0


def test_finder_rebuilt_when_its_settings_change():
    built = []

    def factory(cfg):
        built.append(cfg.min_face_px)
        return FakeFinder()

    first = FakeFinder()
    pipe = FramePipeline(FakeModels(), first, PipelineConfig(), finder_factory=factory)
    pipe.update_config(min_face_px=80)
    pipe.process(FRAME)
    assert built == [80] and first.closed
    pipe.update_config(sensitivity=1.5)
    pipe.process(FRAME)
    assert built == [80]


def test_process_aligned():
    models = FakeModels()
    pipe = FramePipeline(models, None, PipelineConfig(smoothing=True))
    faces = np.stack([np.full((S, S, 3), v, np.uint8) for v in (10, 200, 90)])
    results = pipe.process_aligned(faces)
    assert len(results) == 3 and models.calls[0] == ("occlusion", 3)
    assert all(r.face.track_id == -1 and r.face.box == (0, 0, S, S) for r in results)
    np.testing.assert_array_equal(results[1].face.aligned, 200)
    assert pipe.process_aligned(np.zeros((0, S, S, 3), np.uint8)) == []
    assert pipe.process_aligned([]) == []
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 3\)"):
        pipe.process_aligned(np.zeros((1, 9, 9, 3), np.uint8))
    with pytest.raises(RuntimeError, match="process_aligned"):
        pipe.process(FRAME)


def test_bad_frame_and_close():
    models, finder = FakeModels(), FakeFinder()
    pipe = FramePipeline(models, finder, PipelineConfig())
    with pytest.raises(ValueError, match="uint8 BGR"):
        pipe.process(np.zeros((10, 10), np.uint8))
    with pipe:
        pass
    assert models.closed and finder.closed
    pipe.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        pipe.process(FRAME)


def test_provider_and_threshold_exposed():
    pipe = FramePipeline(FakeModels(), None)
    assert pipe.provider == "FakeExecutionProvider" and pipe.threshold == 1.0 and pipe.face_size == S


def test_colour_faces_and_their_gray_copies_give_the_same_result(tiny_models_dir):
    import cv2

    from ofer_live.config import AppConfig, PipelineConfig, RuntimeConfig
    from ofer_live.pipeline.frame_pipeline import FramePipeline

    colour = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    gray = np.stack([cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for f in colour])
    runtime = RuntimeConfig(models_dir=tiny_models_dir)
    gray_config = AppConfig(runtime=runtime, pipeline=PipelineConfig(gray_faces=True))
    with FramePipeline.create(gray_config, detect=False) as pipeline:
        a, b = pipeline.process_aligned(colour), pipeline.process_aligned(gray)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.probs, y.probs)
        np.testing.assert_array_equal(x.reconstruction, y.reconstruction)
    config = AppConfig(runtime=runtime, pipeline=PipelineConfig(gray_faces=False))
    with FramePipeline.create(config, detect=False) as pipeline:
        c, d = pipeline.process_aligned(colour), pipeline.process_aligned(gray)
    assert any(not np.array_equal(x.reconstruction, y.reconstruction) for x, y in zip(c, d, strict=True))


# ------------------------------------------------------------------ FrameStream: several frames at once


class SlowModels(FakeModels):
    """FakeModels whose reconstructor sleeps a different time per face value, so frames finish out of order, and
    which records how many reconstructor calls overlap."""

    def __init__(self):
        super().__init__()
        self.running = 0
        self.most_at_once = 0
        self._count_lock = threading.Lock()

    def _reconstructor(self, faces, mask):
        with self._count_lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.002 * (int(faces[0, 0, 0, 0]) % 5) if len(faces) else 0.0)
        with self._count_lock:
            self.running -= 1
        return super()._reconstructor(faces, mask)


def _faces(n):
    """n frames of one tracked face whose brightness changes from frame to frame."""
    return [[_face((37 * k) % 250, track_id=1)] for k in range(n)]


def _sequential(n, config):
    pipe = FramePipeline(FakeModels(), FakeFinder(_faces(n)), config)
    return [pipe.process(FRAME, k, k / 30) for k in range(n)]


@pytest.mark.parametrize("in_flight", [1, 2, 3])
def test_stream_gives_the_sequential_results_in_order(in_flight):
    config = PipelineConfig(smoothing=True, smoothing_alpha=0.3)  # smoothing depends on frame order
    expected = _sequential(12, config)
    models = SlowModels()
    pipe = FramePipeline(models, FakeFinder(_faces(12)), config)
    got = []
    with FrameStream(pipe, in_flight) as stream:
        for k in range(12):
            got += stream.submit(FRAME, k, k / 30, tag=k)
            assert stream.pending < in_flight
        got += stream.drain()
    assert [d.tag for d in got] == list(range(12))
    assert all(d.error is None for d in got)
    for done, want in zip(got, expected, strict=True):
        assert done.result.frame_index == want.frame_index
        np.testing.assert_allclose(done.result.faces[0].probs, want.faces[0].probs, rtol=1e-6)
        np.testing.assert_array_equal(done.result.faces[0].reconstruction, want.faces[0].reconstruction)
    assert models.most_at_once <= in_flight


def test_frames_really_overlap():
    models = SlowModels()
    pipe = FramePipeline(models, FakeFinder([[_face(4, 1)]] * 20), PipelineConfig())  # 8 ms in the reconstructor
    with FrameStream(pipe, 2) as stream:
        for k in range(20):
            stream.submit(FRAME, k)
    assert models.most_at_once == 2


def test_a_failing_frame_is_handed_back_and_the_others_go_on():
    pipe = FramePipeline(FakeModels(), FakeFinder(_faces(5)), PipelineConfig())
    bad = np.zeros((48, 64), np.uint8)  # not (H, W, 3)
    with FrameStream(pipe, 2) as stream:
        got = []
        for k in range(5):
            got += stream.submit(bad if k == 2 else FRAME, k, tag=k)
        got += stream.drain()
    assert [d.tag for d in got] == [0, 1, 2, 3, 4]
    assert isinstance(got[2].error, ValueError) and got[2].result is None
    assert all(d.error is None and len(d.result.faces) == 1 for k, d in enumerate(got) if k != 2)


def test_poll_does_not_wait_and_close_finishes_what_is_in_process():
    models = SlowModels()
    pipe = FramePipeline(models, FakeFinder([[_face(4, 1)]] * 3), PipelineConfig())
    stream = FrameStream(pipe, 3)
    assert stream.submit(FRAME, 0) == [] and stream.submit(FRAME, 1) == []
    assert len(stream.poll()) <= 2
    rest = stream.close()
    assert stream.pending == 0 and all(d.result is not None for d in rest)
    assert stream.close() == []


def test_a_setting_changed_mid_stream_applies_to_every_frame_submitted_after_it():
    scores = np.full((2, 2), 0.8, np.float32)
    pipe = FramePipeline(FakeModels(scores=scores), FakeFinder(_faces(6)), PipelineConfig(sensitivity=1.0))
    with FrameStream(pipe, 2) as stream:
        got = stream.submit(FRAME, 0) + stream.submit(FRAME, 1)  # frame 0 is done, frame 1 may still be in process
        pipe.update_config(sensitivity=2.0)  # 0.8 > 1.0 / 2: every patch occluded from here on
        for k in range(2, 6):
            got += stream.submit(FRAME, k)
        got += stream.drain()
    flagged = [bool(d.result.faces[0].mask.all()) for d in got]
    assert flagged[0] is False and flagged[2:] == [True] * 4  # frame 1 was found before or after the change


def test_in_flight_must_be_positive():
    with pytest.raises(ValueError, match="in_flight"):
        FrameStream(FramePipeline(FakeModels(), FakeFinder()), 0)


def test_turnstile_lets_tickets_through_in_order():
    gate, order = Turnstile(), []

    def worker(ticket):
        time.sleep(0.001 * (7 - ticket))  # the later tickets arrive first
        with gate.turn(ticket):
            order.append(ticket)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert order == list(range(7))


@pytest.mark.parametrize(
    ("runtime", "cores", "in_flight", "threads"),
    [
        (RuntimeConfig(), 2, 2, 1),
        (RuntimeConfig(), 8, 2, 4),
        (RuntimeConfig(), 1, 1, 0),
        (RuntimeConfig(frames_in_flight=1), 8, 1, 0),
        (RuntimeConfig(frames_in_flight=3, intra_op_threads=2), 8, 3, 2),
    ],
)
def test_frames_in_flight_and_session_threads(runtime, cores, in_flight, threads):
    assert runtime.resolved_frames_in_flight(cores) == in_flight
    assert runtime.session_threads(cores) == threads


def test_a_closed_pipeline_fails_every_frame_without_blocking_the_next():
    pipe = FramePipeline(FakeModels(), FakeFinder(_faces(4)), PipelineConfig())
    stream = FrameStream(pipe, 2)
    pipe.close()
    got = [d for k in range(4) for d in stream.submit(FRAME, k)] + stream.close()
    assert len(got) == 4 and all(isinstance(d.error, RuntimeError) for d in got)
