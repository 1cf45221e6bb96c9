"""Regenerate the README screenshots: the main window, presentation mode, and the virtual camera on the captioned
demo loop (with what the camera receives), on the demo clip.

Run it in a real window under Xvfb (``scripts/screenshots.sh`` does that), or offscreen:

    python scripts/screenshots.py [--models DIR | --tiny] [--out docs/screenshots]

``--tiny`` exports the tiny random test models first (needs the ``train`` extra); the pictures then show the
app working but the expressions and occlusion maps are random. With the trained models in ``exported_models/``
(the default) the screenshots show the real thing.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# benchmarks/soak.py (pump the event loop, open the window) is a developer tool beside this one, not app code.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "docs" / "screenshots"


def _grab(app: Any, window: Any, full_screen: bool) -> Any:
    """The window as the display shows it (X server pixels under Xvfb), else rendered by Qt."""
    screen = window.screen()
    if app.platformName() not in ("offscreen", "minimal") and screen is not None:
        pixmap = screen.grabWindow(0) if full_screen else screen.grabWindow(window.winId())
        if not pixmap.isNull() and pixmap.width() > 10:
            return pixmap
    return window.grab()


def _freeze_and_grab(app: Any, window: Any, good_moment: Any, path: Path, full_screen: bool) -> None:
    """At a good moment, pause until the frame on screen has its own result drawn (so the video overlay and the
    side panel show the same analysis), grab, and play on. The toolbar is shown as playing in the picture."""
    from soak import pump

    c = window.controller
    pump(app, good_moment, 20)
    c.set_paused(True)
    pump(
        app,
        lambda: (
            c.current_output is not None
            and c.current_frame is not None
            and c.current_output.result.frame_index == c.current_frame.index
        ),
        5,
    )
    window.on_paused(False)
    window.on_status(c.status())
    pump(app, lambda: False, 0.2)
    _grab(app, window, full_screen).save(str(path))
    log.info("saved %s", path)
    c.set_paused(False)


def take_screenshots(
    models_dir: Path, out_dir: Path, size: tuple[int, int] = (1280, 800), warmup_s: float = 20.0
) -> list[Path]:
    """Open the app on the demo, wait until the timeline has filled and an occluder is on the face, save
    ``main_window.png`` and ``presentation.png`` into ``out_dir``; returns the paths."""
    from soak import open_window, pump

    from ofer_live.gui.app import create_application
    from ofer_live.io.demo import DemoClip
    from ofer_live.io.sources import DEMO_LOOP_FRAMES

    app = create_application()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory(prefix="ofer_live_shots_") as tmp:
        window = open_window(app, models_dir, Path(tmp) / "settings.ini", pace=True)
        window.resize(*size)
        c = window.controller
        c.start("demo")
        if not pump(app, lambda: c.results_received >= 3 or c.pipeline_error is not None, 120):
            raise RuntimeError("no result within 120 s")
        pump(app, lambda: False, warmup_s)
        info = c.source_info
        clip = DemoClip(n_frames=DEMO_LOOP_FRAMES, fps=info.fps, size=info.size) if info else None

        def good_moment() -> bool:
            frame, output = c.current_frame, c.current_output
            if frame is None or output is None or not output.result.faces:
                return c.pipeline_error is not None
            if abs(output.result.frame_index - frame.index) > 2:
                return False
            if clip is None or frame.source_index < 0:
                return True
            _, amount = clip.occluder_at(frame.source_index % DEMO_LOOP_FRAMES)  # the demo source loops
            return amount >= 1.0

        main = out_dir / "main_window.png"
        _freeze_and_grab(app, window, good_moment, main, full_screen=False)
        paths.append(main)

        window.set_presentation(True)
        pump(app, lambda: False, 3.0)
        shot = out_dir / "presentation.png"
        _freeze_and_grab(app, window, good_moment, shot, full_screen=True)
        paths.append(shot)
        window.set_presentation(False)
        paths += _virtual_camera_shots(app, window, good_moment, out_dir)
        window.close()
    return paths


class _FeedGrabber:
    """A virtual-camera backend that keeps the newest frame it was sent (the container has no v4l2loopback; the
    toggle, the sink thread and the composition are the app's own)."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.device = "preview"
        self.last = None

    def send(self, frame: Any) -> None:
        self.last = frame.copy()

    def sleep_until_next_frame(self) -> None:
        pass

    def close(self) -> None:
        pass


def _virtual_camera_shots(app: Any, window: Any, good_moment: Any, out_dir: Path) -> list[Path]:
    """The captioned demo loop with the virtual camera on ('with side strip'): the window, and the camera feed."""
    import cv2
    from soak import pump

    c = window.controller
    grabbers: list[_FeedGrabber] = []

    def opener(width: int, height: int, fps: float) -> _FeedGrabber:
        grabbers.append(_FeedGrabber(width, height, fps))
        return grabbers[-1]

    c._vcam_opener = opener
    c.demo_captions = True
    window.vcam_mode_box.setCurrentIndex(window.vcam_mode_box.findData("strip"))
    window.act_vcam.trigger()
    pump(app, lambda: bool(grabbers) and grabbers[0].last is not None, 20)
    shot = out_dir / "virtual_camera.png"
    _freeze_and_grab(app, window, good_moment, shot, full_screen=False)
    pump(app, lambda: False, 0.5)
    feed = out_dir / "virtual_camera_feed.png"
    if grabbers and grabbers[0].last is not None:
        cv2.imwrite(str(feed), grabbers[0].last)
    window.act_vcam.trigger()
    return [shot, feed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/screenshots.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="models folder (default: exported_models/)")
    parser.add_argument("--tiny", action="store_true", help="use freshly exported tiny random models")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--size", default="1280x800", help="main window size WxH (default 1280x800)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="ofer_live_tiny_") as tmp:
        if args.tiny:
            from ofer_live.export.tiny import export_tiny_models

            models = export_tiny_models(Path(tmp))
        else:
            from ofer_live.config import DEFAULT_MODELS_DIR

            models = args.models or DEFAULT_MODELS_DIR
        start = time.monotonic()
        paths = take_screenshots(Path(models), args.out, size=(w, h))
        log.info("%d screenshots in %.1f s", len(paths), time.monotonic() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
