"""station.config's YAML (ruamel.yaml, the one YAML library): PyYAML's YAML 1.1 rules, lines, a dump that reads back."""

from __future__ import annotations

import datetime as dt

import pytest
from ruamel.yaml.error import YAMLError

from station.config import dump_yaml, load_yaml, yaml_with_lines


@pytest.mark.parametrize("text, value", [
    ("08938603001013", "08938603001013"),   # a GTIN with an 8 or 9 after its leading zero stays text
    ("0123", 83), ("1_000", 1000), ("0x1F", 31), ("1:30", 90),          # YAML 1.1 numbers
    ("yes", True), ("Off", False), ("y", "y"), ("N", "N"),               # PyYAML's booleans, not y/n
    ("1e3", "1e3"), ("1.5e+3", 1500.0), (".5", 0.5),                     # a float needs its dot
    ("~", None), ("2026-11-29", dt.date(2026, 11, 29)),
    ("2026-11-29 08:00:00+07:00", dt.datetime(2026, 11, 29, 8, tzinfo=dt.timezone(dt.timedelta(hours=7)))),
])
def test_scalars_as_pyyaml_read_them(text: str, value: object) -> None:
    loaded = load_yaml(f"key: {text}\n")["key"]
    assert loaded == value and type(loaded) is type(value)


def test_keys_and_items_keep_their_lines() -> None:
    data, lines = yaml_with_lines("# a roll\nroll: R1\ncodes:\n  - A\n  -   B\nsequence:\n  first: 1\n")
    assert data == {"roll": "R1", "codes": ["A", "B"], "sequence": {"first": 1}}
    assert type(data) is dict and type(data["codes"]) is list
    assert lines[("roll",)] == 2 and lines[("codes", 0)] == 4 and lines[("codes", 1)] == 5
    assert lines[("sequence", "first")] == 7


def test_a_duplicate_key_is_an_error_with_its_line() -> None:
    with pytest.raises(YAMLError) as caught:
        load_yaml("a: 1\nb: 2\na: 3\n")
    assert caught.value.problem_mark.line + 1 == 3   # type: ignore[attr-defined]


def test_a_dump_reads_back_the_same() -> None:
    data = {"shifts": ["06:00", "22:00"], "answer": "yes", "gtin": "08938603001013", "octal": "0123", "n": None,
            "name": "Mè xừng Thông Hương", "nested": {"list": [1, 2.5, True]}}
    text = dump_yaml(data)
    assert not text.startswith("%YAML") and "'22:00'" in text and "Mè xừng" in text
    assert load_yaml(text) == data
