"""The QR decoder on real frames: both engines, the ROI tracker and its fallback, quality figures that move
the right way. Frames come from the camera simulator (seeded) and from labels rendered by the printer's ZPL
renderer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.decoder import (
    DecoderError,
    PyzbarDecoder,
    RoiTracker,
    TrackingDecoder,
    ZxingDecoder,
    Decoded,
    make_decoder,
    plausible,
    quality_figures,
)
from simulators.camera import CameraSimulator, make_stamp_label

URI = "https://truyxuat.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH2WP?17=270528"


@pytest.fixture(scope="module")
def frame_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("frames")
    manifest = CameraSimulator(seed=5).write_frames(folder, 36, seed=5, bad_fraction=0.25)
    return folder, manifest


def load(folder: Path, entry: dict) -> np.ndarray:
    image = cv2.imread(str(folder / entry["file"]))
    assert image is not None
    return image


def readable_ours(entry: dict) -> set[str]:
    return {label["text"] for label in entry["labels"] if label["readable"] and label["role"] == "ours"}


def label_gray(uri: str = URI, border: int = 40) -> np.ndarray:
    """The printed stamp as the ZPL renderer draws it (1 dot = 1 pixel), on a dark belt."""
    image = np.asarray(make_stamp_label(uri).image.convert("L"), dtype=np.uint8)
    return cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=60)


@pytest.mark.parametrize("engine", [ZxingDecoder, PyzbarDecoder])
def test_both_engines_read_a_printed_label(engine: type) -> None:
    found = engine().decode(label_gray())
    assert [d.text for d in found] == [URI]
    decoded = found[0]
    assert decoded.raw == URI.encode()
    # The code sits at ^FO16,16 with 4 dots per module, 37 modules (version 5): 148 px, plus the 40 px border.
    x, y, w, h = decoded.bbox
    assert abs(x - 56) <= 3 and abs(y - 56) <= 3 and abs(w - 148) <= 4 and abs(h - 148) <= 4
    assert decoded.figures is not None
    assert decoded.figures.module_px == pytest.approx(4.0, abs=0.2)
    assert decoded.figures.version == 5
    assert decoded.figures.quiet_zone == 4.0   # the label edge 4 modules away, then the dark belt


@pytest.mark.parametrize("engine", [ZxingDecoder, PyzbarDecoder])
def test_both_engines_read_simulator_frames(engine: type, frame_set: tuple[Path, dict]) -> None:
    folder, manifest = frame_set
    good = [f for f in manifest["frames"] if f["kind"] == "good"][:6]
    assert good
    decoder = engine()
    for entry in good:
        found = decoder.decode(load(folder, entry))
        texts = {d.text for d in found}
        assert readable_ours(entry) <= texts, entry["file"]
        truth = {label["text"]: label for label in entry["labels"]}
        assert texts <= set(truth)
        for d in found:   # full-frame coordinates: the centre of the polygon is the code's centre
            quad = np.array(truth[d.text]["quad"])
            assert np.allclose(np.array(d.centre), quad.mean(axis=0), atol=4)


def test_bad_frames_give_no_false_accepts(frame_set: tuple[Path, dict]) -> None:
    folder, manifest = frame_set
    decoder = ZxingDecoder()
    for entry in manifest["frames"]:
        texts = {d.text for d in decoder.decode(load(folder, entry))}
        assert texts <= {label["text"] for label in entry["labels"]}, entry["file"]


def test_roi_limits_the_search() -> None:
    image = label_gray()
    decoder = ZxingDecoder()
    assert [d.text for d in decoder.decode(image, (30, 30, 220, 220))] == [URI]
    assert decoder.decode(image, (300, 30, 200, 200)) == []            # the text side of the label
    shrunk = decoder.decode(image, (30, 30, 220, 220), downscale=1.5)  # 4 px/module -> 2.7: still read
    assert [d.text for d in shrunk] == [URI]
    assert np.allclose(shrunk[0].centre, decoder.decode(image)[0].centre, atol=2)


def test_tracker_follows_the_label_and_falls_back_to_the_full_frame() -> None:
    sim = CameraSimulator(seed=11, max_rotation=3, perspective=0.01)
    label = make_stamp_label(URI)
    p = sim._new_pass(label, "good", 0.0, __import__("random").Random(3), forced_y=150)
    assert p is not None
    decoder = TrackingDecoder(ZxingDecoder())
    paths = []
    for i, x in enumerate(range(100, 700, 120)):
        frame, truth = sim.render([(p, float(x))], i)
        found = decoder.decode(frame, at=i / 30)
        assert [d.text for d in found] == [URI]
        paths.append(decoder.counts.last_path)
    assert paths[0] == "full"                    # nothing known yet: the whole frame
    assert all(path.startswith("roi") for path in paths[2:]), paths
    assert decoder.tracker.line_velocity is not None
    assert decoder.tracker.line_velocity[0] == pytest.approx(120 * 30, rel=0.1)
    # The label jumps back to where the tracker does not expect it: the ROI misses, the full frame finds it.
    frame, _ = sim.render([(p, 60.0)], 9)
    full_before = decoder.counts.full_decodes
    found = decoder.decode(frame, at=6 / 30)
    assert [d.text for d in found] == [URI]
    assert decoder.counts.full_decodes == full_before + 1


def test_tracker_predicts_along_the_line() -> None:
    tracker = RoiTracker()
    found = ZxingDecoder().decode(label_gray())
    tracker.frame_size = (1280, 720)
    tracker.update(found, 0.0)
    moved = [type(found[0])(**{**{f: getattr(found[0], f) for f in found[0].__slots__},
                               "polygon": tuple((x + 100, y) for x, y in found[0].polygon),
                               "bbox": (found[0].bbox[0] + 100, *found[0].bbox[1:])})]
    tracker.update(moved, 0.1)
    (prediction,) = tracker.predict(0.2)
    x, y, w, h = prediction.roi
    centre = x + w / 2
    assert centre == pytest.approx(moved[0].centre[0] + 100, abs=3)


def _figures(image: np.ndarray):
    (decoded,) = ZxingDecoder().decode(image)
    assert decoded.figures is not None
    return decoded.figures


def test_quality_figures_move_the_right_way() -> None:
    crisp = label_gray()
    blurred = cv2.GaussianBlur(crisp, (0, 0), 1.3)
    faded = (crisp.astype(np.float32) * 0.35 + 120).astype(np.uint8)   # a worn head: grey ink, grey paper
    f_crisp, f_blur, f_faded = _figures(crisp), _figures(blurred), _figures(faded)
    assert f_crisp.contrast > 0.9 and f_crisp.modulation > 0.9 and f_crisp.margin == 1.0
    assert f_faded.contrast < f_crisp.contrast - 0.4
    assert f_blur.modulation < f_crisp.modulation - 0.1
    assert f_blur.contrast <= f_crisp.contrast
    # Smudge part of the code: error correction has to repair codewords, so less of it is left unused.
    smudged = crisp.copy()
    cv2.rectangle(smudged, (40 + 16 + 60, 40 + 16 + 70), (40 + 16 + 80, 40 + 16 + 90), 128, -1)
    f_smudged = _figures(smudged)
    assert f_smudged.margin is not None and f_smudged.margin < f_crisp.margin
    assert f_smudged.modulation <= f_crisp.modulation   # 2 % of the modules: below the 10th percentile


def test_pyzbar_figures_without_a_version() -> None:
    (decoded,) = PyzbarDecoder().decode(label_gray())
    figures = decoded.figures
    assert figures is not None and figures.margin is None    # ZBar does not say how much EC it used
    assert figures.version == 5                              # found from the timing pattern
    assert figures.module_px == pytest.approx(4.0, abs=0.2)
    direct = quality_figures(label_gray(), decoded.polygon, version=5)
    assert direct is not None and direct.contrast == pytest.approx(figures.contrast, abs=0.02)


def test_make_decoder_by_name() -> None:
    assert make_decoder("zxing").name == "zxing+roi"
    assert make_decoder("pyzbar", tracking=False).name == "pyzbar"
    with pytest.raises(DecoderError, match="unknown decoder engine 'opencv'"):
        make_decoder("opencv")
    with pytest.raises(DecoderError, match="uint8"):
        ZxingDecoder().decode(np.zeros((10, 10), np.float32))


def test_manifest_is_written(frame_set: tuple[Path, dict]) -> None:
    folder, manifest = frame_set
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["count"] == 36 == len(list(folder.glob("frame_*.jpg")))
    assert on_disk["kinds"]["good"] > 10


def test_a_decode_with_modules_under_one_and_a_half_pixels_is_dropped() -> None:
    # What zxing once returned from a label's text on a live line: a version-1 "code" 27 px wide (1.25 px a module).
    ghost = Decoded("6078", b"6078", "zxing", ((1208.0, 108.0), (1235.0, 110.0), (1232.0, 135.0), (1206.0, 135.0)),
                    (1206, 108, 29, 27), None, 1, "L", 0.0)
    assert ghost.module_px is not None and ghost.module_px < 1.5
    assert not plausible(ghost)
    # A real stamp's code, 37 modules in 104 px (2.8 px a module), passes; so does one without a known version.
    real = Decoded("https://x.example/01/1", b"", "zxing", ((0.0, 0.0), (104.0, 0.0), (104.0, 104.0), (0.0, 104.0)),
                   (0, 0, 104, 104), None, 5, "Q", 0.4)
    assert plausible(real)
    assert plausible(Decoded("x", b"x", "pyzbar", real.polygon, real.bbox))
