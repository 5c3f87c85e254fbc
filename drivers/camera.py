"""Cameras by URL: a grabber thread that always holds the newest frame, measures what it really gets, reconnects.

URL forms (`open_camera(url)`):

    camera://0?width=1280&height=720&fps=30   an OpenCV capture device by index (V4L2 on Linux, /dev/video0)
    file:///path/video.avi?fps=0&loop=1       a video file: at its own frame rate, or `fps` (0 = as fast as
                                              it decodes); `loop=1` starts again at the end
    folder:///path/to/images?fps=10&loop=1    the images of a folder in name order (png, jpg, bmp, tif)
    http://host:port/stream.mjpg              an MJPEG stream (IP cameras, the camera simulator): HTTP by
                                              httpx (redirects, chunked transfer, https), the parts by our
                                              multipart reader; user:password@ for the Digest or Basic auth
                                              the camera asks for; `?backend=ffmpeg` reads it through
                                              OpenCV's FFmpeg backend instead

Every form takes `gray=1` (frames as 2-D gray arrays instead of BGR; the verification camera defaults to it,
`gray=0` keeps colour). Unknown options are refused, so a typo
never silently does nothing.

`Camera.start()` starts the grabber thread, which opens the source itself and, when it fails or drops
(unplugged, stream closed, nothing received for `read_timeout` seconds), closes it and opens it again with
back-off (0.1 s doubling to `max_backoff`), logging the loss once and the recovery once. A file or folder that
ends without `loop` ends the camera (`ended`), which is not a fault. `latest()` is the newest frame,
`wait_next(after_seq, timeout)` waits for a newer one; `fps` and `resolution` are what really arrived.
A consumer slower than the camera gets the newest frame and skips the others; `Frame.seq` says which frame it
got (for a file or folder played once: its place among the recording's frames, from 1).

`clock` (drivers.clock) times the replay of a file or folder, the reconnect back-off, `Frame.at` and `fps`;
the machine's monotonic clock unless a test passes one it moves by hand.

One module of about 630 lines: the URL forms, the sources (OpenCV capture, folder, MJPEG) and the grabber that
reconnects them share one Frame and one clock; each source is a class of its own.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import httpx
import numpy as np

from drivers.clock import SYSTEM_CLOCK, Clock
from drivers.errors import DeviceError
from drivers.reconnect import DeviceThread, Link
from drivers.url_options import UrlOptions

__all__ = ["Camera", "CameraError", "Frame", "open_camera"]

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"}


class CameraError(DeviceError):
    """A camera that cannot be opened or read; the message names the URL."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One grabbed frame: `image` is BGR (h x w x 3) or gray (h x w) uint8, `seq` counts from 1, `at` is
    the camera's clock (time.monotonic() unless a test gave another) when it was taken: when it arrived, or
    earlier for a camera that stamps its frames (`X-Timestamp` on an MJPEG part), mapped to our clock; a moving
    belt is tracked by these times."""

    image: np.ndarray
    seq: int
    at: float

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.image.shape[1]), int(self.image.shape[0]))


class _Source(Protocol):
    """One connection to a camera. `read()` returns the next image, None at the end of a finite source, and
    raises CameraError when the source failed."""

    live: bool           # a live camera is reconnected; a file or folder ends
    nominal_fps: float   # 0 when unknown or unpaced
    stamp: float | None  # the camera's own time of the image read last (epoch seconds), when it sends one

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------------- URLs

_OFFSET_RELAX_S = 0.0002   # the stamp offset may grow this much a frame (clock drift) before a low one resets it


@dataclass(frozen=True)
class _Url:
    scheme: str
    target: str
    options: UrlOptions
    raw: str
    shown: str = ""         # for messages and logs: raw with the password of a user:password@ masked


def shown_url(url: str) -> str:
    """A camera URL as messages, logs and screens show it: the password of http://user:password@… masked."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


_ALLOWED = {
    "camera": ("width", "height", "fps", "gray", "backend"),
    "file": ("fps", "loop", "gray"),
    "folder": ("fps", "loop", "gray"),
    "http": ("gray", "backend", "timeout"),
    "https": ("gray", "backend", "timeout"),
}


def _parse(url: str) -> _Url:
    shown = shown_url(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _ALLOWED:
        raise CameraError(f"{shown}: unknown camera scheme {parts.scheme!r} "
                          "(expected camera://0, file:///video.avi, folder:///images or http://host/stream.mjpg)")
    http = scheme in ("http", "https")
    # Options we do not know belong to an IP camera's own URL (e.g. ?action=stream): they stay in it.
    options = UrlOptions(url, parts.query, known=_ALLOWED[scheme], error=CameraError, foreign=http, shown=shown)
    if http and options.get("backend") == "ffmpeg" and options.foreign_query:
        raise CameraError(f"{shown}: unknown option {options.foreign_query!r} with backend=ffmpeg "
                          f"(known: {', '.join(options.known)})")
    if scheme == "camera":
        target = parts.netloc or parts.path.lstrip("/")
        if not target.isdigit():
            raise CameraError(f"{shown}: camera:// takes a device index, e.g. camera://0")
    elif scheme in ("file", "folder"):
        target = unquote(parts.path if not parts.netloc else "/" + parts.netloc + parts.path)
        if not target:
            raise CameraError(f"{shown}: no path (expected {scheme}:///absolute/path)")
    else:
        if not parts.hostname:
            raise CameraError(f"{shown}: no host")
        target = url
    return _Url(scheme, target, options, url, shown)


# ---------------------------------------------------------------------------------------------------- sources


class _CaptureSource:
    """cv2.VideoCapture: a device index, a video file, or a stream through FFmpeg."""

    stamp = None

    def __init__(self, url: _Url, target: int | str, *, live: bool, fps: float | None = None,
                 size: tuple[int, int] | None = None, loop: bool = False, gray: bool = False,
                 api: int = cv2.CAP_ANY, timeout_ms: int = 5000) -> None:
        self.url, self.target, self.live, self.loop, self.gray = url, target, live, loop, gray
        self.requested_fps, self.size, self.api, self.timeout_ms = fps, size, api, timeout_ms
        self.nominal_fps = 0.0
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.timeout_ms]
        cap = cv2.VideoCapture(self.target, self.api, params)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"{self.url.shown}: cannot open")
        if self.live and self.size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        if self.live and self.requested_fps:
            cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        own = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if self.live:
            self.nominal_fps = 0.0      # a camera paces itself
        else:
            self.nominal_fps = own if self.requested_fps is None else self.requested_fps
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise CameraError(f"{self.url.shown}: not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.live:
                raise CameraError(f"{self.url.shown}: no frame (camera unplugged or stream closed?)")
            if self.loop:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._cap.read()
                if not ok or image is None:
                    return None
            else:
                return None
        if self.gray and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _FolderSource:
    """The images of a folder in name order (the list is read again at each open and each loop)."""

    live = False

    stamp = None

    def __init__(self, url: _Url, fps: float, loop: bool, gray: bool) -> None:
        self.url, self.nominal_fps, self.loop, self.gray = url, fps, loop, gray
        self._files: list[Path] = []
        self._index = 0

    def open(self) -> None:
        folder = Path(self.url.target)
        if not folder.is_dir():
            raise CameraError(f"{self.url.shown}: {folder} is not a folder")
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not self._files:
            raise CameraError(f"{self.url.shown}: no images in {folder}")
        self._index = 0

    def read(self) -> np.ndarray | None:
        while True:
            if self._index >= len(self._files):
                if not self.loop:
                    return None
                self.open()
            path = self._files[self._index]
            self._index += 1
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if self.gray else cv2.IMREAD_COLOR)
            if image is not None:
                return image
            log.warning("%s: %s is not a readable image; skipped", self.url.shown, path.name)

    def close(self) -> None:
        self._files = []


class _CameraAuth(httpx.Auth):
    """The user:password@ of the URL, in the scheme the camera asks for: Digest (most IP cameras) or Basic.

    Nothing is sent until the camera answers 401, so a password never goes out in clear to a camera that asks
    for Digest, nor to one that needs none."""

    def __init__(self, user: str, password: str) -> None:
        self._basic = httpx.BasicAuth(user, password)
        self._digest = httpx.DigestAuth(user, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        if response.headers.get("www-authenticate", "").lower().startswith("digest"):
            yield from self._digest.auth_flow(request)   # it sends again and answers the new challenge
        else:
            yield from self._basic.auth_flow(request)


class _MjpegSource:
    """multipart/x-mixed-replace over HTTP: httpx speaks HTTP (redirects, chunked transfer, Basic and Digest
    auth, TLS), the multipart reader here picks the parts, so only the newest complete one in what arrived is
    decoded (a slow consumer never reads a backlog)."""

    live = True
    nominal_fps = 0.0

    def __init__(self, url: _Url, gray: bool, timeout: float) -> None:
        self.url, self.gray, self.timeout = url, gray, timeout
        self.stamp: float | None = None
        self._client: httpx.Client | None = None
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._buffer = bytearray()
        self._boundary = b""

    def open(self) -> None:
        parts = urlsplit(self.url.target)
        host = parts.netloc.rpartition("@")[2]
        query = self.url.options.foreign_query
        target = urlunsplit((parts.scheme, host, parts.path or "/", query, ""))
        auth = _CameraAuth(unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        self._client = httpx.Client(
            auth=auth, follow_redirects=True, timeout=httpx.Timeout(self.timeout),
            verify=ssl.create_default_context(),   # the machine's CA store, as the rest of the station
            headers={"Accept": "multipart/x-mixed-replace", "User-Agent": "packing-station"},
        )
        self._buffer = bytearray()
        try:
            response = self._client.send(self._client.build_request("GET", target), stream=True)
        except httpx.HTTPError as exc:
            self.close()
            raise CameraError(f"{self.url.shown}: cannot connect: {_reason(exc)}") from exc
        self._response = response
        if response.status_code != 200:
            self.close()
            raise CameraError(f"{self.url.shown}: HTTP answer {response.status_code} {response.reason_phrase!r}")
        content_type = response.headers.get("content-type", "")
        if "multipart" not in content_type.lower() or "boundary=" not in content_type:
            self.close()
            raise CameraError(f"{self.url.shown}: not an MJPEG stream (Content-Type {content_type!r})")
        boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
        self._boundary = b"--" + boundary.removeprefix("--").encode("latin-1")
        self._chunks = response.iter_bytes()

    def _recv(self) -> None:
        assert self._chunks is not None
        try:
            chunk = next(self._chunks, b"")
        except httpx.TimeoutException:
            raise CameraError(f"{self.url.shown}: nothing received for {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise CameraError(f"{self.url.shown}: connection failed: {_reason(exc)}") from exc
        if not chunk:
            raise CameraError(f"{self.url.shown}: the camera closed the stream")
        self._buffer += chunk

    def _next_part(self) -> tuple[bytes, float | None] | None:
        """The next complete JPEG in the buffer with its `X-Timestamp` (the exposure time some cameras send),
        or None when the buffer holds no complete part yet."""
        buf = self._buffer
        start = buf.find(self._boundary)
        if start < 0:
            return None
        head_end = buf.find(b"\r\n\r\n", start)
        if head_end < 0:
            return None
        headers = bytes(buf[start + len(self._boundary):head_end]).decode("latin-1").lower()
        body = head_end + 4
        length = stamp = None
        for line in headers.split("\r\n"):
            if line.startswith("content-length:"):
                try:
                    length = int(line.split(":", 1)[1])
                except ValueError:
                    length = None
            elif line.startswith("x-timestamp:"):
                try:
                    stamp = float(line.split(":", 1)[1])
                except ValueError:
                    stamp = None
        if length is not None:
            if len(buf) < body + length:
                return None
            data = bytes(buf[body:body + length])
            del buf[:body + length]
            return data, stamp
        end = buf.find(self._boundary, body)   # no length: the part runs to the next boundary
        if end < 0:
            return None
        data = bytes(buf[body:end]).rstrip(b"\r\n")
        del buf[:end]
        return data, stamp

    def read(self) -> np.ndarray | None:
        if self._chunks is None:
            raise CameraError(f"{self.url.shown}: not open")
        newest = None
        while newest is None:
            while (part := self._next_part()) is not None:
                newest = part       # skip older complete parts: only the newest is decoded
            if newest is None:
                self._recv()
        jpeg, self.stamp = newest
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8),
                             cv2.IMREAD_GRAYSCALE if self.gray else cv2.IMREAD_COLOR)
        if image is None:
            raise CameraError(f"{self.url.shown}: a part that is not a JPEG ({len(jpeg)} bytes)")
        return image

    def interrupt(self) -> None:
        """Wake a read blocked on the socket (from another thread: stop() must not wait for the timeout)."""
        response = self._response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        response, client = self._response, self._client
        self._response = self._client = self._chunks = None
        for part in (response, client):
            if part is not None:
                try:
                    part.close()
                except (httpx.HTTPError, OSError):
                    pass   # the camera is already gone
        self._buffer = bytearray()


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _source(url: _Url, gray_default: bool = False) -> _Source:
    options = url.options
    gray = options.flag("gray", gray_default)
    if url.scheme == "camera":
        size = None
        if "width" in options or "height" in options:
            size = (int(options.number("width", 1280, 1, unit="pixels")),
                    int(options.number("height", 720, 1, unit="pixels")))
        fps = options.number("fps", 0.0, 0, unit="frames per second") or None
        api = cv2.CAP_V4L2 if options.get("backend") == "v4l2" else cv2.CAP_ANY
        return _CaptureSource(url, int(url.target), live=True, fps=fps, size=size, gray=gray, api=api)
    if url.scheme == "file":
        if not Path(url.target).is_file():
            raise CameraError(f"{url.shown}: no such file {url.target}")
        fps = options.number("fps", -1.0, 0, unit="frames per second")
        return _CaptureSource(url, url.target, live=False, fps=None if fps < 0 else fps,
                              loop=options.flag("loop"), gray=gray, api=cv2.CAP_FFMPEG)
    if url.scheme == "folder":
        return _FolderSource(url, options.number("fps", 10.0, 0, unit="frames per second"), options.flag("loop"),
                             gray)
    timeout = options.number("timeout", 3.0, 0.1, unit="seconds")
    if options.get("backend") == "ffmpeg":
        plain = url.raw.split("?", 1)[0]
        return _CaptureSource(url, plain, live=True, gray=gray, api=cv2.CAP_FFMPEG, timeout_ms=int(timeout * 1000))
    return _MjpegSource(url, gray, timeout)


# ---------------------------------------------------------------------------------------------------- camera


class Camera:
    """A camera on its grabber thread. Only the newest frame is kept; a consumer that is slower than the
    camera skips frames (it always works on the most recent view), which `dropped` counts."""

    def __init__(self, url: str, *, max_backoff: float = 2.0, gray: bool = False,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._url = _parse(url)
        self.clock = clock
        self._make_source = lambda: _source(self._url, gray)
        _source(self._url, gray)  # validate options and paths now: a bad URL fails at start-up, not in a thread
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._seq = 0
        self._arrivals: deque[float] = deque(maxlen=90)
        self._stamp_offset: float | None = None   # our monotonic clock minus the camera's frame stamps
        self._thread = DeviceThread(self._run, f"camera {self._url.shown}", logger=log, wake=self._wake)
        self._stop = self._thread.stopping
        self._link = Link(self._url.shown, "camera", stop=self._stop, logger=log, clock=clock, max_backoff=max_backoff)
        self._ended = False
        self._source: _Source | None = None
        self.frames = 0

    @property
    def url(self) -> str:
        """The URL for logs and screens (a password in it masked)."""
        return self._url.shown

    @property
    def connected(self) -> bool:
        return self._link.is_up

    @property
    def last_error(self) -> str | None:
        """Why the camera gives no frames (`<url>: <reason>`), None while it does."""
        return self._link.last_error

    @property
    def reconnects(self) -> int:
        """How many times frames stopped coming from a camera that was giving them."""
        return self._link.losses

    @property
    def ended(self) -> bool:
        """A file or folder played to its end (no `loop`): no more frames will come."""
        return self._ended

    @property
    def running(self) -> bool:
        return self._thread.running

    @property
    def fps(self) -> float:
        """Frames per second that really arrived, over the last few seconds (0 until two frames came)."""
        with self._cond:
            arrivals = list(self._arrivals)
        if len(arrivals) < 2:
            return 0.0
        now = self.clock.monotonic()
        recent = [t for t in arrivals if now - t <= 3.0]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    @property
    def resolution(self) -> tuple[int, int] | None:
        """(width, height) of the newest frame: what the camera delivers, whatever was asked for."""
        frame = self._frame
        return frame.size if frame is not None else None

    def latest(self) -> Frame | None:
        return self._frame

    def wait_next(self, after_seq: int = 0, timeout: float | None = None) -> Frame | None:
        """The newest frame with `seq > after_seq`, waiting up to `timeout` s; None on timeout, stop or end."""
        with self._cond:
            self._cond.wait_for(lambda: (self._frame is not None and self._frame.seq > after_seq)
                                or self._stop.is_set() or self._ended, timeout)
            frame = self._frame
        return frame if frame is not None and frame.seq > after_seq else None

    def wait_connected(self, timeout: float) -> bool:
        return self._link.connected.wait(timeout)

    def start(self) -> Self:
        if self._thread.started:
            raise CameraError(f"{self.url}: camera already started")
        self._ended = False
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the grabber and close the source; returns once the thread has ended."""
        self._thread.stop(timeout)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()   # a wait_next() returns
        interrupt = getattr(self._source, "interrupt", None)
        if interrupt is not None:
            interrupt()               # a read blocked on the stream's socket returns

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- grabber ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        source: _Source | None = None
        try:
            while not self._stop.is_set():
                if source is None:
                    source = self._make_source()
                    try:
                        source.open()
                    except Exception as exc:  # CameraError, or OpenCV's own errors on odd devices
                        source.close()
                        source = None
                        self._link.lost(str(exc) if isinstance(exc, CameraError) else f"{self.url}: {exc}")
                        self._link.pause()
                        continue
                    next_due = self.clock.monotonic()
                    self._source = source
                try:
                    image = source.read()
                except CameraError as exc:
                    source.close()
                    source = self._source = None
                    if self._stop.is_set():
                        return
                    # No pause: a stream the camera closed (a restart, a client limit) is opened again at once.
                    self._link.lost(str(exc))
                    continue
                if image is None:
                    self._end()
                    return
                if not self._link.is_up:
                    self._link.recovered()
                if source.nominal_fps > 0:
                    # Replay at the file's (or asked) rate; a slow disk or decoder never speeds it up later.
                    next_due += 1.0 / source.nominal_fps
                    delay = next_due - self.clock.monotonic()
                    if delay > 0:
                        if self.clock.wait_event(self._stop, delay):
                            return
                    else:
                        next_due = self.clock.monotonic()
                self._publish(image, source.stamp)
        finally:
            self._source = None
            if source is not None:
                source.close()
            self._link.closed()
            with self._cond:
                self._cond.notify_all()

    def _publish(self, image: np.ndarray, stamp: float | None = None) -> None:
        now = self.clock.monotonic()
        at = now
        if stamp is not None:
            # The camera's clock is not ours: the offset is the smallest delay seen (a frame that came at once),
            # let up by a little every frame so it follows drift, reset when the camera's clock jumps.
            offset = now - stamp
            if self._stamp_offset is None or offset < self._stamp_offset or offset > self._stamp_offset + 0.5:
                self._stamp_offset = offset
            else:
                self._stamp_offset += _OFFSET_RELAX_S
            at = min(now, stamp + self._stamp_offset)
        with self._cond:
            self._seq += 1
            self._frame = Frame(image, self._seq, at)
            self._arrivals.append(now)
            self.frames += 1
            self._cond.notify_all()

    def _end(self) -> None:
        log.info("%s: end of the recording", self.url)
        with self._cond:
            self._ended = True
            self._link.closed()
            self._cond.notify_all()


def open_camera(url: str, *, max_backoff: float = 2.0, gray: bool = False, clock: Clock = SYSTEM_CLOCK) -> Camera:
    """A Camera for `url` (see the module docstring for the forms), not started: call `start()` or use it as a
    context manager. `gray` is the default when the URL has no `gray=` (a code reader wants gray frames: a
    JPEG decodes faster without its colour). Raises CameraError at once for a malformed URL, an unknown
    option or a missing file. `clock`: see the module docstring."""
    return Camera(url, max_backoff=max_backoff, gray=gray, clock=clock)
