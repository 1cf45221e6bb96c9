"""Measure the desktop app on the demo clip: startup time, display and inference rates, memory over many frames.

Used by ``benchmarks/gui_soak.py`` (which prints the numbers), ``scripts/screenshots.py`` and the slow GUI test
(which put this folder on ``sys.path``); a developer tool, not app code. Runs the real window
(offscreen unless a display is set) with the real capture, inference and (optionally) recorder threads.

Phases:
1. paced: the demo plays at its own fps for ``paced_s`` seconds, as a user sees it. Gives the startup time
   (first frame, first result), display FPS, inference FPS, latency and dropped frames.
2. memory: the demo is read as fast as possible (no pacing) for ``frames`` frames; RSS is sampled after
   ``checkpoint`` frames and at the end. Memory is flat when the end RSS is within 10 % of the checkpoint.
3. recording (optional): records ``record_s`` seconds of the paced demo, then reads the file back.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pump(app: Any, until: Callable[[], bool], timeout_s: float, sleep_s: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(sleep_s)
    return True


def open_window(app: Any, models_dir: Path, settings: Path, pace: bool, **kwargs: Any) -> Any:
    from ofer_live.config import AppConfig, RuntimeConfig
    from ofer_live.gui.app import LaunchOptions, build_window

    options = LaunchOptions(
        config=AppConfig(runtime=RuntimeConfig(models_dir=Path(models_dir))), settings_path=settings
    )
    window = build_window(options, pace=pace, **kwargs)
    window.controller.stored.output_dir = str(settings.parent / "out")
    window.show()
    return window


def measure(
    models_dir: Path,
    frames: int = 10_000,
    checkpoint: int = 1_000,
    paced_s: float = 10.0,
    record_s: float = 0.0,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the phases above and return the numbers (see the module docstring)."""
    from ofer_live.gui.app import create_application

    t_start = time.perf_counter()
    app = create_application()
    tmp = tempfile.TemporaryDirectory(prefix="ofer_live_soak_") if work_dir is None else None
    work = Path(tmp.name) if tmp is not None else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    try:
        # 1. paced
        window = open_window(app, models_dir, work / "settings.ini", pace=True)
        c = window.controller
        try:
            t0 = time.perf_counter()
            c.start("demo")
            pump(app, lambda: c.frames_displayed >= 1, 60)
            report["startup_first_frame_s"] = round(time.perf_counter() - t0, 3)
            report["startup_first_frame_from_process_s"] = round(time.perf_counter() - t_start, 3)
            ok = pump(app, lambda: c.results_received >= 1 or c.pipeline_error is not None, 120)
            report["startup_first_result_s"] = round(time.perf_counter() - t0, 3) if ok else None
            if c.pipeline_error:
                report["pipeline_error"] = c.pipeline_error
            end = time.monotonic() + paced_s
            samples = []
            while time.monotonic() < end:
                pump(app, lambda: False, 0.5)
                samples.append(c.status())
            late = samples[len(samples) // 2 :] or samples
            report["source_fps"] = c.source_info.fps if c.source_info else None
            report["display_fps"] = round(sum(s.display_fps for s in late) / max(1, len(late)), 2)
            report["inference_fps"] = round(sum(s.inference_fps for s in late) / max(1, len(late)), 2)
            report["latency_ms"] = round(c.latency_ms, 1) if c.latency_ms is not None else None
            report["provider"] = c.provider
            report["dropped_frames"] = c.dropped_frames
            report["frames_displayed"] = c.frames_displayed
            report["results"] = c.results_received
            if record_s > 0:
                report.update(_record(app, c, work / "recording", record_s))
        finally:
            window.close()

        # 2. memory
        if frames > 0:
            window = open_window(app, models_dir, work / "settings2.ini", pace=False)
            c = window.controller
            try:
                c.start("demo")
                capture = lambda: c._capture  # noqa: E731 - the controller's current capture thread
                pump(app, lambda: capture() is not None and capture().frames_read >= checkpoint, 3600, 0.0005)
                report["rss_mb_at_checkpoint"] = round(rss_mb(), 1)
                report["checkpoint_frames"] = capture().frames_read
                t1 = time.perf_counter()
                pump(app, lambda: capture().frames_read >= frames, 3600, 0.0005)
                report["rss_mb_at_end"] = round(rss_mb(), 1)
                report["end_frames"] = capture().frames_read
                report["unpaced_capture_fps"] = round(
                    (report["end_frames"] - report["checkpoint_frames"]) / max(1e-9, time.perf_counter() - t1), 1
                )
                report["unpaced_results"] = c.results_received
                report["rss_growth"] = round(report["rss_mb_at_end"] / report["rss_mb_at_checkpoint"] - 1.0, 4)
            finally:
                window.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    return report


def _record(app: Any, c: Any, out_dir: Path, seconds: float) -> dict[str, Any]:
    import cv2

    started = time.monotonic()
    if not c.start_recording(out_dir):
        return {"recording_error": "could not start"}
    pump(app, lambda: time.monotonic() - started >= seconds, seconds + 60)
    status = c.stop_recording()
    wall = time.monotonic() - started
    cap = cv2.VideoCapture(str(status.path))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    with open(status.jsonl, encoding="utf-8") as fh:
        lines = sum(1 for _ in fh)
    return {
        "recording_wall_s": round(wall, 2),
        "recording_frames_written": status.frames,
        "recording_frames_read_back": n,
        "recording_fps_read_back": fps,
        "recording_duration_read_back_s": round(n / fps, 2) if fps > 0 else None,
        "recording_jsonl_lines": lines,
        "recording_path": str(status.path),
    }
