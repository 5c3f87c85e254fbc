"""GTIN, lot and serial rules, and the stamp's Digital Link read back through biip."""

from __future__ import annotations

import datetime as dt
import random
import re

import biip
import pytest
from biip.gs1_digital_link_uris import GS1DigitalLinkURI

from station.errors import InvalidIdentifier
from station.gs1 import (
    CHARSET_82,
    ParsedLink,
    digital_link,
    epc_uri,
    normalize_gtin,
    parse_digital_link,
    validate_lot,
    validate_resolver,
    validate_serial,
)

# The demonstration products of ../shared/testdata/products.yaml (fictitious, prefix 893 = GS1 Vietnam).
DEMO_GTINS = ["08938603001013", "08938603002027", "08938603003031", "08938603004045", "08938603005059"]
RESOLVER = "tem.example.vn"
GTIN = "08938603001013"


# --- GTIN ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gtin", DEMO_GTINS)
def test_demo_gtins_are_valid_gtin14(gtin: str) -> None:
    assert normalize_gtin(gtin) == gtin


@pytest.mark.parametrize(
    ("given", "gtin14"),
    [
        ("8938603001013", "08938603001013"),      # GTIN-13 (EAN-13)
        ("036000291452", "00036000291452"),       # GTIN-12 (UPC-A)
        ("96385074", "00000096385074"),           # GTIN-8
        ("18938603001010", "18938603001010"),     # GTIN-14 with packaging indicator 1
        (" 8938603001013\r\n", "08938603001013"),  # as a scanner may hand it over
    ],
)
def test_gtin_8_12_13_14_become_gtin14(given: str, gtin14: str) -> None:
    assert normalize_gtin(given) == gtin14


def test_wrong_check_digit_is_refused_naming_the_right_one() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^GTIN 08938603001014: check digit should be 3$"):
        normalize_gtin("08938603001014")


def test_wrong_check_digit_in_gtin13() -> None:
    with pytest.raises(InvalidIdentifier, match="GTIN 8938603001019: check digit should be 3"):
        normalize_gtin("8938603001019")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "GTIN is empty"),
        ("089386030010131", "15 digits, a GTIN has 8, 12, 13 or 14"),
        ("1234567", "7 digits"),
        ("0893860300101O", "found 'O' at position 14"),
        ("08938-03001013", "found '-' at position 6"),
        ("０８９３８６０３００１０１３", "only digits are allowed"),  # full-width digits are not ASCII
        ("00000000000000", "all zeros"),
    ],
)
def test_malformed_gtin_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=re.escape(message)):
        normalize_gtin(text)


# --- lot (AI 10) ----------------------------------------------------------------------------------------------


def test_charset_82_is_exactly_the_gs1_list() -> None:
    assert len(CHARSET_82) == 82
    expected = set("!\"%&'()*+,-./:;<=>?_") | set("0123456789")
    expected |= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") | set("abcdefghijklmnopqrstuvwxyz")
    assert set(CHARSET_82) == expected


def test_every_charset_82_character_is_a_valid_lot() -> None:
    for char in CHARSET_82:
        assert validate_lot(char) == char
    assert validate_lot("L2026/11-A") == "L2026/11-A"


def test_lot_of_20_is_fine_21_is_not() -> None:
    assert validate_lot("A" * 20) == "A" * 20
    with pytest.raises(InvalidIdentifier, match="21 characters, at most 20"):
        validate_lot("A" * 21)


def test_empty_lot_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="lot is empty"):
        validate_lot("")


def test_space_in_lot_is_refused_with_position() -> None:
    with pytest.raises(InvalidIdentifier, match=r"a space is not allowed \(position 3\)"):
        validate_lot("L1 2")


@pytest.mark.parametrize("char", ["#", "$", "@", "[", "\\", "]", "^", "`", "{", "|", "}", "~", "Ô", "\t", "\n"])
def test_character_outside_charset_82_is_named_with_position(char: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_lot(f"LO{char}T")
    assert repr(char) in str(caught.value)
    assert "position 3" in str(caught.value)
    assert "character set 82" in str(caught.value)


# --- our serials ------------------------------------------------------------------------------------------------


def test_serial_rules() -> None:
    assert validate_serial("A1B2C3D4E5") == "A1B2C3D4E5"
    assert validate_serial("Z" * 20) == "Z" * 20
    with pytest.raises(InvalidIdentifier, match="serial is empty"):
        validate_serial("")
    with pytest.raises(InvalidIdentifier, match="21 characters, at most 20"):
        validate_serial("Z" * 21)
    with pytest.raises(InvalidIdentifier, match=r"'a' at position 2 is not one of 0-9 A-Z"):
        validate_serial("Aa")
    with pytest.raises(InvalidIdentifier, match=r"'/' at position 1"):
        validate_serial("/A")


# --- Digital Link -----------------------------------------------------------------------------------------------


def test_digital_link_exact_form() -> None:
    uri = digital_link(RESOLVER, "8938603001013", "L2026-11", "A1B2C3D4E5", dt.date(2027, 5, 31))
    assert uri == "https://tem.example.vn/01/08938603001013/10/L2026-11/21/A1B2C3D4E5?17=270531"


def test_qualifiers_are_10_then_21() -> None:
    uri = digital_link(RESOLVER, GTIN, "LOT1", "SER1", None)
    path = uri.split("?")[0]
    assert path.index("/10/LOT1") < path.index("/21/SER1")
    assert path.endswith("/01/08938603001013/10/LOT1/21/SER1")


def test_without_lot_or_expiry() -> None:
    assert digital_link(RESOLVER, GTIN, None, "SER1", None) == "https://tem.example.vn/01/08938603001013/21/SER1"
    assert parse_digital_link("https://tem.example.vn/01/08938603001013/21/SER1") == ParsedLink(
        GTIN, None, "SER1", None
    )


def test_expiry_is_in_the_query_as_yymmdd() -> None:
    uri = digital_link(RESOLVER, GTIN, "L1", "S1", dt.date(2026, 2, 28))
    assert uri.endswith("/21/S1?17=260228")


def test_reserved_characters_of_a_lot_are_percent_encoded() -> None:
    uri = digital_link(RESOLVER, GTIN, "A/B%C?D+E&F=G", "S1", None)
    assert "/10/A%2FB%25C%3FD%2BE%26F%3DG/21/S1" in uri
    assert parse_digital_link(uri).lot == "A/B%C?D+E&F=G"


def test_resolver_with_port_and_path() -> None:
    uri = digital_link("tem.example.vn:8443/dl/v1/", GTIN, "L1", "S1", None)
    assert uri == "https://tem.example.vn:8443/dl/v1/01/08938603001013/10/L1/21/S1"
    assert parse_digital_link(uri) == ParsedLink(GTIN, "L1", "S1", None)


@pytest.mark.parametrize("resolver", ["tem.example.vn", "localhost:8080", "10.0.0.5", "[::1]:8443/q", "a-b.vn/x_y"])
def test_good_resolvers(resolver: str) -> None:
    assert validate_resolver(resolver) == resolver
    assert parse_digital_link(digital_link(resolver, GTIN, "L", "S", None)).serial == "S"


@pytest.mark.parametrize(
    ("resolver", "message"),
    [
        ("https://tem.example.vn", "without a scheme"),
        ("", "empty"),
        (" tem.vn", "spaces"),
        ("tem.example.vn?x=1", "'?' is not allowed"),
        ("user@tem.vn", "'@' is not allowed"),
        ("tem_example.vn", "not a valid host name"),
        ("-tem.vn", "not a valid host name"),
        ("tem.vn:0", "port '0'"),
        ("tem.vn:99999", "port '99999'"),
        ("tem.vn:http", "port 'http'"),
        ("10.0.0", "not an IPv4 address"),
        ("tem.vn/01", "could be read as a GS1 key"),
        ("tem.vn/a%20b", "may only hold"),
        ("[::g]", "not an IPv6 address"),
    ],
)
def test_bad_resolvers_are_refused(resolver: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=re.escape(message)):
        digital_link(resolver, GTIN, "L1", "S1", None)


def test_digital_link_refuses_bad_parts() -> None:
    with pytest.raises(InvalidIdentifier, match="check digit should be 3"):
        digital_link(RESOLVER, "08938603001014", "L1", "S1", None)
    with pytest.raises(InvalidIdentifier, match="space"):
        digital_link(RESOLVER, GTIN, "L 1", "S1", None)
    with pytest.raises(InvalidIdentifier, match="0-9 A-Z"):
        digital_link(RESOLVER, GTIN, "L1", "s1", None)


def test_expiry_beyond_the_two_digit_year_window_is_refused() -> None:
    # GS1 reads YY within 49 years back and 50 ahead; 2090 would read back as 1990
    with pytest.raises(InvalidIdentifier, match="two-digit year"):
        digital_link(RESOLVER, GTIN, "L1", "S1", dt.date(dt.date.today().year + 60, 1, 1))


def _random_lot(rng: random.Random) -> str:
    length = rng.randint(1, 20)
    lot = [rng.choice(CHARSET_82) for _ in range(length)]
    # make sure the characters that need percent-encoding turn up often, not by luck
    for _ in range(rng.randint(0, min(3, length))):
        lot[rng.randrange(length)] = rng.choice("!\"%&'()*+,/:;<=>?")
    return "".join(lot)


def test_hundreds_of_random_links_read_back_through_biip() -> None:
    rng = random.Random(20261129)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for _ in range(600):
        gtin = rng.choice(DEMO_GTINS)
        lot = _random_lot(rng)
        serial = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        expiry = rng.choice([None, dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 3650))])
        uri = digital_link(RESOLVER, gtin, lot, serial, expiry)

        # straight through biip, not only through our own wrapper
        result = biip.parse(uri)
        assert result.gs1_digital_link_uri is not None, result.gs1_digital_link_uri_error
        elements = result.gs1_digital_link_uri.element_strings
        assert [e.ai.ai for e in elements][:3] == ["01", "10", "21"]
        gtin_element = elements.get(ai="01")
        assert gtin_element is not None and gtin_element.gtin_error is None
        assert gtin_element.gtin is not None and gtin_element.gtin.as_gtin_14() == gtin
        assert elements.get(ai="10").value == lot  # type: ignore[union-attr]
        assert elements.get(ai="21").value == serial  # type: ignore[union-attr]
        expiry_element = elements.get(ai="17")
        assert (expiry_element.date if expiry_element else None) == expiry

        assert parse_digital_link(uri) == ParsedLink(gtin, lot, serial, expiry)


# --- parsing what a scanner reads -------------------------------------------------------------------------------


def test_parse_refuses_a_wrong_check_digit_that_biip_lets_through() -> None:
    uri = "https://tem.example.vn/01/08938603001014/10/L1/21/S1"
    # the point of the check: biip parses this link and only notes the problem
    assert GS1DigitalLinkURI.parse(uri).element_strings.get(ai="01").gtin_error  # type: ignore[union-attr]
    with pytest.raises(InvalidIdentifier, match="GTIN 08938603001014: check digit should be 3"):
        parse_digital_link(uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://tem.example.vn/01/08938603001013/10/L1", "no serial"),
        ("https://tem.example.vn/00/189386030000000018", "no GTIN"),
        ("https://tem.example.vn/01/08938603001013/21/S1/10/L1", "not a GS1 Digital Link"),  # 21 before 10
        ("VN-TTH-000123", "not a GS1 Digital Link"),
        ("ftp://tem.example.vn/01/08938603001013/21/S1", "not a GS1 Digital Link"),
        ("https://tem.example.vn/01/08938603001013/10/A%20B/21/S1", "not a GS1 Digital Link"),  # space in lot
        ("https://tem.example.vn/01/08938603001013/21/S1?17=261345", "not a GS1 Digital Link"),  # month 13
    ],
)
def test_parse_refuses_incomplete_or_malformed_links(uri: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=re.escape(message)):
        parse_digital_link(uri)


def test_parse_takes_gtin13_in_the_path_and_expiry_day_00() -> None:
    parsed = parse_digital_link("https://tem.example.vn/01/8938603001013/21/S1?17=270200\r\n")
    assert parsed == ParsedLink(GTIN, None, "S1", dt.date(2027, 2, 28))  # day 00 = end of month


# --- EPC URI for EPCIS ------------------------------------------------------------------------------------------


def test_epc_uri_is_the_constrained_form() -> None:
    assert epc_uri("8938603001013", "A1B2C3D4E5") == "https://id.gs1.org/01/08938603001013/21/A1B2C3D4E5"


def test_epc_uri_has_no_lot_and_no_query() -> None:
    uri = epc_uri(GTIN, "S1")
    assert "/10/" not in uri and "?" not in uri


def test_epc_uri_takes_any_ai21_serial_percent_encoded() -> None:
    # a pre-printed roll may carry serials outside [0-9A-Z]
    uri = epc_uri(GTIN, "ab/1")
    assert uri == "https://id.gs1.org/01/08938603001013/21/ab%2F1"
    assert parse_digital_link(uri).serial == "ab/1"


def test_epc_uri_refuses_bad_parts() -> None:
    with pytest.raises(InvalidIdentifier, match="check digit"):
        epc_uri("08938603001014", "S1")
    with pytest.raises(InvalidIdentifier, match="space"):
        epc_uri(GTIN, "S 1")


def test_batch_template_builds_the_same_uri_as_a_full_build() -> None:
    import secrets

    from station.gs1 import DigitalLinkTemplate, digital_link

    for lot, expiry in (("MX2611A", dt.date(2027, 5, 28)), ("L/26%11+a", None), (None, dt.date(2026, 12, 31))):
        template = DigitalLinkTemplate("truyxuat.hue.example.vn", "08938603001013", lot, expiry)
        for _ in range(200):
            serial = "".join(secrets.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(10))
            assert template.uri(serial) == digital_link("truyxuat.hue.example.vn", "08938603001013", lot, serial,
                                                        expiry)
    with pytest.raises(InvalidIdentifier):
        template.uri("abc")


def test_epc_uri_fast_path_matches_biip() -> None:
    from station.gs1 import epc_uri, parse_digital_link

    for serial in ("A1B2C3D4E5", "0000000000", "ZZZZZZZZZZZZZZZZZZZZ"):
        uri = epc_uri("08938603001013", serial)
        assert uri == f"https://id.gs1.org/01/08938603001013/21/{serial}"
        parsed = parse_digital_link(uri)
        assert (parsed.gtin, parsed.serial, parsed.lot) == ("08938603001013", serial, None)
    assert epc_uri("08938603001013", "a/b") == "https://id.gs1.org/01/08938603001013/21/a%2Fb"


# -- a link's host is case-insensitive, its path is not (issue 9 #11) ------------------------------------------------

def test_link_key_ignores_the_case_of_scheme_host_and_percent_encodings_only() -> None:
    from station.gs1 import link_key

    printed = digital_link("truyxuat.hue.example.vn", "08938603001013", "A%b", "ABC123", None)
    assert printed == "https://truyxuat.hue.example.vn/01/08938603001013/10/A%25b/21/ABC123"
    for read in ("https://TRUYXUAT.HUE.EXAMPLE.VN/01/08938603001013/10/A%25b/21/ABC123",
                 "HTTPS://TruyXuat.Hue.Example.VN/01/08938603001013/10/A%25b/21/ABC123",
                 "https://truyxuat.hue.example.vn/01/08938603001013/10/A%25b/21/ABC123"):
        assert link_key(read) == link_key(printed) == printed
    # The path is case-sensitive: another lot, another serial.
    assert link_key(printed.replace("/10/A%25b/", "/10/A%25B/")) != link_key(printed)
    assert link_key(printed.replace("ABC123", "abc123")) != link_key(printed)
    # %2f and %2F are one character; a port and a query keep their text.
    assert link_key("https://H.vn:8443/tem/x%2fy?17=270528") == "https://h.vn:8443/tem/x%2Fy?17=270528"
    assert link_key("http://H.VN") == "http://h.vn"
    # Not a link: unchanged, whatever its case.
    assert link_key("HUE0001234") == "HUE0001234"
    assert link_key("urn:epc:id:sgtin:X") == "urn:epc:id:sgtin:X"


def test_a_link_read_with_its_host_in_capitals_parses_to_the_same_stamp() -> None:
    printed = digital_link("truyxuat.hue.example.vn", "08938603001013", "MX2611A", "ABC123", dt.date(2027, 5, 28))
    shouted = printed.replace("https://truyxuat.hue.example.vn", "HTTPS://TRUYXUAT.HUE.EXAMPLE.VN")
    assert parse_digital_link(shouted) == parse_digital_link(printed)
