"""The technician's label: the preview of the template as the printer prints it, and the test label."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.zebra.render import render_labels
from drivers.zebra.zpl import LabelTemplate
from station.domain import Batch, Product, Stamp, StampState
from station.line.stamp_events import label_fields
from station.errors import StationError
from station.gs1 import digital_link

if TYPE_CHECKING:
    from app.runtime import Station

PREVIEW_LOT, PREVIEW_SERIAL = "L000000", "PREVIEW000"


def fields_for_test_print() -> dict[str, str | None]:
    """A test label with no QR, so no scanner downstream can mistake it for a stamp."""
    today = dt.date.today().strftime("%d/%m/%Y")
    return {"qr": None, "product_name": "NHÃN IN THỬ / TEST LABEL", "producer": "Trạm đóng gói / packing station",
            "lot": "TEST", "serial": "TEST", "gtin": None, "gtin12": None, "production_date": today,
            "expiry_date": today}


def render_preview(template_path: Path, fields: Mapping[str, str | None],
                   fonts: Mapping[str, Path] | None = None) -> tuple[bytes, list[str]]:
    """The label as the printer prints it once the station has downloaded `fonts` (name on the printer → file):
    PNG bytes and the renderer's warnings, among them every text that would print a box."""
    zpl = LabelTemplate.load(template_path).render(fields)
    loaded = {name: Path(path).read_bytes() for name, path in (fonts or {}).items() if Path(path).is_file()}
    labels = render_labels(zpl, fonts=loaded)
    if not labels:
        raise StationError(f"{template_path}: the template prints no label")
    label = labels[0]
    return label.png(), list(label.warnings) + [f"unknown ZPL command {c}" for c in label.unknown_commands]


def preview_stamp_label(station: Station, template_path: Path, product: Product | None,
                        batch: Batch | None) -> tuple[bytes, list[str]]:
    """The template at `template_path` filled with a stamp of the product and batch chosen on the screen (the first
    product and a made-up batch when none is), with the configured fonts."""
    config = station.config
    p = product or station.products[0]
    b = batch or Batch(id=0, gtin=p.gtin, lot=PREVIEW_LOT, production_date=dt.date.today(),
                       expiry_date=dt.date.today() + dt.timedelta(days=p.shelf_life_days or 365))
    uri = digital_link(station.identity.resolver, p.gtin, b.lot, PREVIEW_SERIAL, b.expiry_date)
    stamp = Stamp(id=None, gtin=p.gtin, serial=PREVIEW_SERIAL, batch_id=b.id or 0, state=StampState.ALLOCATED, uri=uri)
    fonts = {name: config.resolve(font) for name, font in config.devices.printer.fonts.items()}
    return render_preview(template_path, label_fields(p, b, stamp), fonts)


def print_test_label(station: Station, actor: str) -> str:
    """Print the test label on the station's printer and write it to the audit log; the printer's URL."""
    station.printer.print_label(fields_for_test_print())
    station.store.audit(actor, "test_print", station.printer.url)
    return station.printer.url


__all__ = ["fields_for_test_print", "render_preview", "preview_stamp_label", "print_test_label"]
