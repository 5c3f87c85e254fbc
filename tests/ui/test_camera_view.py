"""The technician's camera view draws the frame the decoder saw and outlines each code it read."""

from __future__ import annotations

from pathlib import Path

import cv2

from drivers.decoder import make_decoder
from simulators.camera import CameraSimulator
from ui.camera_view import render_view


class _View:
    """What CameraReader.last_view() hands over: a frame, the codes found in it, the decode time and path."""

    def __init__(self, image, codes, decode_ms: float = 1.0, path: str = "roi") -> None:
        self.frame = type("Frame", (), {"image": image})()
        self.codes = codes
        self.decode_ms = decode_ms
        self.path = path


def test_the_view_outlines_every_decoded_code_on_a_real_conveyor_frame(qapp, tmp_path: Path) -> None:
    sim = CameraSimulator(seed=3)
    sim.write_frames(tmp_path, 12, seed=3)
    frames = sorted(tmp_path.glob("*.jpg")) or sorted(tmp_path.glob("*.png"))
    decoder = make_decoder("zxing", tracking=False)
    for path in frames:
        image = cv2.imread(str(path))
        codes = decoder.decode(image)
        if codes:
            break
    assert codes, "the simulator's frames hold readable stamps"
    drawn = render_view(_View(image, codes), width=640)
    assert drawn.width() == 640 and drawn.height() == 360  # 1280 × 720 scaled by two
    # The outline is green where the decoder's polygon is: sample the middle of its top edge.
    (x0, y0), (x1, y1) = codes[0].polygon[0], codes[0].polygon[1]
    colour = drawn.pixelColor(int((x0 + x1) / 4), int((y0 + y1) / 4))
    assert colour.green() > 150 and colour.red() < 100, colour.name()
