"""GS1 Digital Links of our stamps, in every form a stamp or an event carries them (parsed by biip).

- printed: `https://{resolver}/01/{GTIN-14}/10/{lot}/21/{serial}?17=YYMMDD` (lot and expiry where the batch has them)
- without the lot: `https://{resolver}/01/{GTIN-14}/21/{serial}`
- the constrained EPC of EPCIS events: `https://id.gs1.org/01/{GTIN-14}/21/{serial}`
- a pre-printed roll's opaque provincial code: `https://{resolver}/tem/{code}` (code percent-encoded, one path
  segment; the station's `preprinted.opaque_epc`), its product in the event's `stn:gtin`, not in the link

Hosts compare case-insensitively (a QR in alphanumeric mode is upper case); a GTIN with a wrong check digit is
refused (biip parses it and only records `gtin_error`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI

from contracts.errors import InvalidLink

EPC_DOMAIN = "id.gs1.org"
# Query keys a Digital Link of ours may carry: the data attributes we print (17 expiry, 11 production date) and
# the resolver's own (linkType, GS1 Digital Link 1.2 section 8; lang, our page's language switch).
DATA_ATTRIBUTES = frozenset({"17", "11"})
_SAFE_SERIAL = re.compile(r"[0-9A-Z]{1,20}")
# The EPC as the station writes it for its own [0-9A-Z] serials: ingest reads one per event, so this form skips
# biip's full parse (the check digit is still checked); any other spelling goes through biip.
_PLAIN_EPC = re.compile(r"https://id\.gs1\.org/01/(\d{14})/21/([0-9A-Z]{1,20})")


OPAQUE_PATH = "/tem/"
OPAQUE_CODE_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class StampLink:
    """One stamp named by a Digital Link: GTIN-14 and serial always, lot and dates where the link has them."""

    gtin: str
    serial: str
    lot: str | None = None
    expiry: dt.date | None = None
    production_date: dt.date | None = None

    @property
    def epc(self) -> str:
        return epc_uri(self.gtin, self.serial)


def epc_uri(gtin: str, serial: str) -> str:
    """The constrained Digital Link EPCIS needs, `https://id.gs1.org/01/{GTIN-14}/21/{serial}`."""
    if _SAFE_SERIAL.fullmatch(serial):
        return f"https://{EPC_DOMAIN}/01/{gtin}/21/{serial}"
    return f"https://{EPC_DOMAIN}/01/{gtin}/21/{quote(serial, safe='')}"


def parse(uri: str, *, allowed_query: frozenset[str] = DATA_ATTRIBUTES) -> StampLink:
    """A stamp's Digital Link, any of our forms; InvalidLink with the reason for anything else.

    Query keys outside `allowed_query` are refused, so a typo never silently means something else.
    """
    text = uri.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidLink(f"not a Digital Link (expected https://host/01/…): {text[:200]!r}")
    if parts.fragment:
        raise InvalidLink("a Digital Link has no #fragment")
    if not parts.path.startswith("/01/"):
        raise InvalidLink(f"the path must start with /01/{{GTIN}}: {parts.path[:200]!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = [key for key, _ in query]
    unknown = sorted({key for key in keys if key not in allowed_query})
    if unknown:
        raise InvalidLink(f"unknown query parameter(s): {', '.join(unknown)}")
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidLink(f"query parameter(s) given twice: {', '.join(repeated)}")
    fast = _plain_link(parts.path, query)
    if fast is not None:
        return fast
    # biip reads the AIs; what it does not know (lang, linkType) is left for the caller, so only data goes in.
    data = "&".join(f"{key}={quote(value, safe='')}" for key, value in query if key in DATA_ATTRIBUTES)
    normalised = f"https://{parts.netloc.lower()}{parts.path}" + (f"?{data}" if data else "")
    try:
        link = GS1DigitalLinkURI.parse(normalised)
    except ParseError as exc:
        raise InvalidLink(f"not a valid GS1 Digital Link: {exc}") from exc
    elements = link.element_strings
    gtin_element = elements.get(ai="01")
    if gtin_element is None:
        raise InvalidLink("the Digital Link has no GTIN (/01/)")
    if gtin_element.gtin is None or gtin_element.gtin_error is not None:
        raise InvalidLink(f"GTIN {gtin_element.value}: {gtin_element.gtin_error or 'not a GTIN'}")
    other = sorted(e.ai.ai for e in elements if e.ai.ai not in ("01", "10", "21", "17", "11"))
    if other:
        raise InvalidLink(f"the Digital Link carries AI(s) our stamps never have: {', '.join(other)}")
    serial = elements.get(ai="21")
    if serial is None:
        raise InvalidLink("the Digital Link names no single stamp (no /21/{serial})")
    lot = elements.get(ai="10")
    expiry = elements.get(ai="17")
    production = elements.get(ai="11")
    return StampLink(
        gtin=gtin_element.gtin.as_gtin_14(),
        serial=serial.value,
        lot=lot.value if lot is not None else None,
        expiry=expiry.date if expiry is not None else None,
        production_date=production.date if production is not None else None,
    )


# The forms our stations print, in the characters they print: read here without biip's full parse (about 200 µs a
# link, a tenth of a trace page's CPU), with the same checks (check digit, dates by GS1's century rule, day 00 the
# month's last). Anything else, and anything this finds wrong, goes through biip, which words the reason.
_PLAIN_LINK = re.compile(r"/01/(\d{14})(?:/10/([0-9A-Za-z]{1,20}))?/21/([0-9A-Za-z]{1,20})")
_YYMMDD = re.compile(r"\d{6}")


def _plain_link(path: str, query: list[tuple[str, str]]) -> StampLink | None:
    match = _PLAIN_LINK.fullmatch(path)
    if match is None:
        return None
    gtin, lot, serial = match.groups()
    if str(gs1_standard_check_digit(gtin[:-1])) != gtin[-1]:
        return None
    dates: dict[str, dt.date] = {}
    for key, value in query:
        if not _YYMMDD.fullmatch(value):
            return None
        try:
            dates[key] = gs1_date(value)
        except ValueError:
            return None
    return StampLink(gtin=gtin, serial=serial, lot=lot, expiry=dates.get("17"), production_date=dates.get("11"))


def gs1_date(yymmdd: str, today: dt.date | None = None) -> dt.date:
    """A GS1 YYMMDD date (GS1 General Specifications 7.12: the year within 49 years past and 50 to come; day 00
    is the month's last day); ValueError if it is no date."""
    year = (today or dt.date.today()).year
    century = year - year % 100
    two_digit = int(yymmdd[:2])
    if 51 <= two_digit - (year - century) <= 99:
        century -= 100
    elif -99 <= two_digit - (year - century) <= -50:
        century += 100
    full, month, day = century + two_digit, int(yymmdd[2:4]), int(yymmdd[4:6])
    if day == 0:
        if not 1 <= month <= 12:
            raise ValueError(f"month {month}")
        day = calendar.monthrange(full, month)[1]
    return dt.date(full, month, day)


def parse_epc(epc: str) -> StampLink:
    """The constrained EPC of an event: `https://id.gs1.org/01/{GTIN-14}/21/{serial}`, no lot, no query."""
    plain = _PLAIN_EPC.fullmatch(epc)
    if plain is not None:
        gtin, serial = plain.groups()
        if str(gs1_standard_check_digit(gtin[:-1])) != gtin[-1]:
            raise InvalidLink(f"GTIN {gtin}: the check digit should be {gs1_standard_check_digit(gtin[:-1])}")
        return StampLink(gtin=gtin, serial=serial)
    parts = urlsplit(epc.strip())
    if parts.netloc.lower() != EPC_DOMAIN:
        raise InvalidLink(f"an EPC must be on {EPC_DOMAIN}: {epc[:200]!r}")
    if parts.query:
        raise InvalidLink("an EPC has no query")
    link = parse(epc, allowed_query=frozenset())
    if link.lot is not None:
        raise InvalidLink("an EPC carries no lot (/10/): the lot goes in ilmd")
    return link


def is_stamp_epc(epc: object) -> bool:
    if not isinstance(epc, str):
        return False
    try:
        parse_epc(epc)
    except InvalidLink:
        return False
    return True


def gtin_14(value: object) -> str:
    """A GTIN-8/12/13/14 as its GTIN-14, check digit checked; InvalidLink otherwise."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) not in (8, 12, 13, 14):
        raise InvalidLink(f"GTIN {str(value)[:40]!r}: 8, 12, 13 or 14 digits expected")
    gtin = value.zfill(14)
    if str(gs1_standard_check_digit(gtin[:-1])) != gtin[-1]:
        raise InvalidLink(f"GTIN {gtin}: the check digit should be {gs1_standard_check_digit(gtin[:-1])}")
    return gtin


@dataclass(frozen=True)
class OpaqueLink:
    """A pre-printed stamp named by its opaque code (`/tem/{code}` on any host): no GTIN, lot or date in the link;
    `epc` is the code under the resolver that was asked, for a code no station ever activated."""

    code: str
    resolver: str = "resolver"
    lot: None = None
    expiry: None = None

    @property
    def epc(self) -> str:
        return f"{self.resolver}{OPAQUE_PATH}{quote(self.code, safe='')}"


def opaque_code(segment: str) -> str:
    """The code of `/tem/{segment}`: one percent-encoded path segment, decoded; InvalidLink with the reason."""
    if not segment:
        raise InvalidLink("/tem/ names no code")
    if "/" in segment:
        raise InvalidLink(f"/tem/{{code}} is one path segment (a / in a code is written %2F): {segment[:200]!r}")
    try:
        code = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidLink(f"the code {segment[:200]!r} is not percent-encoded UTF-8") from None
    check_opaque_code(code)
    return code


def check_opaque_code(code: object) -> str:
    if not isinstance(code, str) or not code:
        raise InvalidLink("an opaque stamp code must be a non-empty text")
    if len(code) > OPAQUE_CODE_MAX:
        raise InvalidLink(f"the code {code[:40]!r}… is longer than {OPAQUE_CODE_MAX} characters")
    if _CONTROL.search(code):
        raise InvalidLink(f"the code {code[:200]!r} holds a control character")
    return code
