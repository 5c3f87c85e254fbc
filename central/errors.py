"""The one exception root of the central service."""

from __future__ import annotations


class CentralError(Exception):
    """A fault of the central service that an operator can act on; the message says what."""
