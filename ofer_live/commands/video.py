"""`ofer-live video INPUT -o OUTPUT`: annotate a video file (and log per-frame results as JSONL).

`ofer-live video IN1 IN2 ... -o OUTDIR/` annotates many videos (``commands/_batch_video.py``): one video and one
JSONL per input, ``--jobs`` processes, ``--shard K/N``, finished inputs skipped on a rerun, a summary table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ofer_live.commands.common import (
    add_camera_arguments,
    add_runtime_arguments,
    camera_options,
    config_from_args,
    parse_size,
)

NAME = "video"
HELP = "annotate a video file: write it with overlays (same frame count and fps) and optional JSONL results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video file to read; also demo:N (N frames of the built-in demo clip) or camera:N with --max-frames; "
        "several inputs (or -o naming a folder) annotate them all into that folder",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="annotated video to write (.avi: crash-safe MJPEG; .mp4/.mkv: OpenCV's FFmpeg writer); "
        "same frame count, fps and size as INPUT. With several inputs, or a name ending in '/': a folder "
        "(made if missing), which gets <name>.avi and <name>.jsonl per input",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="several inputs: annotate N videos at once in N processes (default 1)",
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="several inputs: process inputs K, K+N, K+2N, ... (1-based), so N machines or array jobs share a "
        "corpus without coordination; the N shards together write what one run writes",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="several inputs: redo inputs whose outputs exist (finished ones are skipped otherwise, and a file "
        "that this command did not finish is never overwritten without it)",
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
    add_camera_arguments(parser)
    add_runtime_arguments(parser, frame_stream=True)


def annotate_video(
    input_spec: str,
    output: Path,
    jsonl_path: Path | None,
    config,
    *,
    max_frames: int | None = None,
    no_overlay: bool = False,
    progress: bool = True,
    virtual_camera: bool = False,
    virtual_camera_size: tuple[int, int] | None = None,
    end_record: dict | None = None,
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
) -> dict:
    """Annotate one video: every frame through the pipeline into ``output`` (+ one JSONL line per frame).

    ``end_record`` (batch mode) is written as the JSONL's last line once every frame is in, so a finished input can
    be told from one cut off. Returns {"frames", "with_face", "ms_per_frame", "fps", "provider", "vcam_sent",
    "vcam_device", "vcam_error"}. Raises UserError for an unreadable or endless input.
    """
    from ofer_live.commands._progress import Progress
    from ofer_live.contracts import LABELS
    from ofer_live.errors import UserError
    from ofer_live.io.recorder import VideoRecorder
    from ofer_live.io.results import JsonlWriter, frame_result_to_record
    from ofer_live.io.sources import open_source
    from ofer_live.io.virtual_camera import VirtualCameraError, VirtualCameraSink
    from ofer_live.pipeline.frame_pipeline import FramePipeline
    from ofer_live.pipeline.frame_stream import Finished, FrameStream
    from ofer_live.render.overlay import draw

    with open_source(input_spec, camera_size, camera_fps) as source:
        if max_frames is None and (source.is_live or source.frame_count is None and source.name == "demo"):
            raise UserError(f"{input_spec} never ends; give --max-frames N (or use demo:N for N demo frames)")
        total = source.frame_count
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        pipeline = FramePipeline.create(config)
        in_flight = config.runtime.resolved_frames_in_flight()
        recorder = jsonl = vcam = None
        frames = with_face = 0
        total_ms = 0.0
        try:
            recorder = VideoRecorder(output, source.fps, source.size)
            jsonl = JsonlWriter(jsonl_path) if jsonl_path is not None else None
            if virtual_camera:
                try:
                    vcam = VirtualCameraSink(virtual_camera_size or source.size, source.fps, keep_all=True, pace=True)
                except VirtualCameraError as exc:
                    print(f"ofer-live: warning: {exc} Writing {output} without it.", file=sys.stderr)
            with Progress(total, "frames", enabled=progress) as bar, FrameStream(pipeline, in_flight) as stream:

                def write(finished: list[Finished]) -> None:
                    nonlocal frames, with_face, total_ms
                    for done in finished:
                        if done.error is not None:
                            raise done.error
                        frame, result = done.tag, done.result
                        image = frame.image if no_overlay else draw(frame.image, result, config.render)
                        recorder.write(image)
                        if vcam is not None:
                            vcam.send(image)
                        if jsonl is not None:
                            jsonl.write(frame_result_to_record(result, LABELS))
                        frames += 1
                        with_face += bool(result.faces)
                        total_ms += result.timings_ms.get("total", 0.0)
                        bar.update()

                submitted = 0
                for frame in source:
                    write(stream.submit(frame.image, frame.index, frame.time_s, tag=frame))
                    submitted += 1
                    if max_frames is not None and submitted >= max_frames:
                        break
                write(stream.drain())
            if jsonl is not None and end_record is not None and frames:
                jsonl.write({**end_record, "frames": frames})
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
        raise UserError(f"{input_spec}: no readable frames")
    return {
        "frames": frames,
        "with_face": with_face,
        "ms_per_frame": total_ms / frames,
        "fps": fps,
        "provider": pipeline.provider,
        "vcam_sent": vcam.sent if vcam else None,
        "vcam_device": vcam.device if vcam else None,
        "vcam_error": vcam.error if vcam else None,
    }


def run(args: argparse.Namespace) -> int:
    from ofer_live.errors import UserError
    from ofer_live.io.paths import check_output_path, same_file
    from ofer_live.io.recorder import SUPPORTED_EXTENSIONS

    if args.max_frames is not None and args.max_frames <= 0:
        raise UserError(f"--max-frames must be a positive number, got {args.max_frames}")
    config = config_from_args(
        args,
        smoothing=args.smoothing,
        use_reconstruction=False if args.no_reconstruction else None,
    )
    camera = camera_options(args)
    vcam_size = (
        parse_size(args.virtual_camera_size, "--virtual-camera-size", even=True) if args.virtual_camera_size else None
    )
    if vcam_size is not None and not args.virtual_camera:
        raise UserError("--virtual-camera-size needs --virtual-camera")
    if len(args.inputs) > 1 or str(args.output).endswith(("/", "\\")):
        from ofer_live.commands._batch_video import run_batch

        return run_batch(args, config, camera)
    for flag, given in (("--jobs", args.jobs != 1), ("--shard", args.shard), ("--overwrite", args.overwrite)):
        if given:
            raise UserError(f"{flag} applies to several inputs written into a folder (-o DIR/)")
    input_spec = args.inputs[0]
    output = check_output_path(args.output, "output video")
    if output.suffix.lower() not in SUPPORTED_EXTENSIONS:
        choices = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UserError(f"unsupported video extension '{output.suffix}' for {output} (use {choices})")
    jsonl_path = check_output_path(args.jsonl, "JSONL file") if args.jsonl is not None else None
    for path, what in ((output, "output video"), (jsonl_path, "JSONL file")):
        if path is not None and Path(input_spec).exists() and same_file(path, input_spec):
            raise UserError(f"the {what} {path} would overwrite the input")
    if jsonl_path is not None and same_file(jsonl_path, output):
        raise UserError(f"--jsonl and -o name the same file: {output}")

    stats = annotate_video(
        input_spec,
        output,
        jsonl_path,
        config,
        max_frames=args.max_frames,
        no_overlay=args.no_overlay,
        progress=not args.no_progress,
        virtual_camera=args.virtual_camera,
        virtual_camera_size=vcam_size,
        **camera,
    )
    frames = stats["frames"]
    summary = (
        f"wrote {frames} frames at {stats['fps']:g} fps to {output}"
        + (f" and {frames} lines to {jsonl_path}" if jsonl_path is not None else "")
        + (
            f"; sent {stats['vcam_sent']} frames to the virtual camera {stats['vcam_device']}"
            if stats["vcam_sent"] is not None
            else ""
        )
        + (f" (it stopped: {stats['vcam_error']})" if stats["vcam_error"] else "")
        + f"; faces in {100.0 * stats['with_face'] / frames:.0f}% of frames; "
        f"{stats['ms_per_frame']:.1f} ms/frame on {stats['provider']}"
    )
    print(summary)
    return 0
