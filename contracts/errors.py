"""The one exception root of the contracts package."""

from __future__ import annotations


class ContractError(ValueError):
    """Something does not follow a shared contract; the message says what and where."""


class InvalidTopic(ContractError):
    """An MQTT topic that is not one of ours."""


class InvalidDocument(ContractError):
    """An EPCIS document that fails the schema, the CBV vocabulary or our own rules."""


class InvalidLink(ContractError):
    """A GS1 Digital Link that does not name one of our stamps."""
