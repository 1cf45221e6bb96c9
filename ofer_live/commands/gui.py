"""`ofer-live gui` (also `ofer-live` with no command): the desktop app."""

from __future__ import annotations

import argparse
import sys

from ofer_live.commands.common import (
    add_camera_arguments,
    add_runtime_arguments,
    camera_options,
    config_from_args,
    parse_size,
    pipeline_flags,
)

NAME = "gui"
HELP = "open the desktop app: live video with occlusion map, reconstruction and expression (the default command)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default=None,
        metavar="SPEC",
        help="camera:N, a video or image file, or demo (default: the last source used, else the first working "
        "camera, else the built-in demo clip)",
    )
    parser.add_argument(
        "--record",
        default=None,
        metavar="DIR",
        help="start recording at launch into DIR: annotated video (.avi, playable even if the app is killed) "
        "and per-frame JSONL",
    )
    parser.add_argument(
        "--presentation",
        action="store_true",
        help="start in presentation mode (full screen, large text; F or Esc leaves)",
    )
    parser.add_argument(
        "--virtual-camera",
        action="store_true",
        help="send the view to a virtual camera from the start (the toolbar toggle does the same; needs the "
        ".[meeting] extra and v4l2loopback on Linux or OBS 30+ on Windows/macOS)",
    )
    parser.add_argument(
        "--virtual-camera-size",
        default=None,
        metavar="WxH",
        help="size of the virtual camera (default: the source's size); frames are fitted in, aspect kept",
    )
    parser.add_argument(
        "--demo-loop",
        action="store_true",
        help="play the built-in demo clip with captions that say what the audience sees (no camera needed)",
    )
    add_camera_arguments(parser)
    add_runtime_arguments(parser, frame_stream=True)


def run(args: argparse.Namespace) -> int:
    from ofer_live.gui.display import display_problem

    problem = display_problem()
    if problem:
        print(f"ofer-live: {problem}", file=sys.stderr)
        return 2
    from pathlib import Path

    from ofer_live.errors import UserError
    from ofer_live.gui.sources import normalize_source
    from ofer_live.io.paths import check_output_dir

    config = config_from_args(args)
    if args.demo_loop and args.source:
        raise UserError("--demo-loop plays the demo clip; drop --source")
    vcam_size = (
        parse_size(args.virtual_camera_size, "--virtual-camera-size", even=True) if args.virtual_camera_size else None
    )
    record_dir = check_output_dir(Path(args.record)) if args.record else None  # OutputError: refused up front
    source = normalize_source(args.source) if args.source else None

    from ofer_live.gui.app import LaunchOptions, run_app

    return run_app(
        LaunchOptions(
            config=config,
            source=source,
            record_dir=record_dir,
            presentation=args.presentation,
            pipeline_flags=pipeline_flags(args),
            virtual_camera=args.virtual_camera,
            virtual_camera_size=vcam_size,
            demo_loop=args.demo_loop,
            **camera_options(args),
        )
    )
