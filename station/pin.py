"""The technician PIN: stored only as a salted scrypt hash, checked in constant time, with a lock-out after misses.

Format of a stored hash (what ``technician.pin_hash`` in the configuration holds):
``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``. No stored hash means the factory PIN ``0000`` until one is set.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from station.errors import StationError

DEFAULT_PIN = "0000"
# n=2**14, r=8: about 16 MiB and 30-60 ms on a PC, a few hundred ms on a Raspberry Pi 4: slow enough to make a
# stolen config file expensive to brute-force, quick enough for a login.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
PIN_MIN, PIN_MAX = 4, 8


class PinError(StationError):
    """A new PIN refused (not digits, too short or long), or a stored hash that cannot be read."""


def validate_new_pin(pin: str) -> str:
    """A PIN a technician may choose: 4 to 8 digits, not the factory PIN, not one digit repeated."""
    if not pin.isdigit() or not pin.isascii():
        raise PinError("the PIN must be digits only")
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        raise PinError(f"the PIN must have {PIN_MIN} to {PIN_MAX} digits")
    if pin == DEFAULT_PIN or len(set(pin)) == 1:
        raise PinError("choose a PIN that is not the factory PIN and not one digit repeated")
    return pin


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=length)


def hash_pin(pin: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P, salt: bytes | None = None) -> str:
    """The storable hash of a PIN, with a fresh random salt."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(pin, salt, n, r, p, HASH_BYTES)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str | None) -> bool:
    """Whether ``pin`` matches the stored hash (None: the factory PIN). Constant-time on the digest."""
    if stored is None:
        return hmac.compare_digest(pin.encode("utf-8"), DEFAULT_PIN.encode("utf-8"))
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            raise ValueError(f"unknown scheme {scheme!r}")
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        actual = _scrypt(pin, salt, int(n), int(r), int(p), len(expected))
    except ValueError as exc:
        raise PinError(f"the stored PIN hash cannot be read: {exc}") from None
    return hmac.compare_digest(actual, expected)


@dataclass
class PinGuard:
    """Counts misses and locks the login for a while after too many (so a PIN cannot be tried by hand at speed)."""

    max_failures: int = 5
    lockout_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    locked_until: float = 0.0

    def locked_for(self) -> float:
        """Seconds left before another attempt is allowed (0 when allowed)."""
        return max(0.0, self.locked_until - self.clock())

    def check(self, pin: str, stored: str | None) -> bool:
        """Verify unless locked out; a lock-out counts as a refusal without looking at the PIN."""
        if self.locked_for() > 0:
            return False
        if verify_pin(pin, stored):
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= self.max_failures:
            self.failures = 0
            self.locked_until = self.clock() + self.lockout_s
        return False
