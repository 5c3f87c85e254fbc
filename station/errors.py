"""Exception root of the station's domain layer."""


class StationError(Exception):
    """Root of every error the domain layer raises on purpose."""


class InvalidIdentifier(StationError):
    """A GTIN, lot or serial that breaks the GS1 rules; the message says which rule."""


class InvalidTransition(StationError):
    """A stamp asked to move to a state its current state does not allow."""


class ConfigError(StationError):
    """A configuration file or variable that cannot be used; the message names the file and the key."""


class DuplicateSerial(StationError):
    """A serial that already exists for the GTIN (serials are unique per GTIN for ever)."""


class EpcisInvalid(StationError):
    """An EPCIS document that does not validate against the EPCIS 2.0 JSON schema."""


class LabelDoesNotFit(InvalidIdentifier):
    """A batch whose stamps would not print whole on the label: refused before any stamp is wasted."""


class StampTooLarge(LabelDoesNotFit):
    """A batch whose stamps' Digital Link would not fit the label's QR area at a readable module size."""

    def __init__(self, message: str, *, lot: str, length: int, version: int | None, max_version: int,
                 max_length: int) -> None:
        super().__init__(message)
        self.lot = lot
        self.length = length
        self.version = version
        self.max_version = max_version
        self.max_length = max_length


class LabelTextTooLong(LabelDoesNotFit):
    """A batch whose product name, producer, lot or serial would run past the label's edge, or need more lines
    than its text block has (a Zebra prints the rest on top of the last line)."""

    def __init__(self, message: str, *, field: str, text: str, needs: float, room: float, unit: str) -> None:
        super().__init__(message)
        self.field = field          # the template's placeholder names, e.g. "lot"
        self.text = text            # the text as it would print
        self.needs = needs
        self.room = room
        self.unit = unit            # "dots" or "lines"


class LabelTextUnprintable(LabelDoesNotFit):
    """A batch whose product name or producer holds letters the label's font has no glyph for: they would print as
    boxes."""

    def __init__(self, message: str, *, field: str, text: str, missing: str) -> None:
        super().__init__(message)
        self.field = field
        self.text = text
        self.missing = missing      # the characters the font lacks, each once
