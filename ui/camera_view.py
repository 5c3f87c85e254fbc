"""The technician's camera view: the newest frame the verifier decoded, with each code it found outlined."""

from __future__ import annotations

from typing import Any

import numpy as np

from ui.bridge import DEVICE, StationBridge
from ui.qt import QColor, QImage, QLabel, QPainter, QPen, QPixmap, QPointF, Qt, QTimer, QWidget

VIEW_WIDTH = 640  # pixels on screen; frames are scaled down on the worker, never on the GUI thread


def render_view(view: Any, width: int = VIEW_WIDTH) -> QImage:
    """A camera reader's ``last_view()`` as an image with the decoded codes outlined in green and their text.

    Pure Qt image work (QImage and QPainter may be used off the GUI thread), so the worker does it.
    """
    frame = np.ascontiguousarray(view.frame.image)
    height_px, width_px = frame.shape[:2]
    step = max(1, width_px // width)
    small = np.ascontiguousarray(frame[::step, ::step])
    h, w = small.shape[:2]
    if small.ndim == 2:
        image = QImage(small.data, w, h, small.strides[0], QImage.Format_Grayscale8).copy()
    else:  # OpenCV's BGR, shown as RGB
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format_RGB888).copy()
    painter = QPainter(image)
    pen = QPen(QColor("#1db954"))
    pen.setWidth(3)
    painter.setPen(pen)
    for code in view.codes:
        points = [QPointF(x / step, y / step) for x, y in code.polygon]
        for a, b in zip(points, points[1:] + points[:1]):
            painter.drawLine(a, b)
        if points:
            painter.drawText(points[0] + QPointF(0, -4), code.text[-24:])
    painter.setPen(QColor("#ffffff"))
    painter.drawText(QPointF(6, 16), f"{view.decode_ms:.1f} ms {view.path}")
    painter.end()
    return image


class CameraView(QLabel):
    """Refreshes five times a second while visible; the frame is read and drawn on the device lane."""

    def __init__(self, bridge: StationBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.setMinimumHeight(240)
        self.setAlignment(Qt.AlignCenter)
        self.setText(self.tr("Waiting for the camera…"))
        self.frames_shown = 0
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def refresh(self) -> None:
        if not self.isVisible():
            return

        def read(station: Any) -> QImage | None:
            reader = getattr(station.verifier, "reader", None)
            view = reader.last_view() if reader is not None else None
            return render_view(view) if view is not None else None

        self.bridge.call(read, done=self._show, lane=DEVICE, owner=self, key="camera-view")

    def _show(self, image: QImage | None) -> None:
        if image is None:
            return
        self.setPixmap(QPixmap.fromImage(image))
        self.frames_shown += 1
