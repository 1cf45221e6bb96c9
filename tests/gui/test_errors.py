"""Failures show a message in the window and the app keeps running: a source failing mid-run, a camera
that stops delivering, an unreadable file, missing models."""

from __future__ import annotations

import pytest

from ofer_live.gui.workers import CaptureWorker

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
WAIT = 30_000


def _opener(fake):
    """Opens ``fake`` for any spec ending in broken.mp4 / camera:7, the real sources otherwise."""
    from ofer_live.io.sources import open_source

    def open_spec(spec: str):
        if spec.endswith("broken.mp4") or spec == "camera:7":
            return fake()
        return open_source(spec)

    return open_spec


def test_source_failing_mid_run_shows_a_message_and_the_app_keeps_running(make_window, qtbot, fake_source_cls):
    window = make_window(
        "broken.mp4",
        source_opener=_opener(lambda: fake_source_cls(fail_after=10, error="read error: the file is truncated")),
    )
    c = window.controller
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.level == "error", timeout=WAIT)
    assert "the file is truncated" in window.banner.text()
    assert c.frames_displayed >= 1
    assert c.source_error
    # The app is alive: the user picks another source and frames flow again.
    c.set_source("demo")
    assert not window.banner.isVisible()
    shown = c.frames_displayed
    qtbot.waitUntil(lambda: c.frames_displayed > shown + 5 and c.source_info.spec == "demo", timeout=WAIT)


def test_unplugged_camera_is_retried_then_reported(make_window, qtbot, fake_source_cls, monkeypatch):
    monkeypatch.setattr(CaptureWorker, "reconnect_delay_s", 0.05)
    opened = []

    def camera():
        if opened:
            raise __import__("ofer_live.errors", fromlist=["InputError"]).InputError("cannot open camera 7")
        opened.append(1)
        return fake_source_cls(fail_after=15, live=True)

    window = make_window("camera:7", source_opener=_opener(camera))
    c = window.controller
    qtbot.waitUntil(lambda: window.banner.level == "error" and window.banner.isVisible(), timeout=WAIT)
    assert "Camera 7 stopped delivering frames" in window.banner.text()
    # Retry offered; the window still answers.
    assert window.banner._retry.isVisible()
    c.set_paused(True)
    c.set_paused(False)


def test_unreadable_file_shows_a_message(make_window, qtbot, tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    window = make_window(str(bad))
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.level == "error", timeout=WAIT)
    assert "not_a_video.mp4" in window.banner.text()
    assert window.controller.source_error


def test_missing_models_show_a_message_and_the_video_still_plays(make_window, qtbot, tmp_path):
    empty = tmp_path / "no_models"
    empty.mkdir()
    window = make_window("demo", models=empty)
    c = window.controller
    qtbot.waitUntil(lambda: c.pipeline_error is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT)
    assert "Analysis is off" in window.banner.text()
    assert str(empty) in window.banner.text() or "model" in window.banner.text().lower()
    shown = c.frames_displayed
    qtbot.waitUntil(lambda: c.frames_displayed > shown + 5, timeout=WAIT)
    assert c.results_received == 0


def test_remembered_source_that_fails_falls_back_to_camera_or_demo(make_window, qtbot, tmp_path, settings_path):
    from ofer_live.gui.settings import AppSettings, StoredSettings

    AppSettings.open(settings_path).save(StoredSettings(source=str(tmp_path / "gone.mp4")))
    window = make_window(None)
    c = window.controller
    qtbot.waitUntil(lambda: c.source_info is not None, timeout=WAIT)
    assert c.source_info.requested == "auto"
    assert "gone.mp4" in window.banner.text() or "camera" in window.banner.text().lower()
