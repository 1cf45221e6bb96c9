"""The main window: video view, side panel (face, bars, timeline, analysis controls), toolbar, status bar,
and presentation mode (full screen, large text, controls hidden)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSlider,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ofer_live.contracts import LABELS
from ofer_live.gui.controller import (
    AppController,
    FaceView,
    RecordingStatus,
    Status,
    sensitivity_from_slider,
    slider_from_sensitivity,
)
from ofer_live.gui.images import rgb_to_qimage
from ofer_live.gui.sources import DEMO, camera_index, describe_source, list_cameras
from ofer_live.gui.widgets import (
    BACKGROUND,
    CLASS_COLORS,
    FaceImages,
    MessageBanner,
    ProbabilityBars,
    TimelinePlot,
    VideoView,
)
from ofer_live.gui.workers import SourceInfo
from ofer_live.render.overlay import grid_on_face, heatmap_on_face

log = logging.getLogger(__name__)

OPEN_FILE = "__open_file__"
VIDEO_FILTER = "Videos and images (*.mp4 *.mkv *.avi *.mov *.webm *.m4v *.mpg *.png *.jpg *.jpeg *.bmp);;All files (*)"

STYLE = """
QMainWindow, QWidget#central { background: #181a1e; }
QWidget { color: #e6e8ec; }
QFrame#sidePanel { background: #202329; border-left: 1px solid #2c3038; }
QGroupBox { border: 1px solid #33373f; border-radius: 4px; margin-top: 10px; padding: 10px 6px 4px 6px; }
QGroupBox::title { subcontrol-origin: margin; subcontrol-position: top left; left: 10px; padding: 0 4px;
                   color: #9aa0aa; background: #202329; }
QToolBar { background: #202329; border-bottom: 1px solid #2c3038; spacing: 4px; padding: 3px; }
QToolButton { padding: 4px 8px; border-radius: 3px; }
QToolButton:hover { background: #2f333b; }
QToolButton:checked { background: #3a4050; }
QToolButton#recordButton:checked { background: #b3261e; color: white; }
QToolButton#vcamButton:checked { background: #1e6fb3; color: white; }
QComboBox { background: #2a2e35; border: 1px solid #3a3f48; border-radius: 3px; padding: 2px 6px; min-width: 150px; }
QComboBox QAbstractItemView { background: #2a2e35; selection-background-color: #3a4a66; }
QStatusBar { background: #202329; color: #aab0ba; }
QStatusBar QLabel { color: #aab0ba; padding: 0 6px; }
QLabel#recLabel { color: #ff6b6b; font-weight: bold; }
QMenuBar { background: #202329; }
QMenuBar::item:selected, QMenu::item:selected { background: #3a4a66; }
QMenu { background: #2a2e35; }
QSlider::groove:horizontal { height: 4px; background: #3a3f48; border-radius: 2px; }
QSlider::handle:horizontal { width: 14px; margin: -6px 0; border-radius: 7px; background: #8ab4f8; }
QPushButton { background: #2f333b; border: 1px solid #444a54; border-radius: 3px; padding: 3px 10px; }
QPushButton:hover { background: #3a3f48; }
"""

SHORTCUT_HELP = (
    "Space — pause / resume\n"
    ". (period) — step one frame\n"
    "R — start / stop recording\n"
    "V — virtual camera on / off\n"
    "S — snapshot (PNG)\n"
    "F — presentation mode (Esc leaves it)\n"
    "Ctrl+O — open a video file\n"
    "Ctrl+Q — quit\n"
    "Click a face in the video to select it."
)


class SidePanel(QFrame):
    """Selected face: aligned crop | reconstruction | CAM, headline label, occluded %, bars, timeline,
    and the analysis controls (sensitivity slider, toggles)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidePanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(8)
        self.title = QLabel("No face yet")
        self.title.setStyleSheet("color: #9aa0aa;")
        self.headline = QLabel("–")
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.occluded = QLabel("")
        self.images = FaceImages()
        self.bars = ProbabilityBars()
        self.timeline = TimelinePlot()
        self.rec_label = QLabel("")
        self.rec_label.setObjectName("recLabel")
        self.rec_label.hide()
        self._head = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self._head.addWidget(self.headline, 1)
        self._head.addWidget(self.occluded, 0)
        layout.addWidget(self.rec_label)
        layout.addWidget(self.title)
        layout.addLayout(self._head)
        layout.addWidget(self.images)
        layout.addWidget(self.bars)
        self.timeline_title = QLabel("Last 30 s")
        self.timeline_title.setStyleSheet("color: #9aa0aa;")
        layout.addWidget(self.timeline_title)
        layout.addWidget(self.timeline, 1)

        self.controls = QGroupBox("Analysis")
        grid = QVBoxLayout(self.controls)
        row = QHBoxLayout()
        row.addWidget(QLabel("Occlusion sensitivity"))
        self.sensitivity_value = QLabel("×1.00")
        row.addStretch(1)
        row.addWidget(self.sensitivity_value)
        grid.addLayout(row)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.slider.setToolTip("Scales the occlusion (SVDD) threshold: right = more patches count as occluded")
        grid.addWidget(self.slider)
        toggles = QHBoxLayout()
        self.toggles: dict[str, QCheckBox] = {}
        for name, text, tip in (
            ("grid", "Grid", "occluded-patch grid on the video"),
            ("reconstruction", "Recon.", "reconstruction inset on the video"),
            ("cam", "CAM", "class-activation heat-map (video and panel)"),
            ("bars", "Bars", "probability bars on the video"),
            ("smoothing", "Smooth", "temporal smoothing of the probabilities"),
        ):
            box = QCheckBox(text)
            box.setToolTip(f"Show/use the {tip}")
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.toggles[name] = box
            toggles.addWidget(box)
        grid.addLayout(toggles)
        layout.addWidget(self.controls)
        self.set_large(False)

    def set_large(self, large: bool) -> None:
        self._large = large
        # Presentation: the occluded % goes under the (large) label instead of beside it.
        self._head.setDirection(QBoxLayout.Direction.TopToBottom if large else QBoxLayout.Direction.LeftToRight)
        align = Qt.AlignmentFlag.AlignLeft if large else Qt.AlignmentFlag.AlignRight
        self.occluded.setAlignment(align | Qt.AlignmentFlag.AlignVCenter)
        self.headline.setStyleSheet(f"font-size: {52 if large else 24}px; font-weight: bold;")
        self.occluded.setStyleSheet(f"font-size: {28 if large else 13}px; color: #ff8a80;")
        self.title.setStyleSheet(f"font-size: {20 if large else 12}px; color: #9aa0aa;")
        self.timeline_title.setStyleSheet(f"font-size: {20 if large else 12}px; color: #9aa0aa;")
        self.rec_label.setStyleSheet(f"font-size: {22 if large else 13}px;")
        self.controls.setVisible(not large)
        self.bars.set_large(large)
        self.timeline.set_large(large)
        self.images.set_large(large)

    def show_face(self, view: FaceView, show_cam: bool) -> None:
        face = view.face
        if face is None:
            self.title.setText("No face in view" if view.count == 0 else "")
            self.headline.setText("<span style='color:#9aa0aa'>–</span>")
            self.occluded.setText("")
            self.images.set_images([])
            self.bars.set_probs(None)
            self.timeline.set_series(np.zeros(0), np.zeros((0, len(LABELS))), view.now)
            return
        where = f"Face {view.index + 1} of {view.count}" if view.count > 1 else "Face"
        if view.track_id >= 0:
            where += f" · track {view.track_id}"
        if view.count > 1:
            where += " · click a face to select it"
        self.title.setText(where)
        color = CLASS_COLORS[face.label_index].name()
        self.headline.setText(f"<span style='color:{color}'>{face.label}</span> {face.confidence * 100:.0f}%")
        self.occluded.setText(f"occluded {face.occluded_fraction * 100:.0f}%")
        aligned = face.face.aligned
        images = [
            ("aligned + occlusion", rgb_to_qimage(grid_on_face(aligned, face.mask))),
            ("reconstruction", rgb_to_qimage(face.reconstruction)),
        ]
        if show_cam:
            images.append(("CAM", rgb_to_qimage(heatmap_on_face(face.reconstruction, face.cam))))
        self.images.set_images(images)
        self.bars.set_probs(face.probs)
        self.timeline.set_series(view.times, view.probs, view.now)


class MainWindow(QMainWindow):
    """The app window. All work happens in the controller and its threads; this class only displays."""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.presentation = False
        self._was_maximized = False
        self._normal_geometry = None
        self.setWindowTitle("ofer-live — occluded facial expression recognition")
        self.setStyleSheet(STYLE)
        self._build()
        self._connect()
        self._sync_controls()
        self.resize(1280, 780)

    # ------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        central = QWidget()
        central.setObjectName("central")
        outer = QHBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        left = QVBoxLayout()
        left.setContentsMargins(8, 8, 8, 8)
        left.setSpacing(6)
        self.banner = MessageBanner()
        self.view = VideoView()
        self.presentation_hint = QLabel("F or Esc: leave presentation · Space: pause · R: record · S: snapshot")
        self.presentation_hint.setStyleSheet("color: #6c727d; font-size: 14px;")
        self.presentation_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.presentation_hint.hide()
        left.addWidget(self.banner)
        left.addWidget(self.view, 1)
        left.addWidget(self.presentation_hint)
        outer.addLayout(left, 1)
        self.side = SidePanel()
        self.side.setFixedWidth(400)
        outer.addWidget(self.side)
        self.setCentralWidget(central)

        # Actions (added to the window so the shortcuts also work in presentation mode, menus hidden).
        self.act_open = self._action("Open video file…", "Ctrl+O", self._open_file)
        self.act_output = self._action("Choose output folder…", None, self._choose_output_dir)
        self.act_save_clean = self._action("Also save the clean video when recording", None, None, checkable=True)
        self.act_snapshot = self._action("Snapshot", "S", self.controller.snapshot)
        self.act_snapshot.setToolTip("Save the frame with its overlays as a PNG (S)")
        self.act_quit = self._action("Quit", "Ctrl+Q", self.close)
        self.act_pause = self._action("Pause", "Space", None, checkable=True)
        self.act_pause.setToolTip("Pause / resume (Space)")
        self.act_step = self._action("Step", ".", self.controller.step)
        self.act_step.setToolTip("Show one more frame (.)")
        self.act_record = self._action("Record", "R", None, checkable=True)
        self.act_record.setToolTip("Start / stop recording the annotated video + JSONL (R)")
        self.act_vcam = self._action("Virtual camera", "V", None, checkable=True)
        self.act_vcam.setToolTip("Send the view to a virtual camera that Zoom, Teams or Meet can pick (V)")
        self.act_demo_loop = self._action("Play the demo loop with captions", None, self.controller.play_demo_loop)
        self.act_demo_loop.setToolTip("The built-in demo clip, captioned: for a presenter without a camera")
        self.act_presentation = self._action("Presentation", "F", None, checkable=True)
        self.act_presentation.setToolTip("Full screen with large text (F; Esc leaves)")
        self.act_leave = self._action("Leave presentation mode", "Esc", lambda: self.set_presentation(False))
        self.act_shortcuts = self._action("Keyboard shortcuts", "F1", self._show_shortcuts)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for act in (self.act_open, self.act_output, self.act_save_clean, self.act_snapshot):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        play_menu = menu.addMenu("&Playback")
        for act in (self.act_pause, self.act_step, self.act_record, self.act_vcam):
            play_menu.addAction(act)
        play_menu.addSeparator()
        play_menu.addAction(self.act_demo_loop)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.act_presentation)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)

        self.toolbar = QToolBar("Controls")
        self.toolbar.setMovable(False)
        self.toolbar.setIconSize(QSize(16, 16))
        self.toolbar.addWidget(QLabel(" Source "))
        self.source_box = QComboBox()
        self.source_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.toolbar.addWidget(self.source_box)
        self.toolbar.addSeparator()
        for act in (self.act_pause, self.act_step):
            self.toolbar.addAction(act)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.act_snapshot)
        self.toolbar.addAction(self.act_record)
        record_button = self.toolbar.widgetForAction(self.act_record)
        record_button.setObjectName("recordButton")
        self.toolbar.addAction(self.act_vcam)
        self.toolbar.widgetForAction(self.act_vcam).setObjectName("vcamButton")
        self.vcam_mode_box = QComboBox()
        self.vcam_mode_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.vcam_mode_box.setToolTip("What the virtual camera sends")
        for text, mode in (("annotated", "annotated"), ("with side strip", "strip"), ("clean", "clean")):
            self.vcam_mode_box.addItem(text, mode)
        self.toolbar.addWidget(self.vcam_mode_box)
        self.toolbar.addSeparator()
        self.toolbar.addAction(self.act_presentation)
        for act in self.toolbar.actions():
            button = self.toolbar.widgetForAction(act)
            if button is not None:
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self._fill_sources()

        bar = self.statusBar()
        self.rec_status = QLabel("")
        self.rec_status.setObjectName("recLabel")
        self.source_label = QLabel("")
        self.provider_label = QLabel("provider: –")
        self.display_label = QLabel("display – fps")
        self.inference_label = QLabel("inference – fps")
        self.latency_label = QLabel("latency – ms")
        self.dropped_label = QLabel("dropped 0")
        for label in (
            self.rec_status,
            self.source_label,
            self.provider_label,
            self.display_label,
            self.inference_label,
            self.latency_label,
            self.dropped_label,
        ):
            bar.addPermanentWidget(label)
        self.rec_status.hide()

    def _action(self, text: str, shortcut: str | None, slot, checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        if slot is not None:
            act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)
        return act

    def _fill_sources(self, current: str | None = None) -> None:
        box = self.source_box
        box.blockSignals(True)
        box.clear()
        for index in list_cameras():
            box.addItem(f"Camera {index}", f"camera:{index}")
        box.addItem("Demo clip", DEMO)
        if current and camera_index(current) is None and current not in (DEMO, "auto"):
            box.addItem(describe_source(current), current)
            box.setItemData(box.count() - 1, current, Qt.ItemDataRole.ToolTipRole)
        box.addItem("Open file…", OPEN_FILE)
        if current is not None:
            i = box.findData(current)
            if i < 0 and camera_index(current) is not None:
                box.insertItem(0, describe_source(current), current)
                i = 0
            box.setCurrentIndex(max(i, 0))
        box.blockSignals(False)

    def _connect(self) -> None:
        c = self.controller
        c.image_ready.connect(self.view.set_image)
        c.face_changed.connect(self.on_face_changed)
        c.message.connect(self.on_message)
        c.message_cleared.connect(self.banner.hide)
        c.status_message.connect(self.on_status_message)
        c.status_changed.connect(self.on_status)
        c.recording_changed.connect(self.on_recording)
        c.source_changed.connect(self.on_source_changed)
        c.source_changing.connect(self.on_source_changing)
        c.paused_changed.connect(self.on_paused)
        c.settings_changed.connect(self._sync_controls)
        self.banner.retry_clicked.connect(c.retry)
        self.view.frame_clicked.connect(c.select_face_at)
        self.source_box.activated.connect(self._source_chosen)
        self.act_pause.toggled.connect(self._pause_toggled)
        self.act_record.toggled.connect(self._record_toggled)
        self.act_vcam.toggled.connect(self._vcam_toggled)
        c.virtual_camera_changed.connect(self.on_virtual_camera)
        self.vcam_mode_box.currentIndexChanged.connect(
            lambda _i: c.set_virtual_camera_mode(self.vcam_mode_box.currentData())
        )
        self.act_presentation.toggled.connect(self.set_presentation)
        self.act_save_clean.toggled.connect(c.set_save_clean)
        self.side.slider.valueChanged.connect(self._slider_moved)
        for name, box in self.side.toggles.items():
            box.toggled.connect(lambda on, n=name: self._toggle(n, on))

    def _sync_controls(self) -> None:
        c = self.controller
        self.side.slider.blockSignals(True)
        self.side.slider.setValue(slider_from_sensitivity(c.pipeline_config.sensitivity))
        self.side.slider.blockSignals(False)
        self.side.sensitivity_value.setText(f"×{c.pipeline_config.sensitivity:.2f}")
        for name, box in self.side.toggles.items():
            box.blockSignals(True)
            box.setChecked(c.toggles[name])
            box.blockSignals(False)
        self.act_save_clean.blockSignals(True)
        self.act_save_clean.setChecked(c.stored.save_clean)
        self.act_save_clean.blockSignals(False)
        self.act_output.setText(f"Choose output folder… ({c.output_dir})")

    # ------------------------------------------------------------------------------------ user input
    def _source_chosen(self, index: int) -> None:
        spec = self.source_box.itemData(index)
        if spec == OPEN_FILE:
            self._open_file()
            return
        if spec:
            self.controller.set_source(spec)

    def _open_file(self) -> None:
        start = self.controller.stored.source if self.controller.stored.source else str(Path.home())
        start_dir = str(Path(start).parent) if Path(start).exists() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or image", start_dir, VIDEO_FILTER)
        if path:
            self.controller.set_source(path)
        else:
            self._fill_sources(self.controller.requested_source)

    def _choose_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Output folder for recordings and snapshots", str(self.controller.output_dir)
        )
        if path:
            self.controller.set_output_dir(path)

    def _pause_toggled(self, on: bool) -> None:
        self.controller.set_paused(on)

    def _vcam_toggled(self, on: bool) -> None:
        if on and not self.controller.virtual_camera_on:
            self.controller.start_virtual_camera()
        elif not on and self.controller.virtual_camera_on:
            self.controller.stop_virtual_camera()

    @Slot(bool)
    def on_virtual_camera(self, on: bool) -> None:
        self.act_vcam.blockSignals(True)
        self.act_vcam.setChecked(on)
        self.act_vcam.blockSignals(False)

    def _record_toggled(self, on: bool) -> None:
        if on and not self.controller.recording:
            if not self.controller.start_recording():
                self.act_record.blockSignals(True)
                self.act_record.setChecked(False)
                self.act_record.blockSignals(False)
        elif not on and self.controller.recording:
            self.controller.stop_recording()

    def _slider_moved(self, value: int) -> None:
        s = sensitivity_from_slider(value)
        self.side.sensitivity_value.setText(f"×{s:.2f}")
        self.controller.set_sensitivity(s)

    def _toggle(self, name: str, on: bool) -> None:
        self.controller.set_toggle(name, on)

    def _show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUT_HELP)

    # ------------------------------------------------------------------------------------ controller output
    @Slot(object)
    def on_face_changed(self, view: FaceView) -> None:
        self.side.show_face(view, show_cam=self.controller.toggles.get("cam", False))
        if self.controller.pipeline_error:
            self.side.title.setText("Analysis is off (see the message above the video)")

    @Slot(str, str, bool)
    def on_message(self, level: str, text: str, retry: bool) -> None:
        self.banner.show_message(level, text, retry)
        if level == "error":
            self.view.set_placeholder("No video — choose a source, or Retry")

    @Slot(str)
    def on_status_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 5000)

    @Slot(object)
    def on_status(self, status: Status) -> None:
        self.provider_label.setText(f"provider: {_short_provider(status.provider)}")
        self.display_label.setText(f"display {status.display_fps:.1f} fps")
        self.inference_label.setText(f"inference {status.inference_fps:.1f} fps")
        latency = "–" if status.latency_ms is None else f"{status.latency_ms:.0f}"
        self.latency_label.setText(f"latency {latency} ms")
        self.dropped_label.setText(f"dropped {status.dropped}")

    @Slot(object)
    def on_recording(self, rec: RecordingStatus | None) -> None:
        self.act_record.blockSignals(True)
        self.act_record.setChecked(rec is not None)
        self.act_record.blockSignals(False)
        if rec is None:
            self.rec_status.hide()
            self.side.rec_label.hide()
            self.act_record.setText("Record")
            return
        minutes, seconds = divmod(int(rec.elapsed_s), 60)
        self.act_record.setText(f"Stop {minutes:02d}:{seconds:02d}")
        self.rec_status.setText(f"● REC {minutes:02d}:{seconds:02d}  {rec.path}")
        self.rec_status.show()
        self.side.rec_label.setText(f"● REC {minutes:02d}:{seconds:02d}  {rec.path.name}")
        self.side.rec_label.setToolTip(str(rec.path))
        self.side.rec_label.show()

    @Slot(str)
    def on_source_changing(self, spec: str) -> None:
        self._fill_sources(spec)
        self.view.clear()
        self.view.set_placeholder(f"Opening {describe_source(spec)}…")

    @Slot(object)
    def on_source_changed(self, info: SourceInfo) -> None:
        self._fill_sources(info.spec)
        w, h = info.size
        self.statusBar().showMessage(f"{info.name}: {w}×{h} at {info.fps:.0f} fps", 5000)
        backend = f" ({info.backend})" if info.backend else ""
        self.source_label.setText(f"{w}×{h} @ {info.fps:.0f} fps{backend}")  # what the source really gives
        self.setWindowTitle(f"ofer-live — {info.name}")

    @Slot(bool)
    def on_paused(self, paused: bool) -> None:
        self.act_pause.blockSignals(True)
        self.act_pause.setChecked(paused)
        self.act_pause.blockSignals(False)
        self.act_pause.setText("Resume" if paused else "Pause")

    # ------------------------------------------------------------------------------------ presentation
    def set_presentation(self, on: bool) -> None:
        if on == self.presentation:
            return
        self.presentation = on
        self.act_presentation.blockSignals(True)
        self.act_presentation.setChecked(on)
        self.act_presentation.blockSignals(False)
        self.menuBar().setVisible(not on)
        self.toolbar.setVisible(not on)
        self.statusBar().setVisible(not on)
        self.presentation_hint.setVisible(on)
        self.side.set_large(on)
        self.controller.set_large_text(on)
        if on:
            self._was_maximized = self.isMaximized()
            screen = self.screen()
            width = screen.geometry().width() if screen is not None else 1920
            self.side.setFixedWidth(max(420, int(width * 0.32)))
            self._normal_geometry = self.geometry()
            if screen is not None:  # without a window manager (e.g. Xvfb) full screen alone keeps the old size
                self.setGeometry(screen.geometry())
            self.showFullScreen()
        else:
            self.side.setFixedWidth(400)
            if self._was_maximized:
                self.showMaximized()
            else:
                self.showNormal()
                if self._normal_geometry is not None:
                    self.setGeometry(self._normal_geometry)

    def toggle_presentation(self) -> None:
        self.set_presentation(not self.presentation)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.controller.shutdown()
        super().closeEvent(event)


def _short_provider(provider: str | None) -> str:
    if not provider:
        return "–"
    return provider.replace("ExecutionProvider", "") or provider


__all__ = ["MainWindow", "SidePanel", "BACKGROUND"]
