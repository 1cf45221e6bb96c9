"""`ofer-live demo`: write the built-in demo clip (astronaut photo, head motion, sliding occluders)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ofer_live.commands.common import parse_size
from ofer_live.errors import UserError

NAME = "demo"
HELP = "write the built-in demo clip (public-domain astronaut photo with moving occluders) to a video file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="FILE",
        help="video file to write: .avi (MJPEG, plays even if cut off), .mp4 or .mkv",
    )
    parser.add_argument("--seconds", type=float, default=10.0, metavar="N", help="clip length in seconds (default 10)")
    parser.add_argument("--fps", type=float, default=30.0, metavar="F", help="frames per second (default 30)")
    parser.add_argument("--size", default="640x480", metavar="WxH", help="frame size (default 640x480)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed for the motion and the occluder order/colours (default 0)",
    )
    parser.add_argument(
        "--masks",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="also write each frame's known occluder: alpha (N, H, W) uint8 coverage, occluder "
        "name and how far it is on the face (for measuring the detector)",
    )


def run(args: argparse.Namespace) -> int:
    from ofer_live.io.demo import write_demo_clip

    size = parse_size(args.size, smallest=64)
    if not args.fps > 0 or args.fps > 240:
        raise UserError(f"bad --fps {args.fps:g}: use a value between 0 and 240")
    if not args.seconds > 0:
        raise UserError(f"bad --seconds {args.seconds:g}: must be > 0")
    n_frames = max(1, round(args.seconds * args.fps))
    from ofer_live.io.paths import check_output_path

    masks = check_output_path(args.masks, "mask file") if args.masks is not None else None
    if masks is not None and masks.suffix.lower() != ".npz":
        raise UserError(f"--masks must name a .npz file, got {masks}")
    path = write_demo_clip(args.output, n_frames=n_frames, fps=args.fps, size=size, seed=args.seed)
    print(f"wrote {path}: {n_frames} frames, {size[0]}x{size[1]} at {args.fps:g} fps ({n_frames / args.fps:.1f} s)")
    if masks is not None:
        from ofer_live.io.demo import write_demo_masks

        write_demo_masks(masks, n_frames=n_frames, fps=args.fps, size=size, seed=args.seed)
        print(f"wrote {masks}: the occluder of each of the {n_frames} frames")
    return 0
