"""drivers.url_options: one parser for the `?name=value` options of every device URL, one set of yes/no words."""

from __future__ import annotations

import re

import pytest

from drivers.camera import CameraError, _parse
from drivers.hid import HidTransport
from drivers.lineio import BadLineIOUrl, open_lineio
from drivers.transport import SerialTransport, UnsupportedUrl
from drivers.url_options import NO_WORDS, YES_WORDS, UrlOptions, host_and_port, yes_no


def test_the_yes_no_words() -> None:
    assert [yes_no(w) for w in YES_WORDS + ("YES", " On ")] == [True] * 6
    assert [yes_no(w) for w in NO_WORDS + ("Off",)] == [False] * 5
    assert yes_no("") is None and yes_no("2") is None


@pytest.mark.parametrize("query, message", [
    ("a=1&a=2", "option a given twice"),
    ("a=1&b", "malformed options 'a=1&b'"),
    ("a=1&zz=1", r"unknown option zz \(known: a, b\)"),
    ("b=maybe", "b must be 1 or 0 \\(yes or no\\), got 'maybe'"),
])
def test_bad_options_name_the_url(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^x://y: {message}"):
        UrlOptions("x://y", query, known=("a", "b")).flag("b")


def test_numbers_and_choices() -> None:
    options = UrlOptions("x://", "n=2.5&c=Low", known=("n", "c", "m"))
    assert options.number("n", 1, 0, 3, "seconds") == 2.5 and options.number("m", 7, 0) == 7
    assert options.choice("c", "high", ("high", "low")) == "low"
    with pytest.raises(ValueError, match="n must be seconds from 3 to 4, got '2.5'"):
        options.number("n", 1, 3, 4, "seconds")
    with pytest.raises(ValueError, match="n must be seconds above 2.5 and at most 4"):
        options.number("n", 1, 2.5, 4, "seconds", above=True)
    with pytest.raises(ValueError, match="c must be one of L, M, H, got 'Low'"):
        options.choice("c", "M", ("L", "M", "H"), fold_case=False)


def test_foreign_options_stay_as_they_were_written() -> None:
    options = UrlOptions("http://cam/v", "action=stream&gray=1&x=%20a+b&flag", known=("gray",), foreign=True)
    assert dict(options) == {"gray": "1"} and options.foreign_query == "action=stream&x=%20a+b&flag"


def test_every_driver_takes_the_same_words() -> None:
    assert HidTransport("hid:///dev/input/event3?grab=off").grab is False
    assert SerialTransport("serial:///dev/ttyUSB0?xonxoff=yes&rtscts=on").settings["rtscts"] is True
    assert _parse("camera://0?gray=no").options.flag("gray", True) is False
    assert open_lineio("gpio://?trigger=GPIO17&pull=no").pull is False   # type: ignore[attr-defined]
    with pytest.raises(UnsupportedUrl, match="grab must be 1 or 0"):
        HidTransport("hid:///dev/input/event3?grab=maybe")
    with pytest.raises(BadLineIOUrl, match="pull must be 1 or 0"):
        open_lineio("gpio://?trigger=GPIO17&pull=weak")
    with pytest.raises(CameraError, match="unknown option 'action=stream' with backend=ffmpeg"):
        _parse("http://cam/v?action=stream&backend=ffmpeg")


def test_a_pyserial_url_keeps_its_own_options() -> None:
    port = SerialTransport("serial://rfc2217://host:2217?timeout=1&baud=19200")
    assert port.port_name == "rfc2217://host:2217?timeout=1" and port.settings["baudrate"] == 19200


@pytest.mark.parametrize("url, message", [
    ("lineio+tcp://conveyor", "missing port (expected lineio+tcp://host:port)"),
    ("lineio+tcp://:9104", "missing host"),
    ("lineio+tcp://conveyor:port", "port must be a number 1-65535"),
    ("lineio+tcp://conveyor:9104/io", "unexpected path '/io'"),
])
def test_host_and_port_the_same_for_tcp_transports_and_line_io(url: str, message: str) -> None:
    from drivers.transport import TcpTransport
    with pytest.raises(BadLineIOUrl, match=re.escape(message)):
        open_lineio(url)
    with pytest.raises(UnsupportedUrl, match=re.escape(message.replace("lineio+tcp://host:port", "tcp://host:9100"))):
        TcpTransport(url.replace("lineio+tcp", "tcp"))
    assert host_and_port("tcp://[::1]:9100", expected="tcp://host:9100")[:2] == ("::1", 9100)
