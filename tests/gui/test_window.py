"""The main window on the demo clip with tiny models: frames, results, controls, shortcuts, rendering."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from ofer_live.gui.images import qimage_to_bgr

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]
WAIT = 30_000


def _wait_for_face(qtbot, controller):
    qtbot.waitUntil(
        lambda: controller.current_output is not None and len(controller.current_output.result.faces) > 0,
        timeout=WAIT,
    )


def _pause_on_a_face(qtbot, controller):
    """Pause on a frame whose own result has a face (step past frames where an occluder hides it)."""
    controller.set_paused(True)
    for _ in range(60):
        qtbot.waitUntil(
            lambda: (
                controller.current_frame is not None
                and controller.current_output is not None
                and controller.current_output.result.frame_index >= controller.current_frame.index
            ),
            timeout=WAIT,
        )
        if controller.current_output.result.faces:
            return
        index = controller.current_frame.index
        controller.step()
        qtbot.waitUntil(lambda i=index: controller.current_frame.index > i, timeout=WAIT)
    raise AssertionError("no frame with a detected face")


def test_window_shows_frames_and_results_on_demo(make_window, qtbot):
    window = make_window("demo")
    c = window.controller
    qtbot.waitUntil(lambda: c.frames_displayed >= 5 and c.results_received >= 3, timeout=WAIT)
    assert c.source_info is not None and c.source_info.spec == "demo"
    assert window.view.image() is not None and not window.view.image().isNull()
    _wait_for_face(qtbot, c)
    assert c.provider and "CPU" in c.provider
    # The side panel shows the selected face: bars, images, headline, timeline.
    qtbot.waitUntil(lambda: window.side.bars.probs() is not None, timeout=WAIT)
    assert window.side.bars.probs().shape == (7,)
    assert window.side.images.captions()[:2] == ["aligned + occlusion", "reconstruction"]
    assert "%" in window.side.headline.text()
    qtbot.waitUntil(lambda: window.side.timeline.point_count() >= 2, timeout=WAIT)
    # Status bar readouts.
    window.on_status(c.status())
    assert window.provider_label.text() == "provider: CPU"
    assert "fps" in window.display_label.text() and "fps" in window.inference_label.text()
    assert window.latency_label.text().endswith("ms") and window.latency_label.text() != "latency – ms"
    status = c.status()
    assert status.display_fps > 0 and status.inference_fps > 0


def test_slider_and_toggles_change_the_next_result(make_window, qtbot):
    window = make_window("demo")
    c = window.controller
    _wait_for_face(qtbot, c)
    _pause_on_a_face(qtbot, c)

    def occluded_after(slider_value: int) -> float:
        window.side.slider.setValue(slider_value)
        version = c.config_version
        qtbot.waitUntil(
            lambda: (
                c.current_output is not None
                and c.current_output.config_version >= version
                and c.current_output.result.frame_index == c.current_frame.index
                and len(c.current_output.result.faces) > 0
            ),
            timeout=WAIT,
        )
        return float(np.mean([f.occluded_fraction for f in c.current_output.result.faces]))

    low = occluded_after(0)  # sensitivity 0.25: fewer patches count as occluded
    high = occluded_after(100)  # sensitivity 4: more
    assert c.pipeline_config.sensitivity == pytest.approx(4.0)
    assert window.side.sensitivity_value.text() == "×4.00"
    assert high > low

    # Drawing toggles redraw the frame on screen at once.
    before = c.annotated.copy()
    window.side.toggles["grid"].setChecked(False)
    assert c.render_options.grid is False
    assert not np.array_equal(before, c.annotated)
    before = c.annotated.copy()
    window.side.toggles["reconstruction"].setChecked(False)
    assert not np.array_equal(before, c.annotated)
    window.side.toggles["cam"].setChecked(True)
    assert window.side.images.captions()[-1] == "CAM"

    # Smoothing goes to the pipeline: the next result carries the new config version.
    window.side.toggles["smoothing"].setChecked(not c.toggles["smoothing"])
    version = c.config_version
    qtbot.waitUntil(lambda: c.current_output.config_version >= version, timeout=WAIT)
    assert c.pipeline_config.smoothing == c.toggles["smoothing"]


def test_pause_and_step(make_window, qtbot):
    window = make_window("demo")
    c = window.controller
    qtbot.waitUntil(lambda: c.frames_displayed >= 3, timeout=WAIT)
    c.set_paused(True)
    qtbot.wait(300)
    shown = c.frames_displayed
    qtbot.wait(400)
    assert c.frames_displayed == shown, "frames kept coming while paused"
    index = c.current_frame.index
    window.act_step.trigger()
    qtbot.waitUntil(lambda: c.current_frame.index == index + 1, timeout=WAIT)
    assert c.paused
    c.set_paused(False)
    qtbot.waitUntil(lambda: c.frames_displayed > shown + 3, timeout=WAIT)


def test_keyboard_shortcuts(make_window, qtbot, tmp_path):
    window = make_window("demo")
    c = window.controller
    qtbot.waitUntil(lambda: c.frames_displayed >= 3 and c.source_info is not None, timeout=WAIT)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    c.set_output_dir(tmp_path / "out")

    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert c.paused and window.act_pause.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not c.paused

    qtbot.keyClick(window, Qt.Key.Key_S)
    snaps = list((tmp_path / "out").glob("ofer_live_snapshot_*.png"))
    assert len(snaps) == 1
    image = cv2.imread(str(snaps[0]))
    assert image is not None and image.shape[:2] == c.current_frame.image.shape[:2]

    qtbot.keyClick(window, Qt.Key.Key_R)
    assert c.recording and window.act_record.isChecked()
    qtbot.waitUntil(lambda: c.recorder.frames_written >= 3, timeout=WAIT)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert not c.recording and c.last_recording is not None and c.last_recording.path.exists()

    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.presentation and window.isFullScreen()
    assert not window.toolbar.isVisible() and not window.side.controls.isVisible()
    assert c.render_options.large_text
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presentation and not window.isFullScreen()
    assert window.toolbar.isVisible()


def test_window_renders_to_a_png_that_is_not_blank(make_window, qtbot, tmp_path):
    window = make_window("demo")
    c = window.controller
    _wait_for_face(qtbot, c)
    qtbot.waitUntil(lambda: window.side.timeline.point_count() >= 3, timeout=WAIT)
    path = tmp_path / "window.png"
    assert window.grab().save(str(path))
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600
    assert image.std() > 20
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500
    # The video area itself shows the frame, not a uniform placeholder.
    view = qimage_to_bgr(window.view.grab().toImage())
    assert view.std() > 20


def test_presentation_mode_renders(make_window, qtbot, tmp_path):
    window = make_window("demo")
    c = window.controller
    _wait_for_face(qtbot, c)
    window.set_presentation(True)
    qtbot.waitUntil(window.isFullScreen, timeout=5000)
    image = qimage_to_bgr(window.grab().toImage())
    assert image.std() > 20
    assert window.side.headline.styleSheet().startswith("font-size: 52px")
    window.set_presentation(False)
    assert window.side.controls.isVisible()


class TwoFacePipeline:
    """A pipeline stand-in that always finds two faces (left small, right large)."""

    provider = "CPUExecutionProvider"

    def update_config(self, config):
        pass

    def take_ticket(self):
        return 0

    def process(self, image, index, time_s, ticket=None):
        from ofer_live.types import Face, FaceResult, FrameResult

        faces = []
        for track, x, y, side in ((3, 40, 60, 90), (8, 330, 80, 160)):
            s = side / 32.0
            to_frame = np.array([[s, 0, x], [0, s, y]], np.float32)
            to_face = np.array([[1 / s, 0, -x / s], [0, 1 / s, -y / s]], np.float32)
            face = Face(
                (x, y, side, side),
                np.zeros((6, 2), np.float32),
                0.9,
                track,
                np.full((32, 32, 3), 120, np.uint8),
                to_face,
                to_frame,
            )
            probs = np.full(7, 0.05, np.float32)
            probs[track % 7] = 0.7
            faces.append(
                FaceResult(
                    face,
                    np.zeros((4, 4), np.float32),
                    np.eye(4, dtype=bool),
                    np.full((4, 4), 0.5, np.float32),
                    np.full((32, 32, 3), 90, np.uint8),
                    probs,
                )
            )
        return FrameResult(index, time_s, image.shape[:2], tuple(faces), (), {"total": 1.0})

    def close(self):
        pass


def test_several_faces_and_click_to_select(make_window, qtbot):
    window = make_window("demo", pipeline_factory=lambda config: TwoFacePipeline())
    c = window.controller
    qtbot.waitUntil(lambda: c.current_output is not None and c.frames_displayed > 2, timeout=WAIT)
    qtbot.waitUntil(lambda: window.side.title.text().startswith("Face 2 of 2"), timeout=WAIT)
    assert c.selected_track == 8  # the largest face by default
    # Click on the small face in the view: widget coordinates of frame point (85, 105).
    rect = window.view._target  # noqa: SLF001 - where the frame is drawn
    scale = rect.width() / c.current_frame.image.shape[1]
    point = QPoint(int(rect.x() + 85 * scale), int(rect.y() + 105 * scale))
    qtbot.mouseClick(window.view, Qt.MouseButton.LeftButton, pos=point)
    assert c.selected_track == 3
    qtbot.waitUntil(lambda: window.side.title.text().startswith("Face 1 of 2"), timeout=WAIT)
    assert "track 3" in window.side.title.text()
    assert "happy" in window.side.headline.text()  # track 3 -> class 3
