"""`ofer-live video INPUT -o OUTPUT`: annotate a video file (and log per-frame results as JSONL)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ofer_live.commands.common import add_runtime_arguments, config_from_args

NAME = "video"
HELP = "annotate a video file: write it with overlays (same frame count and fps) and optional JSONL results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="video file to read; also demo:N (N frames of the built-in demo clip) or camera:N with --max-frames",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUTPUT",
        help="annotated video to write (.avi: crash-safe MJPEG; .mp4/.mkv: OpenCV's FFmpeg writer); "
        "same frame count, fps and size as INPUT",
    )
    parser.add_argument(
        "--jsonl",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write one JSON line of results per frame (frame, time_s, faces with track_id, box, label, "
        "confidence, probs, occluded_fraction, occlusion_grid, timings_ms)",
    )
    parser.add_argument(
        "--no-overlay",
        action="store_true",
        help="write the frames unannotated (results are still computed for --jsonl)",
    )
    parser.add_argument(
        "--smoothing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="smooth each face's probabilities over time (per-track EMA); default off",
    )
    parser.add_argument(
        "--no-reconstruction",
        action="store_true",
        help="ablation: feed the face to the expression net as it is, without reconstructing occluded patches",
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=None,
        metavar="N",
        help="stop after N frames (default: the whole input)",
    )
    parser.add_argument(
        "--virtual-camera",
        action="store_true",
        help="also send the annotated frames, at the video's frame rate, to a virtual camera that Zoom, Teams or "
        "Meet can pick (needs the .[meeting] extra and v4l2loopback on Linux or OBS 30+ on Windows/macOS; "
        "without one, a one-line warning and the video is still written)",
    )
    parser.add_argument(
        "--virtual-camera-size",
        default=None,
        metavar="WxH",
        help="size of the virtual camera (default: the video's size); frames are fitted in, aspect kept",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar on stderr")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ofer_live.commands._progress import Progress
    from ofer_live.contracts import LABELS
    from ofer_live.errors import UserError
    from ofer_live.io.paths import check_output_path, same_file
    from ofer_live.io.recorder import SUPPORTED_EXTENSIONS, VideoRecorder
    from ofer_live.io.results import JsonlWriter, frame_result_to_record
    from ofer_live.io.sources import open_source
    from ofer_live.io.virtual_camera import VirtualCameraError, VirtualCameraSink, parse_size
    from ofer_live.pipeline.frame_pipeline import FramePipeline
    from ofer_live.render.overlay import draw

    if args.max_frames is not None and args.max_frames <= 0:
        raise UserError(f"--max-frames must be a positive number, got {args.max_frames}")
    config = config_from_args(
        args,
        smoothing=args.smoothing,
        use_reconstruction=False if args.no_reconstruction else None,
    )
    output = check_output_path(args.output, "output video")
    if output.suffix.lower() not in SUPPORTED_EXTENSIONS:
        choices = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UserError(f"unsupported video extension '{output.suffix}' for {output} (use {choices})")
    jsonl_path = check_output_path(args.jsonl, "JSONL file") if args.jsonl is not None else None
    for path, what in ((output, "output video"), (jsonl_path, "JSONL file")):
        if path is not None and Path(args.input).exists() and same_file(path, args.input):
            raise UserError(f"the {what} {path} would overwrite the input")
    if jsonl_path is not None and same_file(jsonl_path, output):
        raise UserError(f"--jsonl and -o name the same file: {output}")
    vcam_size = parse_size(args.virtual_camera_size) if args.virtual_camera_size else None
    if vcam_size is not None and not args.virtual_camera:
        raise UserError("--virtual-camera-size needs --virtual-camera")

    with open_source(args.input) as source:
        if args.max_frames is None and (source.is_live or source.frame_count is None and source.name == "demo"):
            raise UserError(f"{args.input} never ends; give --max-frames N (or use demo:N for N demo frames)")
        total = source.frame_count
        if args.max_frames is not None:
            total = min(total, args.max_frames) if total else args.max_frames
        pipeline = FramePipeline.create(config)
        recorder = jsonl = vcam = None
        frames = with_face = 0
        total_ms = 0.0
        try:
            recorder = VideoRecorder(output, source.fps, source.size)
            jsonl = JsonlWriter(jsonl_path) if jsonl_path is not None else None
            if args.virtual_camera:
                try:
                    vcam = VirtualCameraSink(vcam_size or source.size, source.fps, keep_all=True, pace=True)
                except VirtualCameraError as exc:
                    print(f"ofer-live: warning: {exc} Writing {output} without it.", file=sys.stderr)
            with Progress(total, "frames", enabled=not args.no_progress) as progress:
                for frame in source:
                    result = pipeline.process(frame.image, frame.index, frame.time_s)
                    image = frame.image if args.no_overlay else draw(frame.image, result, config.render)
                    recorder.write(image)
                    if vcam is not None:
                        vcam.send(image)
                    if jsonl is not None:
                        jsonl.write(frame_result_to_record(result, LABELS))
                    frames += 1
                    with_face += bool(result.faces)
                    total_ms += result.timings_ms.get("total", 0.0)
                    progress.update()
                    if args.max_frames is not None and frames >= args.max_frames:
                        break
        finally:
            if vcam is not None:
                vcam.close()
            if jsonl is not None:
                jsonl.close()
            if recorder is not None:
                recorder.close()
            pipeline.close()
        fps = source.fps
    if frames == 0:
        raise UserError(f"{args.input}: no readable frames")
    summary = (
        f"wrote {frames} frames at {fps:g} fps to {output}"
        + (f" and {frames} lines to {jsonl_path}" if jsonl_path is not None else "")
        + (f"; sent {vcam.sent} frames to the virtual camera {vcam.device}" if vcam is not None else "")
        + (f" (it stopped: {vcam.error})" if vcam is not None and vcam.error else "")
        + f"; faces in {100.0 * with_face / frames:.0f}% of frames; "
        f"{total_ms / frames:.1f} ms/frame on {pipeline.provider}"
    )
    print(summary)
    return 0
