"""A conveyor camera: renders printed labels passing under it and serves the frames as an MJPEG HTTP stream.

What it does, as a camera over a packing conveyor would show it:

- `on_label(label)` (fits `PrinterSimulator.add_listener`) queues a printed label; `delay` seconds later (the
  conveyor from the printer to the camera) the label enters the field of view and crosses it along +x at
  `speed` pixels per second, so it shows in several consecutive frames.
- Every label pass gets its own look: a random lane (y), scale, small rotation and perspective, focus blur,
  motion blur, lighting gradient; every frame gets sensor noise over a textured belt. The label is rendered,
  warped and blurred once per pass and only placed per frame (numpy/cv2), so a frame costs a placement and a
  JPEG encoding, not a render, and the simulator keeps up with a real camera's frame rate.
- Faults, as rates (per label) or on command: `no_label` (the label never shows: fell off, camera blind),
  `smudge` (ink smeared over the code beyond what error correction can repair), `cut` (the label passes
  partly outside the field of view, the code cut by the frame edge), `foreign` (a label from another batch
  passes instead of the printed one).
- `url` is `http://HOST:PORT/stream.mjpg` (multipart/x-mixed-replace, one JPEG per part, each with its exposure
  time as `X-Timestamp: <epoch seconds>`, as mjpg-streamer and many IP cameras send it, from the camera's own
  clock, set at start-up and free-running); `/frame.jpg` gives
  the current frame alone; `/video.cgi` redirects to the stream, as IP cameras' CGI addresses do. `auth=(user,
  password)` asks for Digest (`auth_scheme="digest"`, MD5, qop=auth) or Basic authentication; `chunked=True`
  sends the stream as HTTP/1.1 chunked transfer. The station reads it through `drivers.camera.open_camera(url)`,
  the real path.
- `write_frames(folder, n)` writes a FIXED, seeded set of good and bad frames and `manifest.json` with the
  ground truth of each frame (for the decode benchmark and tests).

Control port (`control_port`; text lines over TCP, one reply line per command):

    no_label|smudge|cut|foreign <rate>   per-label fault rates in [0, 1]
    inject good|smudged|cut|foreign       send one extra label of that kind now (foreign/good: made up)
    blur <max sigma> | noise <sigma>      image quality while running
    speed <px/s> | delay <s>              the conveyor
    offline on|off                        refuse new stream connections
    disconnect                            drop every open stream connection now
    status                                one JSON object: rates, counts, clients, url
    quit                                  close this control connection

One module of about 800 lines: the scene (labels, belt, lighting, noise), the frame clock and the MJPEG server
share the label passes and their times; `write_frames` renders the benchmark's fixed set from the same scene.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import random
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
from PIL import Image

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.url_options import yes_no
from simulators.control import CommandServer
from simulators.tcp import TcpServer, join, start_worker
from simulators.errors import SimulatorError
from drivers.zebra.render import render_labels

__all__ = ["CameraSimulator", "LabelKind", "make_stamp_label"]

log = logging.getLogger(__name__)

_TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "labels" / "stamp-60x40.zpl"
_BOUNDARY = b"frame"
_REALM = "camera-simulator"
_MAX_LAG_S = 0.25
_ITEM_GAP_PX = 16      # the least gap between two labels on the belt
# A colour camera's view of the gray scene: the belt's green-grey cast, as B, G, R gains.
_TINT_LUTS = [np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8) for gain in (0.95, 1.02, 0.92)]
_KINDS = ("good", "smudged", "cut", "foreign")
LabelKind = str  # one of _KINDS
_ALNUM = string.digits + string.ascii_uppercase


def make_stamp_label(uri: str, *, lot: str = "MX2611A", serial: str = "7K3Q9XH2WP",
                     product_name: str = "Me xung Thong Huong 250g") -> Any:
    """A stamp rendered from the project's label template (ASCII values only: nothing needs escaping)."""
    values = {"qr": uri, "product_name": product_name, "producer": "Thong Huong", "lot": lot,
              "production_date": "26/11/2025", "expiry_date": "28/05/2027", "serial": serial,
              "gtin12": "893860300101"}
    text = _TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return render_labels(text.encode("utf-8"))[0]


def _stamp_uri(rng: random.Random, lot: str) -> tuple[str, str]:
    serial = "".join(rng.choice(_ALNUM) for _ in range(10))
    return f"https://truyxuat.example.vn/01/08938603001013/10/{lot}/21/{serial}?17=270528", serial


def _foreign_text(text: str, rng: random.Random) -> str:
    """The same stamp from another batch: another lot, another serial (a Digital Link or not)."""
    if "/10/" in text and "/21/" in text:
        head, rest = text.split("/10/", 1)
        lot, tail = rest.split("/21/", 1)
        query = tail[tail.index("?"):] if "?" in tail else ""
        other_lot = lot[:-1] + ("B" if not lot.endswith("B") else "C") if lot else "X1"
        serial = "".join(rng.choice(_ALNUM) for _ in range(10))
        return f"{head}/10/{other_lot}/21/{serial}{query}"
    return text + "-OTHER"


@dataclass(slots=True)
class _Pass:
    """One label crossing the field of view, with its fixed look: warped, blurred and masked once when it enters
    (a label keeps its pose while the belt carries it), then only placed per frame."""

    patch: np.ndarray              # float32 gray label warped to its pose, premultiplied by `alpha`
    alpha: np.ndarray              # float32 coverage in [0, 1], same shape as `patch`
    matrix: np.ndarray             # 3x3: label pixels -> `patch` pixels
    pad: int                       # margin of `patch` around the label's extent (room for the blur)
    qr_rect: tuple[int, int, int, int] | None   # x, y, w, h of the code in label pixels
    text: str | None
    kind: LabelKind
    role: str                      # ours | foreign
    width: float                   # extent of the warped label along x
    y: float
    t_enter: float
    speed: float
    gain_index: int
    label_index: int | None = None
    frames_shown: int = 0

    def x_at(self, t: float) -> float:
        return -self.width + self.speed * (t - self.t_enter)


@dataclass
class _Counts:
    labels: int = 0
    passes: int = 0
    no_label: int = 0
    smudged: int = 0
    cut: int = 0
    foreign: int = 0
    frames: int = 0
    dropped: int = 0       # frames never rendered because the simulator fell behind its frame clock
    clients: int = 0


@dataclass(frozen=True, slots=True)
class FrameTruth:
    """What one frame shows, for the manifest: every label at least partly in view."""

    labels: list[dict[str, Any]] = field(default_factory=list)


class CameraSimulator:
    """A conveyor camera serving MJPEG over HTTP; see the module docstring."""

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        port: int = 0,
        seed: int | None = None,
        delay: float = 0.2,
        *,
        host: str = "127.0.0.1",
        control_port: int | None = None,
        speed: float = 3000.0,
        scale: float = 1.1,
        max_rotation: float = 8.0,
        perspective: float = 0.03,
        max_blur: float = 0.8,
        noise: float = 4.0,
        jpeg_quality: int = 85,
        mono: bool = False,
        no_label_rate: float = 0.0,
        smudge_rate: float = 0.0,
        cut_rate: float = 0.0,
        foreign_rate: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        auth: tuple[str, str] | None = None,
        auth_scheme: str = "digest",
        chunked: bool = False,
    ) -> None:
        if auth_scheme not in ("digest", "basic"):
            raise SimulatorError(f"auth_scheme must be digest or basic, got {auth_scheme!r}")
        if width < 320 or height < 240:
            raise SimulatorError(f"frame {width}x{height} too small (at least 320x240)")
        if fps <= 0:
            raise SimulatorError(f"fps must be positive, got {fps}")
        self.width, self.height, self.fps = width, height, fps
        self.clock = clock   # the frame clock and the belt's time (tests pass one they move by hand)
        # The camera's own clock for X-Timestamp: epoch seconds, free-running from start-up like a camera's.
        self._epoch_offset = time.time() - clock.monotonic()
        self.host = host
        self.delay = delay
        self.speed = speed
        self.scale = scale
        self.max_rotation = max_rotation
        self.perspective = perspective
        self.max_blur = max_blur
        self.noise = noise
        self.jpeg_quality = jpeg_quality
        self.mono = mono
        self.auth, self.auth_scheme, self.chunked = auth, auth_scheme, chunked
        self._nonce = secrets.token_hex(16)   # one Digest nonce for the simulator's life, as many cameras do
        self._rates = {"no_label": 0.0, "smudge": 0.0, "cut": 0.0, "foreign": 0.0}
        self.set_rates(no_label=no_label_rate, smudge=smudge_rate, cut=cut_rate, foreign=foreign_rate)
        self._rng = random.Random(seed)
        self._np_rng = np.random.default_rng(seed)
        self._requested_control_port = control_port
        self._lock = threading.Condition()
        self._pending: list[tuple[float, Any, LabelKind | None]] = []
        self._passes: list[_Pass] = []
        self._belt_free_at = 0.0      # when the belt has room for the next label to enter the view
        self._jpeg: bytes | None = None
        self._jpeg_stamp = b"0"
        self._frame_seq = 0
        self._offline = False
        self._running = False
        self._server = TcpServer(self._serve_client, host, port, name="camera",
                                 refuse=lambda: self._offline or not self._running)
        self._control: CommandServer | None = None
        self._worker: threading.Thread | None = None
        self.counts = _Counts()
        self._backgrounds = [self._make_background(i) for i in range(3)]
        self._gains = [self._make_gain(i) for i in range(6)]
        self._noise_bank = self._make_noise_bank(noise)

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> CameraSimulator:
        if self._running:
            raise SimulatorError("camera simulator already started")
        self._running = True
        try:
            self._server.start()
        except SimulatorError:
            self._running = False
            raise
        if self._requested_control_port is not None:
            self._control = CommandServer(self._handlers(), self.host, self._requested_control_port,
                                          name="camera-control").start()
        self._worker = start_worker(self._render_loop, "camera-render")
        log.info("camera simulator streaming on %s", self.url)
        return self

    def stop(self) -> None:
        if not self._running:
            return
        with self._lock:
            self._running = False
            self._lock.notify_all()
        self._server.stop()
        if self._control is not None:
            self._control.stop()
            self._control = None
        join(self._worker)
        with self._lock:
            self._pending.clear()
            self._passes.clear()

    def __enter__(self) -> CameraSimulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    @property
    def control_port(self) -> int | None:
        return self._control.port if self._control is not None else None

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "control_port": self.control_port, "size": f"{self.width}x{self.height}",
                "fps": self.fps}

    # ------------------------------------------------------------------------------------------ behaviour

    def set_rates(self, **rates: float) -> None:
        """Set any of no_label, smudge, cut, foreign (each in [0, 1], together at most 1) while running."""
        unknown = set(rates) - set(self._rates)
        if unknown:
            raise SimulatorError(f"unknown camera fault {sorted(unknown)}; known: {', '.join(self._rates)}")
        merged = {**self._rates, **{k: float(v) for k, v in rates.items() if v is not None}}
        if any(not 0 <= v <= 1 for v in merged.values()) or sum(merged.values()) > 1 + 1e-9:
            raise SimulatorError(f"rates must each be in [0, 1] and sum to at most 1, got {merged}")
        self._rates = merged

    @property
    def rates(self) -> dict[str, float]:
        return dict(self._rates)

    def on_label(self, label: Any) -> None:
        """Queue a printed label (PrintedLabel, RenderedLabel, or a PIL image); it shows after `delay`.
        Safe from any thread (the printer calls it on its print thread); costs no rendering here."""
        with self._lock:
            self.counts.labels += 1
            self._pending.append((self.clock.monotonic() + self.delay, label, None))

    def inject(self, kind: LabelKind = "good", text: str | None = None) -> None:
        """One extra label of `kind` enters now (a made-up stamp unless `text` is given)."""
        if kind not in _KINDS:
            raise SimulatorError(f"unknown label kind {kind!r}; known: {', '.join(_KINDS)}")
        uri = text or _stamp_uri(self._rng, "MX2611A")[0]
        with self._lock:
            self._pending.append((self.clock.monotonic(), make_stamp_label(uri), kind))

    def disconnect(self) -> None:
        """Drop every open stream connection (the camera's cable pulled and put back)."""
        self._server.disconnect()

    def set_offline(self, offline: bool) -> None:
        """Refuse new stream connections (accept and close at once), and drop the open ones when going offline."""
        self._offline = offline
        if offline:
            self.disconnect()

    def wait_frames(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` more frames have been rendered (for tests)."""
        with self._lock:
            target = self._frame_seq + count
            return self._lock.wait_for(lambda: self._frame_seq >= target or not self._running, timeout)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"url": self.url if self._server.running else None, "rates": self.rates,
                    "counts": vars(self.counts).copy(), "in_view": len(self._passes),
                    "pending": len(self._pending), "offline": self._offline, "fps": self.fps,
                    "size": [self.width, self.height]}

    # ------------------------------------------------------------------------------------------ scene

    def _label_source(self, label: Any) -> tuple[np.ndarray, tuple[int, int, int, int] | None, str | None,
                                                 int | None]:
        rendered = getattr(label, "rendered", None) or label
        image = label if isinstance(label, Image.Image) else getattr(label, "image", None)
        if image is None:
            raise SimulatorError(f"label {label!r} has no image (printer simulator running with render=False?)")
        qr_rect, text = None, None
        for f in getattr(rendered, "fields", []):
            if f.kind == "qr":
                qr_rect, text = (f.x, f.y, f.width, f.height), f.data
                break
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        return gray, qr_rect, text, getattr(label, "index", None)

    def _new_pass(self, label: Any, kind: LabelKind | None, t_enter: float, rng: random.Random,
                  forced_y: float | None = None) -> _Pass | None:
        """Decide this label's fate and look. Returns None for a label that never shows (no_label)."""
        if kind is None:
            roll, acc = rng.random(), 0.0
            kind = "good"
            for name, rate in self._rates.items():
                acc += rate
                if roll < acc:
                    kind = {"no_label": "none", "smudge": "smudged", "cut": "cut", "foreign": "foreign"}[name]
                    break
        if kind == "none":
            self.counts.no_label += 1
            return None
        gray, qr_rect, text, index = self._label_source(label)
        role = "ours"
        if kind == "foreign" and text is not None:
            text = _foreign_text(text, rng)
            lot = text.split("/10/")[1].split("/")[0] if "/10/" in text else "OTHER"
            fresh = make_stamp_label(text, lot=lot, serial=text.rsplit("/21/", 1)[-1][:10])
            gray, qr_rect, _, _ = self._label_source(fresh)
            role = "foreign"
        elif kind == "foreign":
            role = "foreign"
        # Paper is not pure white and thermal ink not pure black.
        paper, ink = rng.uniform(215, 245), rng.uniform(15, 55)
        img = cv2.convertScaleAbs(gray, alpha=(paper - ink) / 255.0, beta=ink)
        if kind == "smudged" and qr_rect is not None:
            img = self._smudge(img, qr_rect, rng)
        h, w = img.shape
        s = self.scale * rng.uniform(0.92, 1.08)
        angle = math.radians(rng.uniform(-self.max_rotation, self.max_rotation))
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        centred = (src - [w / 2, h / 2]) * s
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], np.float32)
        dst = centred @ rot.T
        jitter = self.perspective * max(w, h) * s
        dst += np.array([[rng.uniform(-jitter, jitter), rng.uniform(-jitter, jitter)] for _ in range(4)],
                        np.float32)
        dst = (dst - dst.min(axis=0)).astype(np.float32)
        width, height = float(dst[:, 0].max()), float(dst[:, 1].max())
        if forced_y is not None:
            y = forced_y
        elif kind == "cut" and qr_rect is not None:
            # Cut by the top or bottom edge: a third to two thirds of the code outside the frame.
            qy0 = qr_rect[1] * s
            qh = qr_rect[3] * s
            frac = rng.uniform(0.3, 0.7)
            if rng.random() < 0.5:
                y = -(qy0 + frac * qh)
            else:
                y = self.height - (qy0 + (1 - frac) * qh)
        else:
            y = rng.uniform(4, max(4.0, self.height - height - 4))
        self.counts.passes += 1
        if kind in ("smudged", "cut", "foreign"):
            setattr(self.counts, kind, getattr(self.counts, kind) + 1)
        patch, alpha, matrix, pad = self._pose(img, dst, width, height, blur=rng.uniform(0, self.max_blur),
                                               motion=rng.choice((0, 0, 1, 2, 3)))
        return _Pass(patch=patch, alpha=alpha, matrix=matrix, pad=pad, qr_rect=qr_rect, text=text, kind=kind,
                     role=role, width=width, y=y, t_enter=t_enter, speed=self.speed,
                     gain_index=rng.randrange(len(self._gains)), label_index=index)

    @staticmethod
    def _pose(img: np.ndarray, corners: np.ndarray, width: float, height: float, *, blur: float,
              motion: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The label warped onto `corners` (its rotation and perspective), with focus and motion blur, as a
        premultiplied float patch and its coverage; the same for every frame of the pass."""
        pad = 2 + int(math.ceil(3 * blur)) + motion
        h, w = img.shape
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        matrix = cv2.getPerspectiveTransform(src, (corners + pad).astype(np.float32))
        size = (int(math.ceil(width)) + 2 * pad, int(math.ceil(height)) + 2 * pad)
        # Black outside the label: bilinear edges come out premultiplied by their coverage.
        patch = cv2.warpPerspective(img, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=0).astype(np.float32)
        alpha = cv2.warpPerspective(np.full_like(img, 255), matrix, size, flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32) / 255.0
        if blur > 0.05:
            patch = cv2.GaussianBlur(patch, (0, 0), blur)
            alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
        if motion > 1:
            kernel = np.full((1, motion), 1.0 / motion, np.float32)
            patch = cv2.filter2D(patch, -1, kernel)
            alpha = cv2.filter2D(alpha, -1, kernel)
        return patch, alpha, matrix, pad

    def _smudge(self, img: np.ndarray, qr_rect: tuple[int, int, int, int], rng: random.Random) -> np.ndarray:
        """Smear ink across the code: a band of grey with dark streaks over 40-60 % of it (beyond any EC level)."""
        x, y, w, h = qr_rect
        out = img.copy()
        mask = np.zeros_like(img)
        band = rng.uniform(0.4, 0.6)
        if rng.random() < 0.5:
            top = y + int(rng.uniform(0.1, 1 - band) * h)
            pts = np.array([[x - 4, top], [x + w + 4, top + rng.randint(-8, 8)],
                            [x + w + 4, top + int(band * h)], [x - 4, top + int(band * h) + rng.randint(-8, 8)]])
        else:
            left = x + int(rng.uniform(0.1, 1 - band) * w)
            pts = np.array([[left, y - 4], [left + int(band * w), y - 4 + rng.randint(-8, 8)],
                            [left + int(band * w), y + h + 4], [left + rng.randint(-8, 8), y + h + 4]])
        cv2.fillPoly(mask, [pts.astype(np.int32)], 255)
        mask = cv2.GaussianBlur(mask, (0, 0), 3)
        smear = np.full_like(img, int(rng.uniform(70, 120)))
        streaks = self._np_rng.integers(-40, 40, size=(img.shape[0], 1), dtype=np.int16)
        smear = np.clip(smear.astype(np.int16) + streaks, 0, 255).astype(np.uint8)
        alpha = mask.astype(np.float32) / 255.0
        out = (out * (1 - alpha) + smear * alpha).astype(np.uint8)
        return out

    def _make_background(self, variant: int) -> np.ndarray:
        """A conveyor belt in gray: dark, with fabric texture (tinted green-grey for a colour camera)."""
        rng = np.random.default_rng(1000 + variant)
        base = rng.normal(0, 1, (self.height // 4 + 1, self.width // 4 + 1)).astype(np.float32)
        texture = cv2.resize(cv2.GaussianBlur(base, (0, 0), 1.2), (self.width, self.height))
        weave = np.sin(np.arange(self.width, dtype=np.float32) * 0.9)[None, :] * 3.0
        return np.clip(70 + 12 * texture + weave, 0, 255).astype(np.uint8)

    def _make_gain(self, variant: int) -> np.ndarray:
        """Lighting: a linear gradient in a random direction, gain 0.6-1.0 (one lamp off to the side)."""
        rng = np.random.default_rng(2000 + variant)
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        ramp = (xx / self.width - 0.5) * math.cos(angle) + (yy / self.height - 0.5) * math.sin(angle)
        low = rng.uniform(0.6, 0.8)
        return (low + (1 - low) * (ramp - ramp.min()) / (ramp.max() - ramp.min() + 1e-6)).astype(np.float32)

    def _make_noise_bank(self, sigma: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Sensor noise of `sigma` gray levels: a few fixed full frames, cycled (as added and subtracted parts)."""
        bank = []
        rng = np.random.default_rng(3000)
        for _ in range(6):
            n = rng.normal(0, sigma, (self.height, self.width)).astype(np.float32)
            bank.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
        return bank

    def render(self, passes: Iterable[tuple[_Pass, float]], frame_index: int = 0,
               gray_out: bool = False) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One frame with each pass at its x; returns the frame (BGR, or gray with `gray_out`) and the truth of
        every label in view. Composed in gray (what the sensor measures) and tinted for a colour camera."""
        frame = self._backgrounds[frame_index % len(self._backgrounds)].copy()
        truths: list[dict[str, Any]] = []
        for p, x in passes:
            ox, oy = int(round(x)) - p.pad, int(round(p.y)) - p.pad
            ph, pw = p.patch.shape
            cx0, cy0 = max(ox, 0), max(oy, 0)
            cx1, cy1 = min(ox + pw, self.width), min(oy + ph, self.height)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            sl = (slice(cy0 - oy, cy1 - oy), slice(cx0 - ox, cx1 - ox))
            alpha = p.alpha[sl]
            region = frame[cy0:cy1, cx0:cx1]
            gain = self._gains[p.gain_index][cy0:cy1, cx0:cx1]
            mixed = region * (1.0 - alpha) + p.patch[sl] * gain
            frame[cy0:cy1, cx0:cx1] = np.clip(mixed, 0, 255).astype(np.uint8)
            p.frames_shown += 1
            truths.append(self._truth(p, (ox, oy)))
        plus, minus = self._noise_bank[frame_index % len(self._noise_bank)]
        cv2.add(frame, plus, dst=frame)
        cv2.subtract(frame, minus, dst=frame)
        if not gray_out:
            frame = cv2.merge([cv2.LUT(frame, lut) for lut in _TINT_LUTS])
        return frame, truths

    def _truth(self, p: _Pass, origin: tuple[int, int]) -> dict[str, Any]:
        quad = None
        inside = False
        if p.qr_rect is not None:
            qx, qy, qw, qh = p.qr_rect
            pts = np.array([[[qx, qy]], [[qx + qw, qy]], [[qx + qw, qy + qh]], [[qx, qy + qh]]], np.float32)
            q = cv2.perspectiveTransform(pts, p.matrix).reshape(4, 2) + np.array(origin, np.float32)
            quad = [[round(float(a), 1), round(float(b), 1)] for a, b in q]
            margin = 2.0
            inside = bool((q[:, 0] >= margin).all() and (q[:, 0] <= self.width - margin).all()
                          and (q[:, 1] >= margin).all() and (q[:, 1] <= self.height - margin).all())
        kind = p.kind if p.kind != "good" or inside else "cut"
        if p.kind == "foreign" and not inside:
            kind = "cut"
        return {"text": p.text, "role": p.role, "kind": kind,
                "readable": kind in ("good", "foreign"),
                "quad": quad, "label_index": p.label_index}

    # ------------------------------------------------------------------------------------------ live stream

    def _render_loop(self) -> None:
        """Frames on a fixed clock, each showing the belt at its own exposure time: a frame rendered late is
        late, not a bigger step of the belt (a real sensor exposes on time whatever the CPU does). Running more
        than `_MAX_LAG_S` behind, the camera drops the frames it missed, as a camera whose buffer is full."""
        period = 1.0 / self.fps
        next_at = self.clock.monotonic()
        while True:
            with self._lock:
                if not self._running:
                    return
            now = self.clock.monotonic()
            if now < next_at:
                with self._lock:
                    self.clock.wait(self._lock, next_at - now)
                continue
            if now - next_at > _MAX_LAG_S:
                missed = int((now - next_at) / period)
                self.counts.dropped += missed
                next_at += missed * period
            try:
                self._render_live(next_at)
            except Exception:
                log.exception("camera simulator failed to render a frame")
            next_at += period

    def _render_live(self, now: float) -> None:
        with self._lock:
            due = [item for item in self._pending if item[0] <= now]
            self._pending = [item for item in self._pending if item[0] > now]
        for t_due, label, kind in due:
            p = self._new_pass(label, kind, t_due, self._rng)
            if p is not None:
                # Labels ride on items, and items do not overlap on the belt: one printed right behind another
                # enters the view only once that one has moved its length and a gap on.
                p.t_enter = max(p.t_enter, self._belt_free_at)
                self._belt_free_at = p.t_enter + (p.width + _ITEM_GAP_PX) / p.speed
                with self._lock:
                    self._passes.append(p)
        with self._lock:
            self._passes = [p for p in self._passes if p.x_at(now) < self.width]
            passes = [(p, p.x_at(now)) for p in self._passes]
            index = self._frame_seq
        frame, _truth = self.render(passes, index, gray_out=self.mono)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            return
        exposed = self._epoch_offset + now   # the exposure time, in epoch seconds, as cameras stamp it
        with self._lock:
            self._jpeg = jpeg.tobytes()
            self._jpeg_stamp = b"%.6f" % exposed
            self._frame_seq += 1
            self.counts.frames += 1
            self._lock.notify_all()

    def _serve_client(self, conn: socket.socket) -> None:
        with self._lock:
            self.counts.clients += 1
        conn.settimeout(5.0)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 8192:
            chunk = conn.recv(1024)
            if not chunk:
                return
            request += chunk
        head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split()
        method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("GET", "/")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if ":" in h)}
        path = target.split("?")[0]
        if self.auth is not None and not self._authorized(method, headers.get("authorization", "")):
            challenge = (f'Digest realm="{_REALM}", qop="auth", nonce="{self._nonce}", algorithm=MD5'
                         if self.auth_scheme == "digest" else f'Basic realm="{_REALM}"')
            conn.sendall(f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n".encode("latin-1"))
        elif path == "/video.cgi":
            # An IP camera's CGI address that sends the client on to its stream.
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /stream.mjpg\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
        elif path in ("/", "/stream.mjpg", "/stream", "/video"):
            self._stream(conn)
        elif path in ("/frame.jpg", "/snapshot.jpg"):
            jpeg = self._next_jpeg(after=-1)
            if jpeg is not None:
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: "
                             + str(len(jpeg)).encode() + b"\r\nCache-Control: no-cache\r\n\r\n" + jpeg)
        else:
            conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such path; "
                         b"try /stream.mjpg or /frame.jpg\n")

    def _authorized(self, method: str, header: str) -> bool:
        """Whether the request's Authorization answers the challenge (Basic, or Digest MD5 with qop=auth)."""
        assert self.auth is not None
        user, password = self.auth
        scheme, _, value = header.partition(" ")
        if self.auth_scheme == "basic":
            expected = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            return scheme.lower() == "basic" and hmac.compare_digest(value.strip(), expected)
        if scheme.lower() != "digest":
            return False
        fields = dict((k.strip(), v.strip().strip('"')) for k, _, v in
                      (item.partition("=") for item in re.split(r",\s*(?=\w+=)", value)))
        if fields.get("username") != user or fields.get("nonce") != self._nonce:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

        ha1, ha2 = md5(f"{user}:{_REALM}:{password}"), md5(f"{method}:{fields.get('uri', '')}")
        expected = md5(f"{ha1}:{self._nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        return hmac.compare_digest(fields.get("response", ""), expected)

    def _next_jpeg(self, after: int) -> bytes | None:
        with self._lock:
            self._lock.wait_for(lambda: not self._running or (self._jpeg is not None and self._frame_seq > after),
                                timeout=2.0)
            return self._jpeg if self._running else None

    def _stream(self, conn: socket.socket) -> None:
        # HTTP/1.1 with chunked transfer as many IP cameras send it, or HTTP/1.0 to the end of the connection.
        version, framing = (b"HTTP/1.1", b"Transfer-Encoding: chunked\r\n") if self.chunked else (b"HTTP/1.0", b"")
        conn.sendall(version + b" 200 OK\r\nServer: camera-simulator\r\nCache-Control: no-cache\r\n" + framing
                     + b"Connection: close\r\nContent-Type: multipart/x-mixed-replace; boundary=" + _BOUNDARY
                     + b"\r\n\r\n")
        seen = 0   # frame numbers start at 1: the first frame rendered is the first sent
        while self._running:
            with self._lock:
                self._lock.wait_for(lambda: not self._running or self._frame_seq > seen, timeout=1.0)
                if not self._running:
                    return
                if self._frame_seq <= seen or self._jpeg is None:
                    continue
                jpeg, seen, stamp = self._jpeg, self._frame_seq, self._jpeg_stamp
            part = (b"--" + _BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nX-Timestamp: " + stamp
                    + b"\r\nContent-Length: " + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part) if self.chunked else part)

    # ------------------------------------------------------------------------------------------ control

    def _handlers(self) -> dict[str, Any]:
        def rate(name: str) -> Any:
            def handler(args: list[str]) -> str:
                if len(args) != 1:
                    raise ValueError(f"usage: {name} <rate 0..1>")
                try:
                    self.set_rates(**{name: float(args[0])})
                except SimulatorError as exc:
                    raise ValueError(str(exc)) from exc
                return "ok"
            return handler

        def inject(args: list[str]) -> str:
            self.inject(args[0] if args else "good", " ".join(args[1:]) or None)
            return "ok"

        def number(attr: str, low: float) -> Any:
            def handler(args: list[str]) -> str:
                value = float(args[0])
                if value < low:
                    raise ValueError(f"{attr} must be at least {low}")
                setattr(self, attr, value)
                return "ok"
            return handler

        def noise(args: list[str]) -> str:
            value = float(args[0])
            if value < 0:
                raise ValueError("noise must be at least 0")
            bank = self._make_noise_bank(value)
            self.noise, self._noise_bank = value, bank
            return "ok"

        def offline(args: list[str]) -> str:
            setting = yes_no(args[0]) if len(args) == 1 else None
            if setting is None:
                raise ValueError("usage: offline on|off")
            self.set_offline(setting)
            return "ok"

        return {
            **{name: rate(name) for name in ("no_label", "smudge", "cut", "foreign")},
            "inject": inject,
            "blur": number("max_blur", 0.0),
            "noise": noise,
            "speed": number("speed", 1.0),
            "delay": number("delay", 0.0),
            "offline": offline,
            "disconnect": lambda _args: (self.disconnect(), "ok")[1],
            "status": lambda _args: json.dumps(self.status()),
        }

    # ------------------------------------------------------------------------------------------ fixed sets

    def write_frames(self, folder: str | Path, n: int = 400, *, seed: int = 1, step: float = 150.0,
                     bad_fraction: float = 0.2, gap: tuple[float, float] = (0.15, 0.9), gray: bool = False,
                     jpeg_quality: int | None = None, lot: str = "MX2611A") -> dict[str, Any]:
        """Write `n` frames (`frame_00000.jpg`…) and `manifest.json` to `folder`, all from `seed`.

        A continuous stretch of conveyor: labels enter on the left, move `step` pixels per frame and leave on
        the right, spaced by a gap of `gap` label widths (two can be in view at once). About `bad_fraction`
        of the items are bad: missing (an empty stretch of belt), a smudged code, a code cut by the top or
        bottom edge, or a label of another batch. Each frame lists every label at least partly in view:
        `text`, `role` (ours | foreign), `kind` (good | smudged | cut | foreign; a code crossing the left or
        right edge is `cut` in that frame), `readable`, and the code's corners `quad`. A frame's `kind`: `good`
        when it shows at least one readable label of ours, else `foreign` (a readable label of another batch),
        `empty` (no label) or `unreadable` (only smudged or cut codes)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed)
        saved_rates, self._rates = self._rates, {k: 0.0 for k in self._rates}
        frames: list[dict[str, Any]] = []
        quality = self.jpeg_quality if jpeg_quality is None else jpeg_quality
        belt: list[tuple[_Pass, float]] = []   # (pass, x of its left edge at frame 0 of the belt)
        next_x = 0.0                           # where the next label starts, in belt coordinates
        try:
            for index in range(n):
                travelled = index * step
                # Keep the belt filled up to one frame width ahead of the view.
                while next_x + travelled > -step and len(belt) < 10_000:
                    roll = rng.random()
                    kind = rng.choice(("none", "smudged", "cut", "foreign")) if roll < bad_fraction else "good"
                    if kind == "none":
                        next_x -= 520 * self.scale * (1 + rng.uniform(*gap))
                        continue
                    uri, serial = _stamp_uri(rng, lot)
                    p = self._new_pass(make_stamp_label(uri, lot=lot, serial=serial), kind, 0.0, rng)
                    assert p is not None
                    belt.append((p, next_x - p.width))
                    next_x -= p.width * (1 + rng.uniform(*gap))
                in_view = [(p, x0 + travelled) for p, x0 in belt
                           if x0 + travelled < self.width and x0 + travelled + p.width > 0]
                frame, truth = self.render(in_view, index, gray_out=gray)
                name = f"frame_{index:05d}.jpg"
                cv2.imwrite(str(folder / name), frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
                if any(t["readable"] and t["role"] == "ours" for t in truth):
                    frame_kind = "good"
                elif any(t["readable"] for t in truth):
                    frame_kind = "foreign"
                else:
                    frame_kind = "unreadable" if truth else "empty"
                frames.append({"file": name, "kind": frame_kind, "labels": truth})
                belt = [(p, x0) for p, x0 in belt if x0 + travelled < self.width + step]
        finally:
            self._rates = saved_rates
        manifest = {"seed": seed, "width": self.width, "height": self.height, "count": len(frames),
                    "step_px": step, "gray": gray, "jpeg_quality": quality,
                    "kinds": {k: sum(1 for f in frames if f["kind"] == k)
                              for k in ("good", "foreign", "unreadable", "empty")},
                    "frames": frames}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        return manifest
