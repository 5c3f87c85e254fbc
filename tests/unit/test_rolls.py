"""Roll manifests (YAML and CSV) and the code shapes they may carry: good ones parse, broken ones are refused with
the file, the line and the problem, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import DEFAULT_CONFIG, load_config
from station.rolls import CodeRules, CodeShapeError, ManifestError, parse_manifest

RULES = CodeRules(digital_link=True, shapes=(("hue-provincial", "HUE[0-9]{7}"),))
MX, NM = "08938603001013", "08938603002027"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError) as info:
        parse_manifest(path, RULES, **kwargs)
    return info.value.problems


def test_the_shipped_example_manifests_parse_with_the_shipped_configuration() -> None:
    rules = CodeRules.from_config(load_config(DEFAULT_CONFIG).preprinted)
    folder = DEFAULT_CONFIG.parent / "rolls"
    seq = parse_manifest(folder / "example-sequence.yaml", rules)
    assert (seq.roll_id, seq.gtin, seq.kind, len(seq.codes)) == ("HUE-MX-2026-0001", MX, "sequence", 500)
    assert seq.codes[0].code == "HUE0000001" and seq.codes[-1].code == "HUE0000500" and seq.codes[-1].seq == 500
    dl = parse_manifest(folder / "example-digital-link.yaml", rules)
    assert dl.codes[0].code == "https://truyxuat.hue.example.vn/01/08938603002027/21/NM000001"
    assert (dl.codes[0].gtin, dl.codes[0].serial) == (NM, "NM000001")
    listed = parse_manifest(folder / "example-list.csv", rules)
    assert [c.code for c in listed.codes] == [f"HUE010000{i}" for i in range(1, 5)] and listed.kind == "list"
    assert len(listed.manifest_sha256) == 64


def test_a_yaml_list_keeps_roll_order_and_the_line_of_each_code(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", f'roll: R1\nproduct: "{MX}"\ncodes:\n  - HUE0000003\n  - HUE0000001\n'
                                     f'  - https://x.example/01/{MX}/10/L1/21/AB1\n')
    roll = parse_manifest(path, RULES)
    assert [(c.seq, c.code, c.line) for c in roll.codes][:2] == [(1, "HUE0000003", 4), (2, "HUE0000001", 5)]
    assert (roll.codes[2].gtin, roll.codes[2].serial) == (MX, "AB1")


def test_csv_with_wrong_columns_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "# printed by the partner\nroll,gtin,code\nR1,08938603001013,HUE0000001\n")
    problems = refused(path)
    assert problems == [f"{path}: line 2: wrong columns roll,gtin,code (missing product; unknown gtin): expected "
                        "roll,product,code and optionally seq"]


def test_csv_rows_that_break_the_roll_are_each_named(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "roll,product,code\n"
                                    f"R1,{MX},HUE0000001\n"
                                    f"R1,{MX},HUE0000001\n"          # duplicate inside the manifest
                                    f"R1,{MX}\n"                     # a cell missing
                                    f"R1,{MX},hue-1\n"               # not an accepted shape
                                    f"R2,{MX},HUE0000002\n")         # another roll in the same file
    problems = refused(path)
    assert f"{path}: line 4: 2 cells, the header has 3 (roll,product,code)" in problems
    assert f"{path}: line 6: roll 'R2' differs from roll 'R1' above: one roll per manifest" in problems
    path2 = write(tmp_path, "r2.csv", "roll,product,code\n"
                                      f"R1,{MX},HUE0000001\nR1,{MX},HUE0000001\nR1,{MX},hue-1\n")
    problems = refused(path2)
    assert problems[0] == f"{path2}: line 3: code 'HUE0000001' is also on line 2 (duplicate in the manifest)"
    assert problems[1].startswith(f"{path2}: line 4: code 'hue-1' matches none of the accepted shapes")


@pytest.mark.parametrize("pattern, expected", [
    ("HUE{n:07d", "bad pattern:"),
    ("HUE{m:07d}", "must hold exactly one {n}"),
    ("HUE{n:07d}{n}", "must hold exactly one {n}"),
    ("HUE{n:07q}", "bad pattern: Unknown format code 'q'"),
    ("HUE{n!r}", "conversions"),
    ("https://x.example/01/08938603001013/21/{serial}", "give the serial's own pattern"),
])
def test_a_bad_pattern_is_refused_naming_its_line(tmp_path: Path, pattern: str, expected: str) -> None:
    path = write(tmp_path, "r.yaml", f'roll: R1\nproduct: "{MX}"\nsequence:\n  first: 1\n  last: 5\n'
                                     f'  pattern: "{pattern}"\n')
    problems = refused(path)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: line 6: ") and expected in problems[0], problems


def test_a_pattern_whose_codes_match_no_shape_is_refused_once(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", f'roll: R1\nproduct: "{MX}"\nsequence:\n  pattern: "HUE{{n:05d}}"\n'
                                     "  first: 1\n  last: 900\n")
    assert refused(path) == [f"{path}: line 4: pattern gives 'HUE00001' for n=1, which is not accepted: code "
                             "'HUE00001' matches none of the accepted shapes: a GS1 Digital Link with /01/ and /21/, "
                             "hue-provincial (HUE[0-9]{7})"]


def test_yaml_keys_and_values_that_make_no_sense_are_each_named(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "roll: R1\nproduct: 8938603001013\nprodcut: x\nsequence:\n"
                                     "  pattern: HUE{n:07d}\n  first: 9\n  last: 3\n")
    problems = refused(path)
    assert f"{path}: line 2: product 8938603001013: quote the GTIN (\"0893…\") so its leading zero stays" in problems
    assert any(p.startswith(f"{path}: line 3: unknown key 'prodcut'") for p in problems)
    assert f"{path}: line 7: sequence.last 3 is before sequence.first 9" in problems


def test_a_digital_link_for_another_product_or_an_unknown_product_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", f'roll: R1\nproduct: "{MX}"\ncodes:\n  - https://x.example/01/{NM}/21/A1\n'
                                     f'  - https://x.example/01/{MX}/21/A1\n  - https://y.example/01/{MX}/21/A1\n')
    problems = refused(path, products=[MX, NM])
    assert problems == [
        f"{path}: line 4: code 'https://x.example/01/{NM}/21/A1' is a Digital Link for GTIN {NM}, not the roll's "
        f"product {MX}",
        f"{path}: line 6: code 'https://y.example/01/{MX}/21/A1': serial 'A1' is also on line 5 (duplicate in the "
        "manifest)"]
    other = write(tmp_path, "o.yaml", 'roll: R1\nproduct: "08938603003031"\ncodes: [HUE0000001]\n')
    assert refused(other, products=[MX]) == [f"{other}: line 2: product 08938603003031 is not in the product list"]


def test_a_manifest_of_an_unknown_type_or_too_many_codes_is_refused(tmp_path: Path) -> None:
    assert refused(write(tmp_path, "r.txt", "x")) == [f"{tmp_path / 'r.txt'}: unknown manifest type .txt: use "
                                                      ".yaml, .yml or .csv"]
    path = write(tmp_path, "r.yaml", f'roll: R1\nproduct: "{MX}"\nsequence: {{pattern: "HUE{{n:07d}}", first: 1, '
                                     'last: 1000}\n')
    assert refused(path, max_codes=100) == [f"{path}: 1000 codes: a roll holds at most 100 "
                                            "(preprinted.max_roll_codes)"]


def test_code_shapes_come_from_configuration() -> None:
    assert RULES.classify("HUE0000001").shape == "hue-provincial"
    assert RULES.classify(f"https://a.example/01/{MX}/21/X").gtin == MX
    with pytest.raises(CodeShapeError, match="check digit should be 3"):
        RULES.classify("https://a.example/01/08938603001014/21/X")
    with pytest.raises(CodeShapeError, match="not accepted"):
        CodeRules(digital_link=False).classify(f"https://a.example/01/{MX}/21/X")
    with pytest.raises(CodeShapeError, match="matches none"):
        RULES.classify("HUE000000")        # one digit short: the regex must match the whole code



def test_a_digital_link_is_registered_with_its_host_in_lower_case_and_once_whatever_its_case(tmp_path: Path) -> None:
    # A host is case-insensitive (the path is not): a roll printed in capitals (QR alphanumeric mode) registers the
    # codes the line looks up, and the same stamp in two letter cases is a duplicate.
    path = write(tmp_path, "r.yaml", f'roll: R1\nproduct: "{MX}"\ncodes:\n'
                                     f'  - HTTPS://TRUYXUAT.HUE.EXAMPLE.VN/01/{MX}/10/Lx/21/AB1\n')
    assert [c.code for c in parse_manifest(path, RULES).codes] == [
        f"https://truyxuat.hue.example.vn/01/{MX}/10/Lx/21/AB1"]
    twice = write(tmp_path, "twice.yaml", f'roll: R2\nproduct: "{MX}"\ncodes:\n'
                                          f'  - https://truyxuat.hue.example.vn/01/{MX}/21/AB2\n'
                                          f'  - https://TRUYXUAT.hue.example.vn/01/{MX}/21/AB2\n')
    assert refused(twice) == [f"{twice}: line 5: code 'https://TRUYXUAT.hue.example.vn/01/{MX}/21/AB2': serial "
                              "'AB2' is also on line 4 (duplicate in the manifest)"]
