"""Cameras by URL and the camera reader, against real files, a real video and the camera simulator's MJPEG
stream over a real socket (the station's code path), with the printer simulator feeding it labels."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import CameraError, open_camera
from drivers.camera_reader import CameraReader
from drivers.decoder import TrackingDecoder, ZxingDecoder
from drivers.errors import DeviceError
from simulators.camera import CameraSimulator, make_stamp_label
from simulators.printer import PrinterSimulator
from tests.clock import ManualClock
from tests.integration.mqtt_fixtures import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

URI = "https://truyxuat.example.vn/01/08938603001013/10/MX2611A/21/7K3Q9XH2WP?17=270528"
TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "labels" / "stamp-60x40.zpl"


@pytest.fixture
def no_leaks() -> Iterator[None]:
    before = threading.active_count()
    yield
    wait_until(lambda: threading.active_count() <= before, 3)
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]


def small_sim(**options: object) -> CameraSimulator:
    defaults: dict[str, object] = {"width": 800, "height": 600, "fps": 25, "seed": 3, "delay": 0.0,
                                   "scale": 1.0, "speed": 2500.0}
    return CameraSimulator(**{**defaults, **options})  # type: ignore[arg-type]


def label_frame(uri: str | None, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    frame = np.full((size[1], size[0], 3), 70, np.uint8)
    if uri is not None:
        label = np.asarray(make_stamp_label(uri).image.convert("L"), dtype=np.uint8)
        frame[60:60 + label.shape[0], 60:60 + label.shape[1]] = label[:, :, None]
    return frame


# -------------------------------------------------------------------------------------------------------- URLs


def test_bad_urls_fail_at_once_with_the_url(tmp_path: Path) -> None:
    cases = {
        "rtsp://cam/1": "unknown camera scheme",
        "camera://front": "device index",
        f"file://{tmp_path}/missing.avi": "no such file",
        "camera://0?widht=640": "unknown option",
        f"folder://{tmp_path}?fps=fast": "fps must be frames per second at least 0",
    }
    for url, message in cases.items():
        with pytest.raises(CameraError, match=message) as caught:
            open_camera(url)
        assert url in str(caught.value)
        assert isinstance(caught.value, DeviceError)


def test_folder_plays_images_in_name_order_then_ends(tmp_path: Path, no_leaks: None) -> None:
    for i, level in enumerate((30, 90, 150, 210)):
        cv2.imwrite(str(tmp_path / f"img_{i:02d}.png"), np.full((48, 64, 3), level, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    levels = []
    with open_camera(f"folder://{tmp_path}?fps=50") as camera:
        seq = 0
        while (frame := camera.wait_next(seq, timeout=2)) is not None:
            seq = frame.seq
            levels.append(int(frame.image[0, 0, 0]))
        assert camera.ended
        assert camera.resolution == (64, 48)
    assert levels == [30, 90, 150, 210]


def test_folder_loops_and_gives_gray(tmp_path: Path, no_leaks: None) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 30, 3), 40 * (i + 1), np.uint8))
    clock = ManualClock(threads=1)
    with open_camera(f"folder://{tmp_path}?fps=100&loop=1&gray=1", clock=clock) as camera:
        levels = []
        for seq in range(1, 9):
            clock.advance(0.01)
            frame = camera.wait_next(seq - 1, timeout=5)
            assert frame is not None and frame.seq == seq
            levels.append(int(frame.image[0, 0]))
            if seq == 1:
                assert camera.fps == 0.0         # measured: nothing to measure from one frame
        assert frame.image.ndim == 2
        assert levels == [40, 80, 120] * 2 + [40, 80]   # round and round
        assert not camera.ended
        assert camera.fps == pytest.approx(100)  # what arrived on the camera's clock


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """Twelve frames at 40 fps; the label is on every second one, the first, third, … (seq 1, 3, … 11)."""
    path = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 40.0, (640, 480))
    assert writer.isOpened()
    for i in range(12):
        writer.write(label_frame(URI if i % 2 == 0 else None))
    writer.release()
    return path


def holds_label(seq: int) -> bool:
    return seq % 2 == 1


def test_video_file_at_its_rate_or_as_fast_as_asked(video: Path, no_leaks: None) -> None:
    # On the camera's clock: a frame comes when its time comes, and not a moment before, so each one is read
    # in turn, however loaded the machine is.
    clock = ManualClock(threads=1)
    with open_camera(f"file://{video}", clock=clock) as camera:
        started = clock.now()
        frames = []
        for seq in range(1, 13):
            clock.advance(0.024)
            assert (camera.latest().seq if camera.latest() else 0) == seq - 1   # 24 ms after the last: not yet
            clock.advance(0.001)
            frame = camera.wait_next(seq - 1, timeout=5)
            assert frame is not None and frame.seq == seq
            frames.append(frame)
        assert [f.at - started for f in frames] == pytest.approx([n / 40 for n in range(1, 13)])   # 40 fps
        assert camera.fps == pytest.approx(40)
        assert camera.wait_next(12, timeout=5) is None and camera.ended and camera.frames == 12
        assert camera.resolution == (640, 480)
    # Read by the decoder: every second frame holds the label.
    decoder = ZxingDecoder()
    assert [[d.text for d in decoder.decode(f.image)] for f in frames] == [[URI], []] * 6
    # fps=0: as fast as it decodes, never waiting on the clock; loop=1 goes round past the end.
    with open_camera(f"file://{video}?fps=0&loop=1", clock=clock) as camera:
        frame = camera.wait_next(0, timeout=5)
        while frame is not None and frame.seq < 30:
            frame = camera.wait_next(frame.seq, timeout=5)
        assert frame is not None and not camera.ended        # looped past the end
        assert frame.at == clock.now()                       # with the clock standing still: unpaced


def test_a_reader_slower_than_the_video_gets_frames_it_can_tell_apart(video: Path, no_leaks: None) -> None:
    # On the machine's clock at 200 fps the reader skips frames, as much as the machine makes it; whichever it
    # gets, its seq says which frame of the file it is (wait_next(0) is the newest, not the first).
    decoder = ZxingDecoder()
    got = []
    with open_camera(f"file://{video}?fps=200") as camera:
        seq = 0
        while (frame := camera.wait_next(seq, timeout=5)) is not None:
            got.append(frame.seq)
            texts = [d.text for d in decoder.decode(frame.image)]
            assert texts == ([URI] if holds_label(frame.seq) else []), (frame.seq, texts)
            seq = frame.seq
        assert camera.ended and camera.frames == 12
    assert got and got == sorted(set(got)) and got[-1] == 12


# -------------------------------------------------------------------------------------------------------- MJPEG


def test_mjpeg_stream_from_the_simulator(no_leaks: None) -> None:
    # Simulator and driver on one clock the test moves: a frame every 40 ms of it, each waited for as it comes.
    clock = ManualClock(threads=1)
    with small_sim(clock=clock) as sim, open_camera(sim.url, clock=clock) as camera:
        assert camera.wait_connected(3)
        first = camera.wait_next(0, timeout=3)
        assert first is not None and first.image.shape == (600, 800, 3)
        later = first
        for _ in range(10):
            clock.advance(0.04 + 1e-6)   # a microsecond past each frame's time: no float can leave it for later
            later = camera.wait_next(later.seq, timeout=5)
            assert later is not None
        assert later.seq == first.seq + 10 and later.at == pytest.approx(first.at + 0.4, abs=1e-4)
        assert camera.fps == pytest.approx(25, rel=1e-4)   # what arrived, measured on the camera's clock
        assert camera.resolution == (800, 600)


def test_mjpeg_through_ffmpeg_backend(no_leaks: None) -> None:
    with small_sim() as sim, open_camera(sim.url + "?backend=ffmpeg") as camera:
        frame = camera.wait_next(0, timeout=10)
        assert frame is not None and frame.size == (800, 600)


@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_mjpeg_with_the_auth_the_camera_asks_for(no_leaks: None, scheme: str) -> None:
    with small_sim(auth=("admin", "cam s3cret"), auth_scheme=scheme) as sim:
        url = sim.url.replace("http://", "http://admin:cam%20s3cret@")
        with open_camera(url) as camera:
            assert camera.wait_next(0, timeout=5) is not None
        with open_camera(url.replace("s3cret", "wrong") + "?timeout=1") as camera:
            assert wait_until(lambda: camera.last_error is not None, 5)
            assert "HTTP answer 401 'Unauthorized'" in str(camera.last_error)
            assert "wrong" not in str(camera.last_error) and "admin:***@" in str(camera.last_error)


def test_mjpeg_through_a_redirect_and_chunked_transfer(no_leaks: None) -> None:
    with small_sim(chunked=True, auth=("admin", "pw")) as sim:
        url = sim.url.replace("http://", "http://admin:pw@").replace("/stream.mjpg", "/video.cgi?resolution=800x600")
        with open_camera(url) as camera:
            first = camera.wait_next(0, timeout=5)
            assert first is not None and first.size == (800, 600)
            assert camera.wait_next(first.seq, timeout=5) is not None   # part after part through the chunks


def test_reconnects_when_the_stream_drops_and_comes_back(no_leaks: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drivers.camera")
    port = free_port()
    sim = small_sim(port=port).start()
    # The back-off on a clock the test moves: while the stream is gone, each step past it is one more attempt.
    clock = ManualClock(threads=1)
    camera = open_camera(f"http://127.0.0.1:{port}/stream.mjpg?timeout=1", max_backoff=0.2, clock=clock).start()
    try:
        assert camera.wait_connected(3)
        assert camera.wait_next(0, timeout=3) is not None
        sim.stop()
        assert wait_until(lambda: not camera.connected, 4)
        lost_at = camera.latest()
        assert lost_at is not None
        clock.settle()                # the first attempt failed; it waits 0.1 s
        for _ in range(6):            # six more attempts, each refused: the loss is logged once
            clock.advance(0.2)
        assert "cannot connect" in str(camera.last_error)
        sim = small_sim(port=port).start()
        clock.advance(0.2, settle=False)   # the next attempt finds the camera back (and then reads its stream)
        assert camera.wait_connected(5)
        newer = camera.wait_next(lost_at.seq, timeout=3)
        assert newer is not None
        assert camera.reconnects >= 1
        lost_logs = [r for r in caplog.records if "camera lost" in r.getMessage()]
        back_logs = [r for r in caplog.records if "camera connected again" in r.getMessage()]
        assert len(lost_logs) == 1 and len(back_logs) == 1
        # The simulator drops its clients: the camera comes back by itself.
        sim.disconnect()
        assert camera.wait_next(newer.seq + 1, timeout=5) is not None
    finally:
        camera.stop()
        sim.stop()


def test_control_port_sets_rates_while_running(no_leaks: None) -> None:
    with small_sim(control_port=0) as sim:
        port = sim.control_port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            reader = conn.makefile("rb")
            for command, reply in (("smudge 0.25", "ok"), ("foreign 0.1", "ok"), ("cut 2", "error"),
                                   ("inject smudged", "ok")):
                conn.sendall(command.encode() + b"\n")
                assert reader.readline().decode().startswith(reply), command
            conn.sendall(b"status\n")
            assert '"smudge": 0.25' in reader.readline().decode()
        assert sim.rates["foreign"] == 0.1


def test_stamped_frames_are_timed_by_their_exposure_not_their_arrival(no_leaks: None) -> None:
    # The simulator stamps each part with its exposure time (X-Timestamp); the driver maps the camera's clock to
    # ours, so a moving label is tracked by when the frame was taken, whatever the network or the CPU did. Here
    # the simulator and the driver share a clock the test moves: each frame is exposed on the 25 ms schedule and
    # reaches the driver 1 to 10 ms late (the frame clock runs late that much), and a busy consumer takes only
    # some of the frames.
    clock = ManualClock(threads=1)   # the simulator's frame thread; the driver waits on its socket
    lateness = [0.001, 0.006, 0.003, 0.010, 0.001, 0.008, 0.002, 0.005]
    with small_sim(fps=40, clock=clock) as sim, open_camera(sim.url, gray=True, clock=clock) as camera:
        assert camera.wait_connected(3)
        start = clock.now() - 0.025 * (sim.counts.frames - 1)   # the exposure of the frames to come: start + n/40
        frames, arrivals = [], []
        for n in range(sim.counts.frames, sim.counts.frames + 40):
            published = camera.frames
            clock.advance_to(start + n * 0.025 + lateness[n % len(lateness)])
            # one frame was exposed, sent and published
            assert wait_until(lambda: camera.frames > published, 5), f"frame {n} did not come"
            assert camera.frames == published + 1
            arrivals.append(clock.now())
            if n % 3 != 1:                             # a busy consumer: some frames are skipped
                frames.append(camera.latest())
                assert frames[-1].at <= clock.now()    # never later than it came
        assert frames[0].image.ndim == 2
        periods = [(b.at - a.at) / (b.seq - a.seq) for a, b in zip(frames, frames[1:])]
        assert all(abs(p - 1 / 40) < 0.001 for p in periods), periods
        # (the arrivals themselves are up to 9 ms off the period)
        assert max(abs(b - a - 1 / 40) for a, b in zip(arrivals, arrivals[1:])) > 0.005


def test_labels_printed_in_a_burst_do_not_overlap_on_the_belt(no_leaks: None) -> None:
    with small_sim(fps=30, speed=2000.0) as sim:
        for n in range(4):
            sim.on_label(make_stamp_label(URI.replace("7K3Q9XH2WP", f"7K3Q9XH2W{n}")))
        wait_until(lambda: sim.status()["in_view"] >= 2, 3)
        passes = sorted(sim._passes, key=lambda p: p.t_enter)
        assert len(passes) >= 2
        for a, b in zip(passes, passes[1:]):
            # b enters only once a has moved its own length and a gap along the belt.
            assert (b.t_enter - a.t_enter) * a.speed >= a.width


def test_noise_is_set_from_the_control_port(no_leaks: None) -> None:
    with small_sim(control_port=0) as sim:
        assert sim.control_port is not None
        with socket.create_connection(("127.0.0.1", sim.control_port), timeout=2) as conn:
            reader = conn.makefile("rb")
            conn.sendall(b"noise 12\n")
            assert reader.readline().decode().strip() == "ok"
            conn.sendall(b"noise -1\n")
            assert reader.readline().decode().startswith("error")
        assert sim.noise == 12
        frame, _ = sim.render([], 0, gray_out=True)
        assert 8 < float(np.std(frame.astype(np.float32) - sim._backgrounds[0])) < 16


# -------------------------------------------------------------------------------------------------------- reader


def test_reader_reports_a_label_seen_in_many_frames_once(no_leaks: None) -> None:
    reads: list[tuple[str, bool]] = []
    figures = []

    def on_read(text: str, raw: bytes, at: float, fig: object, *, repeat: bool = False) -> None:
        reads.append((text, repeat))
        figures.append(fig)

    with small_sim(speed=1200.0) as sim:
        camera = open_camera(sim.url)
        reader = CameraReader(camera, TrackingDecoder(ZxingDecoder()), on_read, dedupe_s=0.3).start()
        try:
            assert camera.wait_connected(3)
            sim.inject("good", URI)
            assert wait_until(lambda: reads and sim.status()["in_view"] + sim.status()["pending"] == 0, 4)
            # The label has left the view. Frames come in order and the driver keeps only the newest, so once the
            # reader has done three more, it has done every frame that showed the label.
            done = reader.stats().frames
            assert wait_until(lambda: reader.stats().frames >= done + 3, 5)
            stats = reader.stats()
            assert reads == [(URI, False)]
            assert stats.codes >= 3            # seen in several frames, reported once
            assert stats.reads == 1 and stats.repeats == 0
            assert figures[0] is not None and figures[0].module_px > 3
            view = reader.last_view()
            assert view is not None and view.frame.image.shape == (600, 800, 3)
        finally:
            reader.stop()
    assert not camera.running


def test_reader_flags_the_same_content_again_after_dedupe_time(tmp_path: Path, no_leaks: None) -> None:
    frames = [URI] * 4 + [None] * 10 + [URI] * 3     # at 50 fps: a 0.2 s gap
    for i, uri in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), label_frame(uri))
    reads: list[tuple[str, bool]] = []
    clock = ManualClock(threads=1)   # the recording's time: each frame is read before the next one comes
    camera = open_camera(f"folder://{tmp_path}?fps=50", clock=clock)
    reader = CameraReader(camera, ZxingDecoder(), lambda text, raw, at, fig, *, repeat: reads.append((text, repeat)),
                          dedupe_s=0.1)
    with reader:
        for n in range(1, len(frames) + 1):
            clock.advance(0.02)
            assert wait_until(lambda: reader.stats().frames >= n, 5), f"the reader did not take frame {n}"
        clock.advance(0.02)          # the end of the folder: the camera ends, and the reader with it
        assert wait_until(lambda: not reader.running, 5)
    assert reads == [(URI, False), (URI, True)]   # 0.22 s apart on the recording's clock: seen again
    stats = reader.stats()
    assert (stats.frames, stats.skipped, stats.hits, stats.misses) == (17, 0, 7, 10)


def test_printed_labels_reach_the_reader_through_the_camera(no_leaks: None) -> None:
    """Printer simulator -> camera simulator (listener) -> MJPEG -> open_camera -> CameraReader."""
    values = {"qr": URI, "product_name": "Me xung 250g", "producer": "Thong Huong", "lot": "MX2611A",
              "production_date": "26/11/2025", "expiry_date": "28/05/2027", "serial": "7K3Q9XH2WP",
              "gtin12": "893860300101"}
    zpl = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        zpl = zpl.replace("${" + name + "}", value)
    reads: list[str] = []
    with PrinterSimulator(port=0) as printer, small_sim(delay=0.1) as sim:
        printer.add_listener(sim.on_label)
        reader = CameraReader(open_camera(sim.url), TrackingDecoder(),
                              lambda text, raw, at, fig, *, repeat: reads.append(text)).start()
        try:
            with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as conn:
                conn.sendall(zpl.encode("utf-8"))
            assert printer.wait_printed(1, timeout=5)
            wait_until(lambda: reads, 5)
        finally:
            reader.stop()
    assert reads == [URI]


def test_stop_does_not_wait_for_a_stalled_stream(no_leaks: None) -> None:
    """A camera that sends its headers and then nothing: stop() returns at once, not after the read timeout."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    camera = open_camera(f"http://127.0.0.1:{server.getsockname()[1]}/stream.mjpg?timeout=30").start()
    try:
        thread.join(3)
        # connected, headers read: next, a read that would block for 30 s
        assert wait_until(lambda: camera._source is not None, 5)
        grabber = next(t for t in threading.enumerate() if t.name == f"camera {camera.url}")
        camera.stop(timeout=10)          # gives up waiting for the thread after 10 s, a third of the read timeout
        assert not grabber.is_alive()    # so it ended because stop() woke its read
        assert not camera.running
    finally:
        for conn in accepted:
            conn.close()
        server.close()
