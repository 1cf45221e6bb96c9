"""Would averaging the detector's patch scores over frames flag more of the demo clip's occluders?

    .venv/bin/python benchmarks/demo_mask_smoothing.py [--seconds 40] [--alphas 1 0.7 0.5 0.4 0.3]

Runs the shipped models on the generated demo clip (whose occluder masks are known), keeps each frame's patch
scores, then replays them through a per-track exponential moving average, ``s_t = alpha * score_t + (1 - alpha) *
s_{t-1}`` (alpha 1 = no smoothing, what the app does), and prints, per occluder, the share of its patches flagged
(coverage >= 0.5, frames with the occluder fully on the face) and the share of the other patches flagged, as
``bench``'s demo table does.
"""

from __future__ import annotations

import argparse

import numpy as np

from ofer_live.face.align import warp_face
from ofer_live.io.demo import DemoClip
from ofer_live.pipeline.frame_pipeline import FramePipeline


def record_scores(seconds: float, fps: float = 30.0) -> list[tuple[str | None, float, np.ndarray, np.ndarray] | None]:
    """Per frame: (occluder name or None, how far it is on, patch scores (G, G), occluder coverage (G, G)), or None
    when the pipeline did not find exactly one face."""
    clip = DemoClip(max(1, round(seconds * fps)), fps, size=(640, 480))
    frames = []
    with FramePipeline.create() as pipeline:
        for i in range(len(clip)):
            result = pipeline.process(clip.frame(i), i, i / fps)
            if len(result.faces) != 1:
                frames.append(None)
                continue
            face = result.faces[0]
            s, g = pipeline.face_size, face.mask.shape[0]
            alpha = warp_face(clip.occluder_alpha(i), face.face.frame_to_face, s)
            coverage = alpha.reshape(g, s // g, g, s // g).mean(axis=(1, 3))
            name, amount = clip.occluder_at(i)
            frames.append((name, amount, face.patch_score.copy(), coverage))
    return frames


def smoothed_shares(frames: list, alpha: float) -> dict[str, tuple[float, float]]:
    """-> {occluder or "clean face": (share of its patches flagged, share of the other patches flagged)}."""
    state = None
    tallies: dict[str, list[int]] = {}
    for frame in frames:
        if frame is None:  # the track is lost: start again
            state = None
            continue
        name, amount, score, coverage = frame
        state = score if state is None else alpha * score + (1.0 - alpha) * state
        if name is not None and amount < 1.0:
            continue
        flagged = state > 1.0
        inside = coverage >= 0.5
        outside = coverage == 0 if name else np.ones_like(inside)
        t = tallies.setdefault(name or "clean face", [0, 0, 0, 0])
        if name:
            t[0] += int(inside.sum())
            t[1] += int((flagged & inside).sum())
        t[2] += int(outside.sum())
        t[3] += int((flagged & outside).sum())
    return {k: (v[1] / max(v[0], 1), v[3] / max(v[2], 1)) for k, v in sorted(tallies.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the demo clip (default: 40)")
    parser.add_argument(
        "--alphas", type=float, nargs="+", default=[1.0, 0.7, 0.5, 0.4, 0.3], help="EMA weights of the newest frame"
    )
    args = parser.parse_args()
    frames = record_scores(args.seconds)
    for alpha in args.alphas:
        shares = smoothed_shares(frames, alpha)
        row = ", ".join(
            f"clean face {100 * b:.1f} % of all patches"
            if k == "clean face"
            else f"{k} {100 * a:.1f} % (beside {100 * b:.1f} %)"
            for k, (a, b) in shares.items()
        )
        print(f"alpha {alpha:.2f}: {row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
