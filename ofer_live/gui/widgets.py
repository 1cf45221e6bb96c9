"""Widgets drawn with QPainter (PySide6-Essentials has no QtCharts): video view, probability bars,
probability timeline, face images, message banner."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from ofer_live.contracts import LABELS

# One colour per class (FER2013 order), shared by the bars, the timeline and its legend.
CLASS_COLORS: tuple[QColor, ...] = (
    QColor(229, 57, 53),  # angry
    QColor(67, 160, 71),  # disgust
    QColor(142, 36, 170),  # fear
    QColor(253, 216, 53),  # happy
    QColor(30, 136, 229),  # sad
    QColor(0, 188, 212),  # surprise
    QColor(158, 158, 158),  # neutral
)
BACKGROUND = QColor(24, 26, 30)
PANEL = QColor(36, 39, 45)
TEXT = QColor(230, 232, 236)
MUTED = QColor(150, 155, 165)


def _font(base: QFont, pixel_size: int, bold: bool = False) -> QFont:
    font = QFont(base)
    font.setPixelSize(max(6, int(pixel_size)))
    font.setBold(bold)
    return font


class VideoView(QWidget):
    """Shows the newest annotated frame, scaled to fit with its aspect ratio kept. Click selects a face."""

    frame_clicked = Signal(float, float)  # frame pixel coordinates

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._target = QRectF()
        self._placeholder = "Opening the source…"
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(960, 720)

    @Slot(QImage)
    def set_image(self, image: QImage) -> None:
        self._image = image
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        if self._image is None:
            self.update()

    def clear(self) -> None:
        self._image = None
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        if self._image is None or self._image.isNull():
            painter.setPen(MUTED)
            painter.setFont(_font(self.font(), max(14, self.height() // 30)))
            painter.drawText(
                self.rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
            return
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        self._target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(self._target, self._image)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._image is None or self._target.isEmpty():
            return
        pos = event.position()
        if not self._target.contains(pos):
            return
        x = (pos.x() - self._target.x()) * self._image.width() / self._target.width()
        y = (pos.y() - self._target.y()) * self._image.height() / self._target.height()
        self.frame_clicked.emit(float(x), float(y))


class ProbabilityBars(QWidget):
    """The 7 class probabilities as horizontal bars; the winning class is highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._probs: np.ndarray | None = None
        self._large = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._update_height()

    def _row_height(self) -> int:
        return 38 if self._large else 22

    def _update_height(self) -> None:
        self.setMinimumHeight(self._row_height() * len(LABELS) + 4)

    def set_large(self, large: bool) -> None:
        self._large = large
        self._update_height()
        self.update()

    def set_probs(self, probs: np.ndarray | None) -> None:
        """probs: (7,) float32 in FER2013 order, or None (no face)."""
        self._probs = None if probs is None else np.asarray(probs, dtype=np.float32).reshape(-1)
        self.update()

    def probs(self) -> np.ndarray | None:
        return self._probs

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        row = self._row_height()
        painter.setFont(_font(self.font(), row * 0.55, bold=True))  # measure with the widest (bold) font
        metrics = painter.fontMetrics()
        label_w = max(metrics.horizontalAdvance(name) for name in LABELS) + 10
        pct_w = metrics.horizontalAdvance("100%") + 8
        bar_x = label_w
        bar_w = max(10, self.width() - label_w - pct_w)
        best = int(np.argmax(self._probs)) if self._probs is not None and self._probs.size == len(LABELS) else -1
        for i, name in enumerate(LABELS):
            y = 2 + i * row
            p = float(self._probs[i]) if best >= 0 else 0.0
            painter.setPen(TEXT if i == best else MUTED)
            painter.setFont(_font(self.font(), row * 0.55, bold=(i == best)))
            painter.drawText(
                QRectF(0, y, label_w - 6, row), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, name
            )
            track = QRectF(bar_x, y + row * 0.2, bar_w, row * 0.6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(PANEL.lighter(130))
            painter.drawRoundedRect(track, 3, 3)
            if best >= 0:
                color = QColor(CLASS_COLORS[i])
                if i != best:
                    color.setAlpha(170)
                painter.setBrush(color)
                painter.drawRoundedRect(
                    QRectF(track.x(), track.y(), track.width() * min(max(p, 0.0), 1.0), track.height()), 3, 3
                )
            painter.setPen(TEXT if i == best else MUTED)
            text = f"{p * 100:.0f}%" if best >= 0 else "–"
            painter.drawText(
                QRectF(bar_x + bar_w + 4, y, pct_w, row),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                text,
            )


class TimelinePlot(QWidget):
    """The selected face's probabilities over the last ``window_s`` seconds, one line per class."""

    def __init__(self, window_s: float = 30.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_s = window_s
        self._times = np.zeros(0, np.float64)
        self._probs = np.zeros((0, len(LABELS)), np.float32)
        self._now = 0.0
        self._large = False
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_large(self, large: bool) -> None:
        self._large = large
        self.setMinimumHeight(170 if large else 150)
        self.update()

    def set_series(self, times: np.ndarray, probs: np.ndarray, now: float) -> None:
        """times: (T,) seconds, probs: (T, 7) float32, now: the newest time (the plot's right edge)."""
        self._times = np.asarray(times, np.float64)
        self._probs = np.asarray(probs, np.float32).reshape(-1, len(LABELS))
        self._now = float(now)
        self.update()

    def point_count(self) -> int:
        return int(self._times.size)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.fillRect(self.rect(), PANEL)
        fs = 15 if self._large else 10
        painter.setFont(_font(self.font(), fs))
        metrics = painter.fontMetrics()
        # Legend: coloured swatches with class names above the plot, wrapped onto as many lines as needed.
        items, x, y = [], 8.0, 0
        for i, name in enumerate(LABELS):
            item_w = 11 + metrics.horizontalAdvance(name) + 10
            if x + item_w > self.width() - 4 and x > 8:
                x, y = 8.0, y + 1
            items.append((i, name, x, y))
            x += item_w
        line_h = metrics.height() + 2
        legend_h = (y + 1) * line_h + 6
        left, right, top = metrics.horizontalAdvance("100%") + 8, 8, 4 + legend_h
        bottom = metrics.height() + 6
        plot = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))
        for i, name, x, row in items:
            base = 4 + row * line_h
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(CLASS_COLORS[i])
            painter.drawRect(QRectF(x, base + metrics.height() / 2 - 4, 8, 8))
            painter.setPen(MUTED)
            painter.drawText(QPointF(x + 11, base + metrics.ascent()), name)
        # Grid and axes.
        painter.setPen(QPen(QColor(70, 74, 82), 1))
        for frac in (0.0, 0.5, 1.0):
            y = plot.bottom() - frac * plot.height()
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(MUTED)
            painter.drawText(
                QRectF(0, y - metrics.height() / 2, left - 4, metrics.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{frac * 100:.0f}%",
            )
            painter.setPen(QPen(QColor(70, 74, 82), 1))
        for sec in range(0, int(self.window_s) + 1, 10):
            x = plot.right() - sec / self.window_s * plot.width()
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(MUTED)
            label = "now" if sec == 0 else f"-{sec}s"
            tw = metrics.horizontalAdvance(label)
            painter.drawText(
                QPointF(min(max(x - tw / 2, plot.left()), plot.right() - tw), plot.bottom() + metrics.ascent() + 3),
                label,
            )
            painter.setPen(QPen(QColor(70, 74, 82), 1))
        if self._times.size < 2:
            painter.setPen(MUTED)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "waiting for a face…")
            return
        xs = plot.right() - (self._now - self._times) / self.window_s * plot.width()
        keep = xs >= plot.left() - 1
        xs = xs[keep]
        probs = self._probs[keep]
        if xs.size < 2:
            return
        painter.setClipRect(plot.adjusted(-1, -2, 1, 2))
        width = 3.0 if self._large else 1.8
        for i in range(len(LABELS)):
            ys = plot.bottom() - np.clip(probs[:, i], 0, 1) * plot.height()
            path = QPainterPath(QPointF(float(xs[0]), float(ys[0])))
            for px, py in zip(xs[1:], ys[1:], strict=True):
                path.lineTo(float(px), float(py))
            painter.setPen(QPen(CLASS_COLORS[i], width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)


class FaceImages(QWidget):
    """The selected face's aligned crop, its reconstruction and (optionally) the CAM heat-map, side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._images: list[tuple[str, QImage]] = []
        self._large = False
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_large(self, large: bool) -> None:
        self._large = large
        self.setMinimumHeight(230 if large else 130)
        self.setMaximumHeight(250 if large else 160)
        self.update()

    def set_images(self, images: list[tuple[str, QImage]]) -> None:
        """(caption, image) pairs, drawn left to right."""
        self._images = images
        self.update()

    def captions(self) -> list[str]:
        return [c for c, _ in self._images]

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setFont(_font(self.font(), 16 if self._large else 11))
        metrics = painter.fontMetrics()
        if not self._images:
            painter.setPen(MUTED)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no face")
            return
        n = len(self._images)
        gap = 8
        caption_h = metrics.height() + 4
        side = min((self.width() - gap * (n - 1)) / n, self.height() - caption_h)
        total = n * side + (n - 1) * gap
        x = (self.width() - total) / 2
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for caption, image in self._images:
            target = QRectF(x, 0, side, side)
            painter.drawImage(target, image)
            painter.setPen(QPen(QColor(80, 84, 92), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(target)
            painter.setPen(MUTED)
            painter.drawText(
                QRectF(x - gap / 2, side + 2, side + gap, caption_h), Qt.AlignmentFlag.AlignHCenter, caption
            )
            x += side + gap


class MessageBanner(QFrame):
    """A coloured one-line message above the video with optional Retry and a close button."""

    retry_clicked = Signal()

    STYLES = {
        "info": ("#1e3a5f", "#cfe3ff"),
        "warning": ("#5c4a12", "#ffe9a8"),
        "error": ("#5f1e1e", "#ffd0d0"),
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBanner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self._label = QLabel()
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._retry = QPushButton("Retry")
        self._retry.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._retry.clicked.connect(self.retry_clicked)
        self._close = QPushButton("✕")
        self._close.setFlat(True)
        self._close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._close.setFixedWidth(28)
        self._close.clicked.connect(self.hide)
        layout.addWidget(self._label, 1)
        layout.addWidget(self._retry)
        layout.addWidget(self._close)
        self.level = "info"
        self.hide()

    def show_message(self, level: str, text: str, retry: bool = False) -> None:
        bg, fg = self.STYLES.get(level, self.STYLES["info"])
        self.level = level
        self.setStyleSheet(
            f"#messageBanner {{ background: {bg}; border-radius: 4px; }} #messageBanner QLabel {{ color: {fg}; }}"
        )
        self._label.setText(text)
        self._retry.setVisible(retry)
        self.show()

    def text(self) -> str:
        return self._label.text() if self.isVisible() else ""
