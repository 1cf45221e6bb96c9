"""Start the desktop app: QApplication, settings, controller, main window, event loop."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ofer_live.config import AppConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchOptions:
    """What ``ofer-live gui`` was asked to do."""

    config: AppConfig
    source: str | None = None  # None: the remembered source, else the first working camera, else the demo
    record_dir: Path | None = None  # start recording into this folder as soon as the source is open
    presentation: bool = False
    # pipeline settings given on the command line ({field: value or None}): they win over the saved settings
    pipeline_flags: Mapping[str, Any] = field(default_factory=dict)
    settings_path: Path | None = None  # INI file instead of the user's settings (tests, scripts)
    virtual_camera: bool = False  # send the view to a virtual camera from the start
    virtual_camera_size: tuple[int, int] | None = None  # None: the source's size
    demo_loop: bool = False  # play the built-in demo clip with captions
    camera_size: tuple[int, int] | None = None  # asked of cameras (the status bar shows what they give)
    camera_fps: float | None = None


def create_application(argv: list[str] | None = None) -> Any:
    """The QApplication (created once). OpenCV's bundled Qt plugin path is removed first: it would make Qt
    load OpenCV's plugins instead of PySide6's."""
    import cv2  # noqa: F401 - imported first so the variable it sets is the one removed below

    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
        app.setOrganizationName("ofer_live")
        app.setApplicationName("ofer-live")
        app.setApplicationDisplayName("ofer-live")
    return app


_QT_NOISE = ("propagateSizeHints",)  # harmless offscreen-plugin chatter


def install_qt_message_handler() -> None:
    """Route Qt's own messages (qWarning etc.) to Python logging under the ``qt`` logger."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(mode: Any, context: Any, message: str) -> None:
        if any(noise in message for noise in _QT_NOISE):
            return
        qt_log.log(levels.get(mode, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def build_window(options: LaunchOptions, **controller_kwargs: Any) -> Any:
    """Create the controller and the main window (not shown, not started)."""
    from ofer_live.gui.controller import AppController
    from ofer_live.gui.main_window import MainWindow
    from ofer_live.gui.settings import AppSettings

    settings = AppSettings.open(options.settings_path)
    controller_kwargs.setdefault("virtual_camera_size", options.virtual_camera_size)
    if options.camera_size is not None or options.camera_fps is not None:
        import functools

        from ofer_live.io.sources import open_source

        controller_kwargs.setdefault(
            "source_opener",
            functools.partial(open_source, camera_size=options.camera_size, camera_fps=options.camera_fps),
        )
    controller = AppController(options.config, settings, pipeline_flags=options.pipeline_flags, **controller_kwargs)
    controller.demo_captions = options.demo_loop
    window = MainWindow(controller)
    return window


def run_app(options: LaunchOptions) -> int:
    """Open the window and run the event loop until it closes. Returns the exit code."""
    app = create_application()
    install_qt_message_handler()
    from PySide6.QtCore import QTimer

    window = build_window(options)
    controller = window.controller
    # Ctrl+C / SIGTERM close the window properly (recordings are finished, threads joined).
    # Python runs signal handlers only between bytecodes, so a timer wakes the interpreter regularly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            # Deferred: the handler may run in the middle of a paint event.
            signal.signal(sig, lambda *_: QTimer.singleShot(0, window.close))
        except (ValueError, OSError):  # not the main thread / unsupported
            pass
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    app.aboutToQuit.connect(controller.shutdown)
    if options.presentation:
        window.show()
        window.set_presentation(True)
    else:
        window.show()
    controller.start("demo" if options.demo_loop else options.source, options.record_dir)
    if options.virtual_camera:
        controller.start_virtual_camera()
    rc = app.exec()
    controller.shutdown()
    wake.stop()
    return int(rc)
