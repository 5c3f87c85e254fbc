"""Does a batch's label print whole? The stamp's QR in the template's QR area, and every text (product name,
producer, lot, serial) on the label in its font: checked for each batch before it is stored, and for the
configuration at start (a resolver or serial length that leaves no room for a lot is refused)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from drivers.zebra.fonts import TrueTypeMeasure
from drivers.zebra.zpl import GS1_MIN_MODULE_MM, LabelTemplate, TextOverflow
from station.batches import DEFAULT_LOT_LENGTH
from station.config import StationConfig
from station.domain import Product
from station.errors import ConfigError, LabelTextTooLong, LabelTextUnprintable, StampTooLarge
from station.gs1 import LOT_MAX_LENGTH, SERIAL_ALPHABET, DigitalLinkTemplate

log = logging.getLogger(__name__)


class LabelFit:
    """The label checks of one configuration: its template and fonts, resolver, serial length and products."""

    def __init__(self, config: StationConfig, template: LabelTemplate, measure: TrueTypeMeasure, resolver: str,
                 products: list[Product]) -> None:
        self.config = config
        self.template = template
        self.measure = measure
        self.resolver = resolver
        self.products = products

    #: The default lot (station.batches) is 7 characters: a configuration that leaves less room is refused at start.
    DEFAULT_LOT_LENGTH = DEFAULT_LOT_LENGTH

    def longest_link(self, gtin: str, lot: str | None, expiry: dt.date | None) -> str:
        """The longest Digital Link of a batch: its own lot and expiry query, a serial of line.serial_length
        (ours are [0-9A-Z], so every serial of the batch is as long and needs no percent-encoding)."""
        return DigitalLinkTemplate(self.resolver, gtin, lot, expiry).uri("Z" * self.config.line.serial_length)

    def check_qr(self, gtin: str, lot: str, expiry: dt.date | None) -> None:
        """StampTooLarge when the batch's longest link would not fit the template's QR area: it would run into the
        text and the EAN-13, and no scanner could read it."""
        field = self.template.qr_field
        if field is not None:
            self._check_qr(field, gtin, lot, expiry)

    def check_text(self, product: Product, lot: str, expiry: dt.date | None) -> None:
        """LabelTextUnprintable when a text has a letter its font lacks, LabelTextTooLong when the product name,
        producer, lot or serial would run off the label."""
        unprintable = self.unprintable_text(product)
        if unprintable is not None:
            raise unprintable
        overflow = self.text_overflows(product, lot, expiry)
        if overflow:
            raise self._text_too_long(overflow[0])

    def check_room(self) -> None:
        """At start: ConfigError when the template's QR, the resolver or line.serial_length leave a batch no room."""
        self._check_qr_room()
        self._check_text_room()

    def unprintable_text(self, product: Product) -> LabelTextUnprintable | None:
        """The first of the product's texts holding a letter the font of its field has no glyph for."""
        for field in self.template.text_fields:
            for name in field.names:
                text = {"product_name": product.name, "producer": product.producer}.get(name)
                missing = self.measure.missing(text, field.font) if text else None
                if missing:
                    return LabelTextUnprintable(
                        f"{name} {text!r} holds {' '.join(missing)}, which the label's font {field.font} has no glyph "
                        f"for (line {field.line} of {self.template.name}): they would print as boxes. Write "
                        "it with Vietnamese and Latin letters, or download a font that has them "
                        "(devices.printer.fonts).", field=name, text=text, missing=missing)
        return None

    def _check_qr(self, field: Any, gtin: str, lot: str, expiry: dt.date | None) -> None:
        link = self.longest_link(gtin, lot, expiry)
        fit = field.fit(link)
        if fit.fits:
            return
        needs = f"QR version {fit.version}" if fit.version else "more than any QR code holds"
        dpmm = self.config.devices.printer.dots_per_mm
        raise StampTooLarge(
            f"lot {lot!r} would make an unreadable stamp: its Digital Link is {fit.length} characters "
            f"(serials of {self.config.line.serial_length}"
            f"{', the expiry query' if expiry else ''}, percent-encoding included), which needs {needs}; the QR area "
            f"of {self.template.name} holds version {fit.max_version} at most at magnification "
            f"{field.magnification} ({field.module_mm(dpmm):.2f} mm modules, 4 quiet modules around), that is "
            f"{fit.max_length} characters. Choose a shorter lot, or one without characters written %XX in a URL "
            f"(/ % ? & + # … take 3 characters each).",
            lot=lot, length=fit.length, version=fit.version, max_version=fit.max_version, max_length=fit.max_length)

    def widest_serial(self) -> str:
        """A serial of line.serial_length made of the alphabet's widest character in the serial's font: every
        serial the batch can draw prints at most this wide."""
        field = next((f for f in self.template.text_fields if "serial" in f.names), None)
        if field is None:
            return "W" * self.config.line.serial_length
        widest = max(SERIAL_ALPHABET, key=lambda c: self.measure(c, field.font, field.height, field.width) or 0.0)
        return widest * self.config.line.serial_length

    def text_overflows(self, product: Product, lot: str, expiry: dt.date | None,
                       serial: str | None = None) -> list[TextOverflow]:
        """The label's text fields that would not print whole for this product and lot, with the widest serial
        (dates are written dd/mm/yyyy, every digit as wide in the fonts we ship)."""
        values = {
            "product_name": product.name, "producer": product.producer, "lot": lot,
            "serial": serial if serial is not None else self.widest_serial(),
            "production_date": dt.date(2000, 12, 28).strftime("%d/%m/%Y"),
            "expiry_date": expiry.strftime("%d/%m/%Y") if expiry else None,
            "gtin": product.gtin, "gtin12": None, "qr": None,
        }
        return self.template.text_overflows(values, self.measure)

    def _text_too_long(self, overflow: TextOverflow) -> LabelTextTooLong:
        template = self.template.name
        if overflow.unit == "lines":
            what = (f"wraps to {overflow.needs:.0f} lines, and its text block (line {overflow.field.line} of "
                    f"{template}) has {overflow.room:.0f}: a Zebra prints the rest on top of the last line")
        else:
            what = (f"prints {overflow.needs:.0f} dots wide and only {overflow.room:.0f} are left to the label's edge "
                    f"(^PW) from x={overflow.field.x} (line {overflow.field.line} of {template}): the end would not "
                    f"be printed")
        fix = {
            "lot": "Choose a shorter lot.",
            "serial": "Lower line.serial_length, or give the serial more room in the template.",
        }.get(overflow.names, "Shorten it in the product list (products.yaml), or give it more room in the template.")
        return LabelTextTooLong(f"{overflow.names} {overflow.text!r} {what}. {fix}", field=overflow.names,
                                text=overflow.text, needs=overflow.needs, room=overflow.room, unit=overflow.unit)

    def _check_text_room(self) -> None:
        """At start: the widest serial of line.serial_length prints whole with the default lot; a product whose
        name or producer would not is named in the log (its batches are refused with the reason)."""
        for product in self.products:
            unprintable = self.unprintable_text(product)
            if unprintable is not None:
                log.warning("product %s: %s", product.gtin, unprintable)
            for overflow in self.text_overflows(product, "L000000", None):
                error = self._text_too_long(overflow)
                if error.field == "serial":
                    raise ConfigError(f"{self.config.source}: line.serial_length ({self.config.line.serial_length}): "
                                      f"{error}")
                log.warning("product %s: %s", product.gtin, error)

    def max_lot_length(self) -> int:
        """The longest lot (of characters needing no encoding) whose stamps fit the QR area, with an expiry."""
        field = self.template.qr_field
        if field is None:
            return LOT_MAX_LENGTH
        gtin = self.products[0].gtin
        expiry = dt.date.today() + dt.timedelta(days=365)
        for length in range(LOT_MAX_LENGTH, 0, -1):
            if field.fit(self.longest_link(gtin, "A" * length, expiry)).fits:
                return length
        return 0

    def _check_qr_room(self) -> None:
        """At start: the template's QR is readable, declares its room, and the resolver and serial length leave
        room in it for a lot."""
        config, printer_cfg = self.config, self.config.devices.printer
        template, field = self.template, self.template.qr_field
        where = f"{config.source}: devices.printer.template ({template.name})"
        if field is None:
            return
        dpmm = printer_cfg.dots_per_mm
        if not field.readable(dpmm):
            smallest = -(-GS1_MIN_MODULE_MM * dpmm // 1)
            raise ConfigError(
                f"{where}: line {field.line}: ^BQ magnification {field.magnification} at {dpmm} dots/mm "
                f"(devices.printer.dots_per_mm) makes {field.module_mm(dpmm):.3f} mm modules; a QR code with a "
                f"Digital Link needs at least {GS1_MIN_MODULE_MM} mm: use magnification {smallest:.0f} or more")
        if field.area is None:
            raise ConfigError(
                f"{where}: declare the room the QR has with a line '^FX QR area x,y,width,height' (in dots, its "
                "quiet zone of 4 modules included), so that a batch whose QR would not fit is refused")
        longest = self.max_lot_length()
        if longest < self.DEFAULT_LOT_LENGTH:
            probe = self.longest_link(self.products[0].gtin, "A" * self.DEFAULT_LOT_LENGTH, dt.date.today())
            fit = field.fit(probe)
            room = f"lots of at most {longest} characters" if longest else "no lot at all"
            raise ConfigError(
                f"{config.source}: station.resolver ({self.resolver!r}, {len(self.resolver)} "
                f"characters) and line.serial_length ({config.line.serial_length}) leave {room} in the QR area of "
                f"devices.printer.template ({template.name}: version {fit.max_version} at magnification "
                f"{field.magnification}, {fit.max_length} characters); a Digital Link with the default lot "
                f"LYYMMDD is {fit.length}. Shorten station.resolver, lower line.serial_length, or give the QR "
                "more room in the template (^FX QR area)")
        log.info("label: lots of up to %d characters fit the QR area of %s", longest, template.name)


__all__ = ["LabelFit"]
