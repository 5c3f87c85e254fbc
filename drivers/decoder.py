"""QR decoding of camera frames: two engines behind one interface, a region-of-interest tracker, quality figures.

- `ZxingDecoder` (the default: faster and more tolerant of blur and perspective, bench/decode_bench.py) and
  `PyzbarDecoder` (ZBar, the second engine, `verifier.decoder: pyzbar`) both implement
  `decode(frame, roi=None, *, downscale=1.0) -> list[Decoded]`: `frame` is a numpy BGR or gray image, `roi` an
  (x, y, w, h) region in frame pixels, `downscale` a factor > 1 to shrink the region before decoding. Every
  coordinate they return is in full-frame pixels.
- `TrackingDecoder(engine)` is a `Decoder` too: it decodes only where a label can be. A `RoiTracker` follows each
  label from its last hits (the conveyor moves it along a straight line at a steady speed), the region is
  shrunk while the code keeps at least `min_module_px` pixels per module, a strip along the edge where labels
  enter is watched for new ones, and the whole frame is decoded when those regions find nothing.
- `QualityFigures` are raw measurements of one read (contrast, module size, decode margin, modulation, quiet
  zone); mapping them to a grade is the station's business, not the driver's.

How the figures are computed (module-centre sampling): the code's four corners are mapped onto an N x N module
grid (N = 17 + 4 x version) with `quiet` extra modules around it, and the gray level is sampled at each module
centre by a perspective warp. From those samples (symbol modules only):
  contrast    = (95th - 5th percentile) / 255: the symbol contrast, 0..1 (ISO 15415 calls it SC; ours is raw
                camera gray with no reflectance calibration, so indicative only).
  modulation  = 10th percentile over modules of |sample - T| / ((R95 - R5) / 2), T the midpoint: 1 for a crisp
                code, lower as blur, smudges or print voids drag modules towards the threshold.
  module_px   = mean side length of the code in frame pixels / N.
  margin      = zxing-cpp's unused error correction (UEC, 0..1: 1 = no codeword needed correcting), the decode
                margin proper; None from pyzbar, which does not expose it.
  quiet_zone  = light modules outside the code before the first dark sample, the minimum over the four sides,
                capped at `quiet` (4 is what ISO 18004 asks for a QR code).

One module of about 660 lines: the two engines, the quality figures and the region tracker work on the same
Decoded records and frame geometry; the figures' computation is documented here once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from drivers.errors import DeviceError

__all__ = [
    "Decoded",
    "Decoder",
    "DecoderError",
    "PyzbarDecoder",
    "QualityFigures",
    "RoiTracker",
    "TrackingDecoder",
    "ZxingDecoder",
    "make_decoder",
    "figures_in_frame",
    "quality_figures",
    "with_quality",
]

log = logging.getLogger(__name__)

Roi = tuple[int, int, int, int]          # x, y, w, h in frame pixels
Point = tuple[float, float]
_QUIET = 4


class DecoderError(DeviceError):
    """A decoder that cannot work: an unknown engine, a missing library, a frame that is not an image."""


@dataclass(frozen=True, slots=True)
class QualityFigures:
    """Raw print-quality measurements of one read (see the module docstring for how each is computed)."""

    contrast: float               # symbol contrast from module-centre samples, 0..1
    module_px: float              # pixels per module in the frame
    modulation: float             # low-decile module distance from the threshold, 0..1
    margin: float | None          # unused error correction (zxing-cpp's UEC), 0..1; None when not exposed
    quiet_zone: float | None      # light modules around the code (min of four sides), 0..4
    version: int | None = None    # QR version (size 17 + 4 * version modules)
    ec_level: str | None = None   # L, M, Q, H


@dataclass(frozen=True, slots=True)
class Decoded:
    """One code found in a frame. `polygon` holds its four corners (top-left, top-right, bottom-right,
    bottom-left of the symbol as the engine saw it) and `bbox` its bounding box, both in full-frame pixels."""

    text: str
    raw: bytes
    engine: str
    polygon: tuple[Point, Point, Point, Point]
    bbox: Roi
    figures: QualityFigures | None = None
    version: int | None = None        # as the engine reported it (zxing-cpp does, pyzbar does not)
    ec_level: str | None = None
    uec: float | None = None          # unused error correction, 0..1 (zxing-cpp)

    @property
    def module_px(self) -> float | None:
        """Pixels per module from the corners and the version (None when the version is unknown)."""
        if self.figures is not None:
            return self.figures.module_px
        if not self.version:
            return None
        quad = self.polygon
        side = sum(math.dist(quad[i], quad[(i + 1) % 4]) for i in range(4)) / 4
        return side / (17 + 4 * self.version)

    @property
    def centre(self) -> Point:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return (sum(xs) / 4, sum(ys) / 4)


class Decoder(Protocol):
    name: str

    def decode(self, frame: np.ndarray, roi: Roi | None = None) -> list[Decoded]:
        """Every QR code found in `frame` (in `roi` only, when given), in full-frame coordinates."""


# ---------------------------------------------------------------------------------------------------- helpers


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise DecoderError(f"not an image: array of shape {image.shape}")


def _clip_roi(roi: Roi | None, shape: tuple[int, ...]) -> Roi | None:
    height, width = shape[:2]
    if roi is None:
        return (0, 0, width, height)
    x, y, w, h = (int(round(v)) for v in roi)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _prepare(frame: np.ndarray, roi: Roi | None, downscale: float) -> tuple[np.ndarray, np.ndarray, Roi, float] | None:
    """The gray region at native size (for figures) and shrunk (for decoding), its box, and the real factor."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise DecoderError(f"frame must be a uint8 numpy image, got {type(frame).__name__}")
    box = _clip_roi(roi, frame.shape)
    if box is None:
        return None
    x, y, w, h = box
    native = _gray(frame[y:y + h, x:x + w])
    if downscale > 1.05:
        size = (max(16, int(w / downscale)), max(16, int(h / downscale)))
        # Exactly 2x is much faster with INTER_AREA (a SIMD path); other factors are fastest bilinear.
        method = cv2.INTER_AREA if abs(downscale - 2.0) < 0.02 else cv2.INTER_LINEAR
        small = cv2.resize(native, size, interpolation=method)
        factor = w / size[0]
    else:
        small, factor = np.ascontiguousarray(native), 1.0
    return native, small, box, factor


def _bbox(polygon: Sequence[Point]) -> Roi:
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    x0, y0 = int(math.floor(min(xs))), int(math.floor(min(ys)))
    return (x0, y0, int(math.ceil(max(xs))) - x0, int(math.ceil(max(ys))) - y0)


def _order_corners(points: Sequence[Point]) -> tuple[Point, Point, Point, Point]:
    """Four corners in clockwise order from the one nearest the image's top-left (for engines without
    orientation, e.g. pyzbar)."""
    pts = np.array(points, dtype=np.float64)
    if len(pts) != 4:
        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
        rect = cv2.minAreaRect(hull)
        pts = cv2.boxPoints(rect).astype(np.float64)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]   # clockwise on screen (y down), starting near -pi (left)
    start = int(np.argmin(pts.sum(axis=1)))
    pts = np.roll(pts, -start, axis=0)
    return tuple((float(a), float(b)) for a, b in pts)  # type: ignore[return-value]


def _timing_modules(gray: np.ndarray, quad: np.ndarray) -> int | None:
    """Estimate N (modules per side) for an engine that does not report the version: the N (versions 1-10)
    whose timing pattern (row and column 6, in whichever corner the finder patterns are) alternates best."""
    best, best_score = None, 0.0
    for version in range(1, 11):
        n = 17 + 4 * version
        grid = _sample_grid(gray, quad, n, 0)
        if grid is None:
            continue
        g = grid.astype(np.float32)
        ordered = np.sort(g, axis=None)
        threshold = (ordered[int(0.95 * (ordered.size - 1))] + ordered[int(0.05 * (ordered.size - 1))]) / 2
        ideal = np.array([(i % 2) for i in range(8, n - 8)], np.float32)  # 0 dark at even index from 8
        scores = []
        for line in (g[6, 8:n - 8], g[n - 7, 8:n - 8], g[8:n - 8, 6], g[8:n - 8, n - 7]):
            bits = (line > threshold).astype(np.float32)
            scores.append(float((bits == ideal).mean()))
        score = max(scores)
        if score > best_score + 1e-6:
            best, best_score = n, score
    return best if best_score >= 0.85 else None


def _sample_grid(gray: np.ndarray, quad: np.ndarray, n: int, quiet: int) -> np.ndarray | None:
    """Gray level at each module centre of an n x n code plus `quiet` modules around it."""
    size = n + 2 * quiet
    # Corners are pixel edges; pixel centres sit at integer coordinates, so both sides shift by half a unit.
    dst = np.array([[quiet, quiet], [quiet + n, quiet], [quiet + n, quiet + n], [quiet, quiet + n]],
                   np.float32) - 0.5
    try:
        matrix = cv2.getPerspectiveTransform((quad - 0.5).astype(np.float32), dst)
    except cv2.error:
        return None
    return cv2.warpPerspective(gray, matrix, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def quality_figures(gray: np.ndarray, polygon: Sequence[Point], *, version: int | None = None,
                    ec_level: str | None = None, margin: float | None = None,
                    origin: tuple[int, int] = (0, 0)) -> QualityFigures | None:
    """The figures of one code in `gray` (a region of the frame starting at `origin`, polygon in frame
    pixels). Returns None when the polygon is degenerate."""
    quad = np.array(polygon, np.float32) - np.array(origin, np.float32)
    sides = [float(np.linalg.norm(quad[i] - quad[(i + 1) % 4])) for i in range(4)]
    if min(sides) < 8:
        return None
    n = 17 + 4 * version if version else _timing_modules(gray, quad)
    if n is None:
        # Unknown size: sample at ~3 px per module, which still gives contrast and modulation.
        n = max(21, int(round(sum(sides) / 4 / 3)))
    grid = _sample_grid(gray, quad, n, _QUIET)
    if grid is None:
        return None
    symbol = grid[_QUIET:_QUIET + n, _QUIET:_QUIET + n].astype(np.float32)
    ordered = np.sort(symbol, axis=None)
    count = ordered.size
    low, high = float(ordered[int(0.05 * (count - 1))]), float(ordered[int(0.95 * (count - 1))])
    spread = high - low
    contrast = spread / 255.0
    threshold = (low + high) / 2
    if spread > 1:
        distances = np.sort(np.abs(ordered - threshold), axis=None) / (spread / 2)
        modulation = float(min(1.0, distances[int(0.10 * (count - 1))]))
    else:
        modulation = 0.0
    light = grid > threshold
    quiet_sides = [
        _light_run(light[_QUIET - 1::-1, _QUIET:_QUIET + n]),                 # above, moving outwards
        _light_run(light[_QUIET + n:, _QUIET:_QUIET + n]),                    # below
        _light_run(light[_QUIET:_QUIET + n, _QUIET - 1::-1].T),               # left
        _light_run(light[_QUIET:_QUIET + n, _QUIET + n:].T),                  # right
    ]
    return QualityFigures(
        contrast=round(contrast, 4),
        module_px=round(sum(sides) / 4 / n, 3),
        modulation=round(modulation, 4),
        margin=None if margin is None else round(float(margin), 4),
        quiet_zone=float(min(quiet_sides)),
        version=(n - 17) // 4 if (n - 17) % 4 == 0 else None,
        ec_level=ec_level,
    )


def with_quality(gray: np.ndarray, decoded: Decoded, origin: tuple[int, int] = (0, 0)) -> Decoded:
    """`decoded` with its figures measured in `gray` (the frame, or a region of it starting at `origin`)."""
    figures = quality_figures(gray, decoded.polygon, version=decoded.version, ec_level=decoded.ec_level,
                              margin=decoded.uec, origin=origin)
    return dataclasses.replace(decoded, figures=figures)


def figures_in_frame(frame: np.ndarray, decoded: Decoded) -> Decoded:
    """Measure the figures of a code found without them, from the frame it was found in (a gray copy of
    its neighbourhood only: cheap enough to do once per new code)."""
    x, y, w, h = decoded.bbox
    pad = max(w, h) // 3 + 4
    box = _clip_roi((x - pad, y - pad, w + 2 * pad, h + 2 * pad), frame.shape)
    if box is None:
        return decoded
    bx, by, bw, bh = box
    return with_quality(_gray(frame[by:by + bh, bx:bx + bw]), decoded, origin=(bx, by))


def _light_run(rows_outwards: np.ndarray) -> int:
    """How many rows (counted outwards from the code) are entirely light."""
    for i, row in enumerate(rows_outwards):
        if not row.all():
            return i
    return len(rows_outwards)


# ---------------------------------------------------------------------------------------------------- engines


MIN_PLAUSIBLE_MODULE_PX = 1.5   # below this, a "code" is a pattern in texture or text, not a printed symbol


def plausible(decoded: Decoded) -> bool:
    """False for a decode no printed code can give: modules under 1.5 px in the frame (under two pixels a module
    no engine samples a code reliably, and the decoder is never given one that small). Seen live about once in
    5,000 frames: a version-1 'code' 27 px wide inside a label's text, with no error correction to spare."""
    module = decoded.module_px
    if module is not None and module < MIN_PLAUSIBLE_MODULE_PX:
        log.debug("dropped an implausible %s decode %r: %.2f px a module", decoded.engine, decoded.text[:40], module)
        return False
    return True


class ZxingDecoder:
    """zxing-cpp: QR only, no rotation or inversion search (a QR code is found at any angle anyway).

    `try_downscale` lets zxing-cpp add its own image pyramid (helps on a full frame with large codes; a waste
    on a region already sized to the code)."""

    name = "zxing"

    def __init__(self, *, figures: bool = True, try_downscale: bool | None = None) -> None:
        try:
            import zxingcpp
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise DecoderError(f"zxing-cpp is not installed: {exc}") from exc
        self._zx = zxingcpp
        self._format = zxingcpp.BarcodeFormat.QRCode
        self.figures = figures
        self.try_downscale = try_downscale

    def decode(self, frame: np.ndarray, roi: Roi | None = None, *, downscale: float = 1.0,
               figures: bool | None = None) -> list[Decoded]:
        with_figures = self.figures if figures is None else figures
        prepared = _prepare(frame, roi, downscale)
        if prepared is None:
            return []
        native, small, (ox, oy, _, _), factor = prepared
        try_downscale = (roi is None and factor == 1.0) if self.try_downscale is None else self.try_downscale
        results = self._zx.read_barcodes(small, formats=self._format, try_rotate=False,
                                         try_downscale=try_downscale, try_invert=False)
        found: list[Decoded] = []
        for result in results:
            if not result.valid:
                continue
            pos = result.position
            polygon = tuple((p.x * factor + ox, p.y * factor + oy)
                            for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left))
            extra = result.extra if isinstance(result.extra, dict) else {}
            version = int(extra["Version"]) if str(extra.get("Version", "")).isdigit() else None
            ec_level = extra.get("ECLevel") or (result.ec_level or None)
            uec = float(extra["UEC"]) if isinstance(extra.get("UEC"), (int, float)) else None
            decoded = Decoded(str(result.text), bytes(result.bytes), self.name, polygon,  # type: ignore[arg-type]
                              _bbox(polygon), None, version, ec_level, uec)
            if not plausible(decoded):
                continue
            if with_figures:
                decoded = with_quality(native, decoded, origin=(ox, oy))
            found.append(decoded)
        return found


class PyzbarDecoder:
    """pyzbar (ZBar), the second engine (`verifier.decoder: pyzbar`): slower and less tolerant than zxing-cpp
    (bench/decode_bench.py compares them), kept so a site can check a doubtful read with another engine. ZBar
    reports no version or error-correction use: `margin` is None, N is estimated from the timing pattern."""

    name = "pyzbar"

    def __init__(self, *, figures: bool = True) -> None:
        try:
            from pyzbar import pyzbar
        except (ImportError, OSError) as exc:
            raise DecoderError(f"pyzbar cannot load (is libzbar0 installed?): {exc}") from exc
        self._pyzbar = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]
        self.figures = figures

    def decode(self, frame: np.ndarray, roi: Roi | None = None, *, downscale: float = 1.0,
               figures: bool | None = None) -> list[Decoded]:
        with_figures = self.figures if figures is None else figures
        prepared = _prepare(frame, roi, downscale)
        if prepared is None:
            return []
        native, small, (ox, oy, _, _), factor = prepared
        found: list[Decoded] = []
        for result in self._pyzbar.decode(small, symbols=self._symbols):
            try:
                text = result.data.decode("utf-8")
            except UnicodeDecodeError:
                text = result.data.decode("latin-1")
            points = [(p.x * factor + ox, p.y * factor + oy) for p in result.polygon]
            if len(points) < 3:
                r = result.rect
                points = [(r.left, r.top), (r.left + r.width, r.top), (r.left + r.width, r.top + r.height),
                          (r.left, r.top + r.height)]
                points = [(x * factor + ox, y * factor + oy) for x, y in points]
            polygon = _order_corners(points)
            decoded = Decoded(text, bytes(result.data), self.name, polygon, _bbox(polygon))
            decoded = with_quality(native, decoded, origin=(ox, oy)) if with_figures else decoded
            if plausible(decoded):
                found.append(decoded)
        return found


def make_decoder(engine: str = "zxing", *, tracking: bool = True, **options: object) -> Decoder:
    """A decoder by name: `zxing` (default) or `pyzbar`; with `tracking`, wrapped in a TrackingDecoder."""
    engines = {"zxing": ZxingDecoder, "zxing-cpp": ZxingDecoder, "pyzbar": PyzbarDecoder, "zbar": PyzbarDecoder}
    if engine.lower() not in engines:
        raise DecoderError(f"unknown decoder engine {engine!r}; known: zxing, pyzbar")
    base = engines[engine.lower()]()
    return TrackingDecoder(base, **options) if tracking else base  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- tracking


@dataclass(slots=True)
class _Track:
    text: str
    bbox: Roi
    centre: Point
    at: float
    module_px: float | None
    velocity: Point | None = None
    misses: int = 0


@dataclass(frozen=True, slots=True)
class Prediction:
    text: str
    roi: Roi                       # where to look, already expanded by the uncertainty
    module_px: float | None
    leaving: bool                  # the code is predicted (partly) out of the frame: a miss is expected


class RoiTracker:
    """Follows codes from frame to frame: each by its content, from its last two hits.

    Labels on a conveyor all move at the belt's speed, so one line velocity is learnt from every track (an
    exponential average) and given to a new track before its second hit. `predict(at)` gives one region per
    live track: its last box moved by velocity x elapsed time, grown by `margin` of its size plus a share of
    the distance moved (speed varies a little, timestamps jitter). A track is dropped after `max_misses`
    misses in a row or once predicted out of the frame.
    """

    def __init__(self, *, margin: float = 0.2, max_misses: int = 2, max_age_s: float = 1.0) -> None:
        self.margin = margin
        self.max_misses = max_misses
        self.max_age_s = max_age_s
        self.tracks: dict[str, _Track] = {}
        self.line_velocity: Point | None = None
        self.module_px: float | None = None
        self.frame_size: tuple[int, int] | None = None

    def reset(self) -> None:
        self.tracks.clear()

    def predict(self, at: float) -> list[Prediction]:
        out = []
        for track in list(self.tracks.values()):
            dt = at - track.at
            if dt > self.max_age_s:
                del self.tracks[track.text]
                continue
            vx, vy = track.velocity or self.line_velocity or (0.0, 0.0)
            dx, dy = vx * dt, vy * dt
            x, y, w, h = track.bbox
            grow_x = self.margin * w + 0.2 * abs(dx) + 6
            grow_y = self.margin * h + 0.2 * abs(dy) + 6
            if track.velocity is None and self.line_velocity is None:
                grow_x, grow_y = grow_x + w, grow_y + h   # no idea where it goes yet
            roi = (int(x + dx - grow_x), int(y + dy - grow_y), int(w + 2 * grow_x), int(h + 2 * grow_y))
            leaving = False
            if self.frame_size is not None:
                fw, fh = self.frame_size
                leaving = x + dx < 0 or y + dy < 0 or x + dx + w > fw or y + dy + h > fh
                if x + dx > fw or y + dy > fh or x + dx + w < 0 or y + dy + h < 0:
                    del self.tracks[track.text]
                    continue
            out.append(Prediction(track.text, roi, track.module_px, leaving))
        return out

    def update(self, hits: Sequence[Decoded], at: float) -> None:
        for hit in hits:
            module = hit.module_px
            if module is not None:
                self.module_px = module if self.module_px is None else 0.8 * self.module_px + 0.2 * module
            track = self.tracks.get(hit.text)
            centre = hit.centre
            if track is None:
                self.tracks[hit.text] = _Track(hit.text, hit.bbox, centre, at, module)
                continue
            dt = at - track.at
            if dt > 1e-6:
                velocity = ((centre[0] - track.centre[0]) / dt, (centre[1] - track.centre[1]) / dt)
                track.velocity = velocity
                if self.line_velocity is None:
                    self.line_velocity = velocity
                else:
                    lv = self.line_velocity
                    self.line_velocity = (0.7 * lv[0] + 0.3 * velocity[0], 0.7 * lv[1] + 0.3 * velocity[1])
            track.bbox, track.centre, track.at, track.misses = hit.bbox, centre, at, 0
            if module is not None:
                track.module_px = module

    def missed(self, text: str) -> None:
        track = self.tracks.get(text)
        if track is None:
            return
        track.misses += 1
        if track.misses > self.max_misses:
            del self.tracks[text]

    def drop(self, text: str) -> None:
        self.tracks.pop(text, None)


@dataclass
class PathCounts:
    """Which path found the codes (for the benchmark and the technician screen)."""

    frames: int = 0
    roi_decodes: int = 0
    roi_hits: int = 0
    entry_decodes: int = 0
    entry_hits: int = 0
    full_decodes: int = 0
    full_hits: int = 0
    native_decodes: int = 0
    native_hits: int = 0
    last_path: str = ""
    extra: dict[str, int] = field(default_factory=dict)


class TrackingDecoder:
    """Decode only where a label can be; fall back to the full frame when that finds nothing.

    Per frame: (1) each tracked code's predicted region, shrunk so the code keeps `min_module_px` pixels per
    module; (2) once the line's direction is known, a strip along the edge labels enter from (wide enough
    that every code is wholly inside it for two frames), for codes not tracked yet; (3) when neither found
    anything, or a tracked code was missed where it should be readable: the full frame, shrunk by the known
    module size, then (4) at native resolution if the shrunk frame found nothing.

    `decode(frame, roi=None, at=None)`: `at` is the frame's monotonic time (default: now), `roi` bypasses the
    tracking and decodes that region only.
    """

    def __init__(self, engine: Decoder | None = None, tracker: RoiTracker | None = None, *,
                 min_module_px: float = 2.5, entry_strip: bool = True, native_retry: bool = True,
                 figures: bool = True) -> None:
        self.engine = engine if engine is not None else ZxingDecoder()
        self.tracker = tracker if tracker is not None else RoiTracker()
        self.min_module_px = min_module_px
        self.entry_strip = entry_strip
        self.native_retry = native_retry
        self.figures = figures
        self.counts = PathCounts()
        self.name = f"{self.engine.name}+roi"
        self._last_at: float | None = None
        self._frame_dt = 1 / 30   # measured from the frames' times

    def _factor(self, module_px: float | None) -> float:
        if not module_px:
            return 1.0
        factor = module_px / self.min_module_px
        if factor >= 1.95 and module_px / 2 >= self.min_module_px:
            return 2.0 if factor < 2.6 else factor
        return factor if factor >= 1.15 else 1.0

    def _engine_decode(self, frame: np.ndarray, roi: Roi | None, downscale: float) -> list[Decoded]:
        return self.engine.decode(frame, roi, downscale=downscale, figures=False)  # type: ignore[call-arg]

    def decode(self, frame: np.ndarray, roi: Roi | None = None, at: float | None = None) -> list[Decoded]:
        at = time.monotonic() if at is None else at
        height, width = frame.shape[:2]
        tracker = self.tracker
        tracker.frame_size = (width, height)
        counts = self.counts
        counts.frames += 1
        # Time since the last frame decoded: a frame skipped (the reader was busy) or late lets a code come in
        # further than one frame period would, and the entry strip must reach that far.
        gap = self._frame_dt
        if self._last_at is not None and 0 < at - self._last_at < 1.0:
            self._frame_dt = 0.8 * self._frame_dt + 0.2 * (at - self._last_at)
            gap = max(self._frame_dt, at - self._last_at)
        self._last_at = at
        if roi is not None:
            counts.last_path = "roi"
            return self._engine_decode(frame, roi, self._factor(tracker.module_px))
        found: dict[str, Decoded] = {}
        paths: list[str] = []
        unexpected_miss = False
        for prediction in tracker.predict(at):
            counts.roi_decodes += 1
            hits = self._engine_decode(frame, prediction.roi, self._factor(prediction.module_px))
            if hits:
                counts.roi_hits += 1
                paths.append("roi")
            for hit in hits:
                found.setdefault(hit.text, hit)
            if prediction.text not in found:
                if prediction.leaving:
                    tracker.drop(prediction.text)
                else:
                    tracker.missed(prediction.text)
                    unexpected_miss = True
        strip = self._entry_strip(width, height, gap) if self.entry_strip else None
        if strip is not None:
            counts.entry_decodes += 1
            hits = [h for h in self._engine_decode(frame, strip, self._factor(tracker.module_px))
                    if h.text not in found]
            if hits:
                counts.entry_hits += 1
                paths.append("entry")
            for hit in hits:
                found.setdefault(hit.text, hit)
        if not found or unexpected_miss:
            factor = self._factor(tracker.module_px)
            counts.full_decodes += 1
            hits = self._engine_decode(frame, None, factor)
            if not hits and factor > 1.0 and self.native_retry:
                counts.native_decodes += 1
                hits = self._engine_decode(frame, None, 1.0)
                if hits:
                    counts.native_hits += 1
                    paths.append("native")
            elif hits:
                counts.full_hits += 1
                paths.append("full")
            for hit in hits:
                found.setdefault(hit.text, hit)
        # Figures once per code, on its first frame (the reader reports a code once; later frames add nothing).
        result = [hit if hit.text in tracker.tracks or not self.figures else figures_in_frame(frame, hit)
                  for hit in found.values()]
        tracker.update(result, at)
        counts.last_path = "+".join(paths) or "none"
        return result

    def _entry_strip(self, width: int, height: int, gap: float) -> Roi | None:
        """The band along the edge labels come in from (as far as the belt moved in `gap` seconds, since the last
        frame decoded, plus a code), or None while the line's direction is unknown."""
        tracker = self.tracker
        velocity = tracker.line_velocity
        if velocity is None or tracker.module_px is None:
            return None
        vx, vy = velocity
        # The code's side, in pixels: the last tracks tell; a version-5 code is the fallback guess.
        sizes = [max(t.bbox[2], t.bbox[3]) for t in tracker.tracks.values()]
        code = max(sizes) if sizes else 37 * tracker.module_px * 1.2
        band = int(code * 1.1 + max(abs(vx), abs(vy)) * gap + 16)
        if abs(vx) >= abs(vy):
            return (0, 0, band, height) if vx > 0 else (width - band, 0, band, height)
        return (0, 0, width, band) if vy > 0 else (0, height - band, width, band)
