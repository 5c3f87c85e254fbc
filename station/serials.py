"""Serial candidates for stamps: random, unguessable from a neighbour, drawn from a cryptographic source."""

from __future__ import annotations

import math
import secrets

from station.gs1 import SERIAL_ALPHABET, SERIAL_MAX_LENGTH

__all__ = ["DEFAULT_LENGTH", "MIN_ENTROPY_BITS", "MIN_LENGTH", "SerialGenerator"]

DEFAULT_LENGTH = 10

# Why 10 characters of [0-9A-Z] and not fewer.
#
# Space: 36^10 ≈ 3.7e15 (51.7 bits). Collisions (birthday bound): drawing n serials for one GTIN gives about
# n^2 / (2 * 36^L) expected collisions. The plan is 100,000 stamps a year over 5 producers, growing; take a
# generous 10 million stamps for one GTIN over its whole life:
#   L = 10: (1e7)^2 / (2 * 3.7e15) ≈ 0.014 collisions in that lifetime;
#   L =  8: (1e7)^2 / (2 * 2.8e12) ≈ 18.
# A collision is not a disaster (the database refuses the duplicate and the line draws again), but it should be
# rare. Guessing matters more: someone forging stamps who tries random serials against the resolver, with a
# million live serials, hits one in 3.7e15 / 1e6 ≈ 3.7e9 tries at L = 10, but one in 2.8e6 at L = 8.
# So the floor is expressed in bits, 50, which [0-9A-Z] reaches at 10 characters (36^9 is only 46.5 bits) and
# a digits-only alphabet only at 16.
MIN_ENTROPY_BITS = 50.0
MIN_LENGTH = math.ceil(MIN_ENTROPY_BITS / math.log2(len(SERIAL_ALPHABET)))  # 10 with [0-9A-Z]


class SerialGenerator:
    """Draws serial candidates; uniqueness per GTIN for ever is the database's job, not this class's."""

    def __init__(self, length: int = DEFAULT_LENGTH, alphabet: str = SERIAL_ALPHABET) -> None:
        if not alphabet:
            raise ValueError("serial alphabet is empty")
        if len(set(alphabet)) != len(alphabet):
            duplicates = sorted({c for c in alphabet if alphabet.count(c) > 1})
            # a repeated character would make some serials likelier than others
            raise ValueError(f"serial alphabet repeats {''.join(duplicates)!r}")
        outside = sorted(set(alphabet) - set(SERIAL_ALPHABET))
        if outside:
            raise ValueError(f"serial alphabet may only use 0-9 A-Z, not {''.join(outside)!r}")
        if len(alphabet) < 2:
            raise ValueError("serial alphabet needs at least 2 characters")
        if not 1 <= length <= SERIAL_MAX_LENGTH:
            raise ValueError(f"serial length {length}: must be 1 to {SERIAL_MAX_LENGTH} (GS1 AI 21 is X..20)")
        bits = length * math.log2(len(alphabet))
        if bits < MIN_ENTROPY_BITS:
            needed = math.ceil(MIN_ENTROPY_BITS / math.log2(len(alphabet)))
            raise ValueError(
                f"serial length {length} over {len(alphabet)} characters gives {bits:.1f} bits; "
                f"at least {MIN_ENTROPY_BITS:.0f} are needed (length {needed} or more)"
            )
        self._length = length
        self._alphabet = alphabet

    @property
    def length(self) -> int:
        return self._length

    @property
    def alphabet(self) -> str:
        return self._alphabet

    @property
    def entropy_bits(self) -> float:
        """Bits of randomness in one serial: how hard it is to guess."""
        return self._length * math.log2(len(self._alphabet))

    def next(self) -> str:
        """A fresh random candidate; each character independent and uniform (secrets, not random)."""
        choice = secrets.choice
        alphabet = self._alphabet
        return "".join(choice(alphabet) for _ in range(self._length))

    def __repr__(self) -> str:
        return f"SerialGenerator(length={self._length}, alphabet={self._alphabet!r})"
