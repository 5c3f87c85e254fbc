"""A new batch's defaults (station.batches) and the station's identity and trigger as the lines take them."""

from __future__ import annotations

import datetime as dt

from app.runtime import station_identity
from station.batches import DEFAULT_LOT_LENGTH, default_lot, expiry_from_shelf_life
from station.config import DEFAULT_CONFIG, StationConfig, load_config
from station.domain import Product
from station.engine import TriggerMode

PRODUCT = Product(gtin="08938603002027", name="Mè xửng", producer="Cơ sở Song Hỷ", shelf_life_days=180)


def test_the_default_lot_is_the_days() -> None:
    assert default_lot(dt.date(2026, 12, 3)) == "L261203"
    assert len(default_lot(dt.date(2026, 1, 1))) == DEFAULT_LOT_LENGTH


def test_the_expiry_comes_from_the_shelf_life() -> None:
    assert expiry_from_shelf_life(PRODUCT, dt.date(2026, 12, 3)) == dt.date(2027, 6, 1)
    assert expiry_from_shelf_life(Product(gtin=PRODUCT.gtin, name="x", producer="y"), dt.date(2026, 12, 3)) is None


def test_the_configured_identity_is_the_lines() -> None:
    config = load_config(DEFAULT_CONFIG)
    identity = station_identity(config)
    assert (identity.site, identity.station, identity.resolver) == (config.station.site, config.station.id,
                                                                    config.station.resolver)
    assert identity.read_point == config.station.read_point_id and identity.tz_offset == config.station.timezone_offset


def test_the_configured_trigger_is_the_engines() -> None:
    # One enum: app.runtime hands the configuration's trigger to the engine as it is.
    assert StationConfig.model_fields["line"].annotation.model_fields["trigger"].annotation is TriggerMode
