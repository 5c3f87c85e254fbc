"""Serial candidates: alphabet, length, uniqueness over many draws, and no pattern between neighbours."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter

import pytest

from station.gs1 import validate_serial
from station.serials import MIN_LENGTH, SerialGenerator

DRAWS = 100_000


@pytest.fixture(scope="module")
def draws() -> list[str]:
    generator = SerialGenerator()
    return [generator.next() for _ in range(DRAWS)]


def test_defaults() -> None:
    generator = SerialGenerator()
    assert generator.length == 10
    assert generator.alphabet == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert generator.entropy_bits == pytest.approx(51.7, abs=0.1)  # 36^10 ≈ 3.7e15


def test_every_serial_is_ten_of_0_9_a_z_and_a_valid_serial(draws: list[str]) -> None:
    pattern = re.compile(r"[0-9A-Z]{10}")
    for serial in draws:
        assert pattern.fullmatch(serial), serial
    validate_serial(draws[0])


def test_no_duplicates_in_100000_draws(draws: list[str]) -> None:
    # 100,000^2 / (2 * 36^10) ≈ 1.4e-6 expected collisions: a duplicate here means a broken generator
    assert len(set(draws)) == DRAWS


def test_neighbours_differ_in_most_positions(draws: list[str]) -> None:
    # independent uniform characters differ from the previous serial's in 35/36 of positions: ≈ 9.72 of 10.
    # A counter, or a counter run through a weak mix, would sit far lower.
    distances = [sum(a != b for a, b in zip(x, y, strict=True)) for x, y in itertools.pairwise(draws)]
    assert sum(distances) / len(distances) > 9.5
    # and no two neighbours share a long common prefix, as sequential serials would
    assert max(_common_prefix(x, y) for x, y in itertools.pairwise(draws)) < 6


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def test_every_character_is_used_evenly(draws: list[str]) -> None:
    counts = Counter("".join(draws))
    assert set(counts) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    expected = DRAWS * 10 / 36  # ≈ 27,778 each; the standard deviation is about 164
    for char, count in counts.items():
        assert abs(count - expected) < 0.05 * expected, (char, count)


def test_not_reproducible_from_the_random_module_seed() -> None:
    # serials come from secrets (the OS's CSPRNG): seeding `random` must not make them repeat
    generator = SerialGenerator()
    random.seed(1)
    first = [generator.next() for _ in range(5)]
    random.seed(1)
    second = [generator.next() for _ in range(5)]
    assert first != second


def test_minimum_length_for_0_9_a_z_is_10() -> None:
    assert MIN_LENGTH == 10
    SerialGenerator(length=MIN_LENGTH)


def test_custom_length_and_alphabet() -> None:
    assert len(SerialGenerator(length=20).next()) == 20
    no_lookalikes = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # without 0 O 1 I
    generator = SerialGenerator(length=11, alphabet=no_lookalikes)
    for _ in range(1000):
        serial = generator.next()
        assert len(serial) == 11 and set(serial) <= set(no_lookalikes)
    assert len(SerialGenerator(length=16, alphabet="0123456789").next()) == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 9}, "46.5 bits; at least 50 are needed (length 10 or more)"),
        ({"length": 0}, "must be 1 to 20"),
        ({"length": 21}, "must be 1 to 20"),
        ({"length": 15, "alphabet": "0123456789"}, "length 16 or more"),
        ({"alphabet": ""}, "empty"),
        ({"alphabet": "A"}, "at least 2"),
        ({"alphabet": "0123456789abcdef"}, "only use 0-9 A-Z"),
        ({"alphabet": "0123456789ABCDEFA"}, "repeats 'A'"),
    ],
)
def test_bounds_are_enforced(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SerialGenerator(**kwargs)  # type: ignore[arg-type]
