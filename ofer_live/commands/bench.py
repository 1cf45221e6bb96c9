"""`ofer-live bench`: per-stage latency and end-to-end FPS of the pipeline on the demo clip."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ofer_live.commands.common import add_runtime_arguments, config_from_args, parse_size, shown_path

NAME = "bench"
HELP = "benchmark the pipeline on the built-in demo clip: per-stage median/p95 latency, FPS, peak RSS, provider"

# Distinct clip frames rendered up front (then looped), so frame generation is never timed and memory stays flat.
_MAX_CLIP_FRAMES = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frames", type=int, default=100, metavar="N", help="frames to time (default 100), after the warm-up"
    )
    parser.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed warm-up frames first (default 10)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="time the --frames N times over and report the median run's FPS with every run's (default 1)",
    )
    parser.add_argument(
        "--size",
        default="640x480",
        metavar="WxH",
        help="demo clip frame size (default 640x480)",
    )
    parser.add_argument(
        "--faces",
        type=int,
        default=1,
        metavar="N",
        help="faces per frame, 1-4 (default 1): N demo clips with different occluder timings, cut to N strips "
        "around their faces and put side by side in one frame of --size",
    )
    parser.add_argument(
        "--occluder-seconds",
        type=float,
        default=12.0,
        metavar="S",
        help="after the timing, run S seconds of the demo clip (one full cycle of its four occluders by default) "
        "and report, per occluder, the share of its patches the detector flags, and the share of clean-face "
        "patches flagged (0 = skip)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object instead of a table")
    add_runtime_arguments(parser, frame_stream=True)


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process in MB (None where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # Windows
        try:
            import psutil  # type: ignore[import-not-found]
        except ImportError:
            return None
        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB on Linux


def cpu_description(cpuinfo: str | None = None) -> str:
    """The processor's model name and its logical cores, e.g. "Intel(R) Xeon(R) Processor, 2 logical cores": frame
    rates are only comparable on the same processor. cpuinfo: the text of /proc/cpuinfo (None = read it where it
    exists; elsewhere platform.processor() names the processor)."""
    import os
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    name = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.lower().startswith("model name")),
        "",
    )
    name = name or platform.processor() or platform.machine() or "unknown processor"
    return f"{name}, {os.cpu_count() or 1} logical cores"


def summarise(timings: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-stage median / p95 / mean in ms from the FrameResult.timings_ms of each timed frame."""
    import numpy as np

    from ofer_live.pipeline.frame_pipeline import STAGES

    stats = {}
    for stage in STAGES:
        values = np.array([t.get(stage, 0.0) for t in timings], dtype=np.float64)
        stats[stage] = {
            "median_ms": float(np.median(values)) if values.size else 0.0,
            "p95_ms": float(np.percentile(values, 95)) if values.size else 0.0,
            "mean_ms": float(values.mean()) if values.size else 0.0,
        }
    return stats


def multi_face_frames(n_frames: int, fps: float, size: tuple[int, int], faces: int) -> list:
    """``faces`` demo clips (seeds 0..faces-1) side by side: each a strip of width W // faces centred on its face.
    -> n_frames (H, W', 3) uint8 BGR frames, W' = faces * (W // faces)."""
    import numpy as np

    from ofer_live.io.demo import DemoClip

    if faces == 1:
        return [DemoClip(n_frames, fps, size=size).frame(i) for i in range(n_frames)]
    clips = [DemoClip(n_frames, fps, size=size, seed=k) for k in range(faces)]
    strip = size[0] // faces
    frames = []
    for i in range(n_frames):
        parts = []
        for clip in clips:
            cx = int(clip.face_keypoints(i)[:4, 0].mean())
            x0 = min(max(0, cx - strip // 2), size[0] - strip)
            parts.append(clip.frame(i)[:, x0 : x0 + strip])
        frames.append(np.ascontiguousarray(np.concatenate(parts, axis=1)))
    return frames


def demo_occluder_detection(
    pipeline, seconds: float, size: tuple[int, int], fps: float = 30.0
) -> dict[str, dict[str, float]]:
    """Run ``seconds`` of the demo clip and compare the detector's mask with the clip's known occluders, mapped into
    each face crop. -> {occluder: {"flagged": share of its patches (coverage >= 0.5) flagged, "beside": share of
    the other patches flagged, "frames"}, "clean face": {"flagged": share of all patches flagged, "frames"}}.
    Only frames where the occluder is fully on the face count for it."""
    import numpy as np

    from ofer_live.face.align import warp_face
    from ofer_live.io.demo import DemoClip

    clip = DemoClip(max(1, round(seconds * fps)), fps, size=size)
    tallies: dict[str, list[float]] = {}
    for i in range(len(clip)):
        name, amount = clip.occluder_at(i)
        if name is not None and amount < 1.0:
            continue
        result = pipeline.process(clip.frame(i), i, i / fps)
        if len(result.faces) != 1:
            continue
        face = result.faces[0]
        s, g = pipeline.face_size, face.mask.shape[0]
        alpha = warp_face(clip.occluder_alpha(i), face.face.frame_to_face, s)
        coverage = alpha.reshape(g, s // g, g, s // g).mean(axis=(1, 3))
        flagged = np.asarray(face.mask, bool)
        key = name or "clean face"
        t = tallies.setdefault(key, [0, 0, 0, 0, 0])  # frames, occluder patches, flagged, other patches, flagged
        t[0] += 1
        inside = coverage >= 0.5
        outside = coverage == 0 if name else np.ones_like(inside)
        t[1] += int(inside.sum()) if name else 0
        t[2] += int((flagged & inside).sum()) if name else 0
        t[3] += int(outside.sum())
        t[4] += int((flagged & outside).sum())
    report = {}
    for key, (frames, n_in, f_in, n_out, f_out) in sorted(tallies.items()):
        entry = {"frames": frames, "beside" if key != "clean face" else "flagged": f_out / max(n_out, 1)}
        if key != "clean face":
            entry["flagged"] = f_in / max(n_in, 1)
        report[key] = entry
    return report


def _raise_first_error(finished: list) -> list:
    """FrameStream results -> their FrameResults; the first failed frame's error is raised (a benchmark must not
    time frames that failed)."""
    for done in finished:
        if done.error is not None:
            raise done.error
    return [done.result for done in finished]


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from ofer_live.errors import UserError
    from ofer_live.pipeline.frame_pipeline import STAGES, FramePipeline
    from ofer_live.pipeline.frame_stream import FrameStream

    if args.frames <= 0:
        raise UserError(f"--frames must be a positive number, got {args.frames}")
    if args.warmup < 0:
        raise UserError(f"--warmup must be 0 or more, got {args.warmup}")
    if args.repeat < 1:
        raise UserError(f"--repeat must be 1 or more, got {args.repeat}")
    if args.occluder_seconds < 0:
        raise UserError(f"--occluder-seconds must be 0 or more, got {args.occluder_seconds}")
    if not 1 <= args.faces <= 4:
        raise UserError(f"--faces must be between 1 and 4, got {args.faces}")
    size = parse_size(args.size, smallest=64)
    config = config_from_args(args)
    fps_clip = 30.0
    n_clip = min(args.frames + args.warmup, _MAX_CLIP_FRAMES)
    clip = multi_face_frames(n_clip, fps_clip, size, args.faces)
    if not clip:
        raise UserError("the demo clip generator gave no frames")

    timings: list[dict[str, float]] = []
    faces_found = 0
    faces_counted = 0
    in_flight = config.runtime.resolved_frames_in_flight()
    with FramePipeline.create(config) as pipeline:
        run_fps: list[float] = []
        with FrameStream(pipeline, in_flight) as stream:
            warm = [stream.submit(clip[i % len(clip)], i, i / fps_clip) for i in range(args.warmup)]
            _raise_first_error([*(d for done in warm for d in done), *stream.drain()])
            for _ in range(args.repeat):
                start = time.perf_counter()
                finished = []
                for j in range(args.frames):
                    i = args.warmup + j
                    finished += stream.submit(clip[i % len(clip)], i, i / fps_clip)
                finished += stream.drain()
                wall_s = time.perf_counter() - start
                run_fps.append(args.frames / wall_s if wall_s > 0 else 0.0)
                for result in _raise_first_error(finished):
                    timings.append(dict(result.timings_ms))
                    faces_found += bool(result.faces)
                    faces_counted += len(result.faces)
        occluders = (
            demo_occluder_detection(pipeline, args.occluder_seconds, size)
            if args.occluder_seconds and args.faces == 1
            else {}
        )
        provider = pipeline.provider
        models = pipeline.models
        model_info = {
            "models_dir": shown_path(models.models_dir),
            "face_size": models.face_size,
            "patch_grid": models.patch_grid,
            "latent_dim": models.latent_dim,
            "precision": models.precision,
        }

    stats = summarise(timings)
    report = {
        "frames": args.frames,
        "warmup": args.warmup,
        "frame_size": list(size),
        "provider": provider,
        "cpu": cpu_description(),
        "intra_op_threads": config.runtime.session_threads(),
        "frames_in_flight": in_flight,
        **model_info,
        "stages": stats,
        "fps": float(np.median(run_fps)),
        "fps_runs": run_fps,
        "fps_from_total_median": 1000.0 / stats["total"]["median_ms"] if stats["total"]["median_ms"] > 0 else 0.0,
        "face_rate": faces_found / (args.frames * args.repeat),
        "faces_per_frame": args.faces,
        "mean_faces_found": faces_counted / (args.frames * args.repeat),
        "peak_rss_mb": peak_rss_mb(),
        "demo_occluders": occluders,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    threads = report["intra_op_threads"] or "onnxruntime's default"
    print(
        f"ofer-live bench: {args.frames} frames (+{args.warmup} warm-up, not timed) of the {size[0]}x{size[1]} "
        f"demo clip"
    )
    print(
        f"provider {provider}, {in_flight} frame(s) in flight, intra-op threads {threads}, "
        f"models {model_info['models_dir']} "
        f"(S={model_info['face_size']}, G={model_info['patch_grid']}, D={model_info['latent_dim']}, "
        f"{model_info['precision']})"
    )
    print(f"cpu {report['cpu']}")
    print()
    print(f"{'stage':<12} {'median ms':>10} {'p95 ms':>10} {'mean ms':>10}")
    for stage in STAGES:
        s = stats[stage]
        print(f"{stage:<12} {s['median_ms']:>10.2f} {s['p95_ms']:>10.2f} {s['mean_ms']:>10.2f}")
    print()
    ms_per_frame = 1000.0 / report["fps"] if report["fps"] > 0 else float("inf")
    runs = f"; median of {args.repeat} runs: {', '.join(f'{f:.1f}' for f in run_fps)}" if args.repeat > 1 else ""
    print(f"end-to-end   {report['fps']:.1f} FPS ({ms_per_frame:.1f} ms/frame{runs})")
    if in_flight > 1:
        print(f"             ({in_flight} frames in process at once: a frame's latency is its 'total' above)")
    print(
        f"faces found  in {100.0 * report['face_rate']:.0f}% of frames, {report['mean_faces_found']:.2f} per frame "
        f"(of {args.faces})"
    )
    rss = report["peak_rss_mb"]
    print(f"peak RSS     {rss:.0f} MB" if rss is not None else "peak RSS     n/a")
    if occluders:
        print()
        print("demo occluders (frames fully on the face): share of the occluder's patches flagged, and of the rest")
        for key, entry in occluders.items():
            if key == "clean face":
                print(f"  {key:<12} {100 * entry['flagged']:5.1f} % of all patches flagged ({entry['frames']} frames)")
            else:
                print(
                    f"  {key:<12} {100 * entry['flagged']:5.1f} % flagged, {100 * entry['beside']:4.1f} % beside it "
                    f"({entry['frames']} frames)"
                )
    return 0
