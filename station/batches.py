"""What a new batch gets when the operator or the command line leaves it out: its lot and its expiry date."""

from __future__ import annotations

import datetime as dt

from station.domain import Product

#: A batch opened without a lot gets the day's: L + yymmdd (7 characters), e.g. L261203.
DEFAULT_LOT_FORMAT = "L%y%m%d"
DEFAULT_LOT_LENGTH = 7


def default_lot(day: dt.date) -> str:
    """The lot of a batch opened on `day` without one."""
    return day.strftime(DEFAULT_LOT_FORMAT)


def expiry_from_shelf_life(product: Product, produced: dt.date) -> dt.date | None:
    """The expiry of a batch of `product` produced on `produced`: its shelf life later; None without a shelf life
    (the expiry is then typed, or the stamps carry none)."""
    if not product.shelf_life_days:
        return None
    return produced + dt.timedelta(days=product.shelf_life_days)


__all__ = ["DEFAULT_LOT_FORMAT", "DEFAULT_LOT_LENGTH", "default_lot", "expiry_from_shelf_life"]
