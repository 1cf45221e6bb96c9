"""Soak/benchmark of the desktop app on the demo clip (offscreen unless a display is set).

    python benchmarks/gui_soak.py --models exported_models [--frames 10000] [--paced-seconds 10] [--record-seconds 60]

Prints startup time, display/inference FPS, latency, dropped frames, RSS after 1,000 and after N unpaced demo
frames (memory is flat when the growth is under 10 %), and, with --record-seconds, the recording read back.
Exit code 1 when the RSS growth is 10 % or more.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: exported_models/)")
    parser.add_argument("--frames", type=int, default=10_000, help="unpaced demo frames for the memory check")
    parser.add_argument("--checkpoint", type=int, default=1_000, help="frame count of the first RSS sample")
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="seconds of real-time playback")
    parser.add_argument("--record-seconds", type=float, default=0.0, help="also record this long and read it back")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from soak import measure  # benchmarks/soak.py, beside this script

    from ofer_live.config import DEFAULT_MODELS_DIR

    report = measure(
        args.models or DEFAULT_MODELS_DIR,
        frames=args.frames,
        checkpoint=args.checkpoint,
        paced_s=args.paced_seconds,
        record_s=args.record_seconds,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:36s} {value}")
    growth = report.get("rss_growth")
    return 1 if growth is not None and growth >= 0.10 else 0


if __name__ == "__main__":
    sys.exit(main())
