"""The operator's words cover every state the core can report (a state without one would break the list)."""

from __future__ import annotations

from station.domain import DeliveryState
from ui.operator_words import DELIVERY_WORDS


def test_every_delivery_state_has_a_word_rejected_too() -> None:
    assert set(DELIVERY_WORDS) == set(DeliveryState)
