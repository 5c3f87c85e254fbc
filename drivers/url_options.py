"""The options of a device URL (`scheme://target?name=value&…`), read the same way by every driver.

`UrlOptions(url, query, error=…, known=…)` parses strictly: a malformed query, an option given twice and an
option no one reads are errors naming the URL (Klipper's rule: a typo never silently does nothing). Each driver
passes its own exception class, so a bad URL is still a `UnsupportedUrl`, `BadLineIOUrl` or `CameraError`.

A yes/no option takes the words of YES_WORDS and NO_WORDS, in any case; the simulators' `on|off` control
commands read theirs with `yes_no` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

__all__ = ["NO_WORDS", "UrlOptions", "YES_WORDS", "host_and_port", "yes_no"]

YES_WORDS = ("1", "true", "yes", "on")
NO_WORDS = ("0", "false", "no", "off")


def yes_no(word: str) -> bool | None:
    """True for a yes word, False for a no word, None for anything else."""
    word = word.strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def host_and_port(url: str, *, expected: str, error: Callable[[str], Exception] = ValueError,
                  ) -> tuple[str, int, SplitResult]:
    """The host and port of a `scheme://host:port[?options]` URL, and its parts; `expected` shows the form."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise error(f"{url}: port must be a number 1-65535 (expected {expected})") from None
    if not parts.hostname:
        raise error(f"{url}: missing host (expected {expected})")
    if not port:
        raise error(f"{url}: missing port (expected {expected})")
    if parts.path not in ("", "/") or parts.fragment:
        raise error(f"{url}: unexpected path {parts.path!r} (expected {expected})")
    return parts.hostname, port, parts


class UrlOptions(Mapping[str, str]):
    """The options of one URL, checked; read them with `flag`, `number` and `choice` (or as a mapping).

    `known`: the options this driver reads; any other is an error, unless `foreign=True`, for a URL that is
    also someone else's (an IP camera's own `?action=stream`): then the other options are kept, untouched and in
    their order, in `foreign_query`, and only ours must be well formed. `shown` names the URL in messages
    (a password masked) when it differs from `url`.
    """

    def __init__(self, url: str, query: str, *, known: tuple[str, ...] | frozenset[str],
                 error: Callable[[str], Exception] = ValueError, foreign: bool = False,
                 shown: str | None = None) -> None:
        self.url = shown if shown is not None else url
        self._error = error
        self.known = tuple(sorted(known)) if isinstance(known, frozenset) else tuple(known)
        self._options: dict[str, str] = {}
        kept: list[str] = []
        for part in query.split("&") if query else ():
            key = unquote(part.partition("=")[0].replace("+", " "))
            if foreign and key not in self.known:
                kept.append(part)
                continue
            try:
                pairs = parse_qsl(part, keep_blank_values=True, strict_parsing=True)
            except ValueError:
                raise error(f"{self.url}: malformed options {query!r} (expected name=value&…)") from None
            for name, value in pairs:
                if name in self._options:
                    raise error(f"{self.url}: option {name} given twice")
                self._options[name] = value
        self.foreign_query = "&".join(kept)
        unknown = sorted(set(self._options) - set(self.known))
        if unknown:
            raise error(f"{self.url}: unknown option {', '.join(unknown)} (known: {', '.join(self.known)})")

    def __getitem__(self, key: str) -> str:
        return self._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def flag(self, key: str, default: bool = False) -> bool:
        """A yes/no option (YES_WORDS, NO_WORDS)."""
        if key not in self._options:
            return default
        value = yes_no(self._options[key])
        if value is None:
            raise self._error(f"{self.url}: {key} must be 1 or 0 (yes or no), got {self._options[key]!r}")
        return value

    def number(self, key: str, default: float, low: float, high: float = math.inf, unit: str = "a number", *,
               above: bool = False) -> float:
        """A number from `low` to `high` (`above`: more than `low`, not equal to it)."""
        if key not in self._options:
            return default
        try:
            value = float(self._options[key])
        except ValueError:
            value = math.nan
        if not ((low < value if above else low <= value) and value <= high):
            if high < math.inf:
                bounds = f"{'above' if above else 'from'} {low:g} {'and at most' if above else 'to'} {high:g}"
            else:
                bounds = f"{'above' if above else 'at least'} {low:g}"
            raise self._error(f"{self.url}: {key} must be {unit} {bounds}, got {self._options[key]!r}")
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...], *, fold_case: bool = True) -> str:
        """One of `allowed` (compared in lower case unless `fold_case=False`)."""
        if key not in self._options:
            return default
        value = self._options[key].lower() if fold_case else self._options[key]
        if value not in allowed:
            words = " or ".join(allowed) if len(allowed) == 2 else f"one of {', '.join(allowed)}"
            raise self._error(f"{self.url}: {key} must be {words}, got {self._options[key]!r}")
        return value
