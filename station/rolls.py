"""Rolls of pre-printed stamps: the manifest a roll is registered from, the code shapes it may carry, and the
reconciliation report a producer hands to the programme.

A manifest is YAML (one roll: its identity, product, and either a list of codes or a numbered sequence built from
a pattern) or CSV (one roll as rows of ``roll,product,code``, optional ``seq``). Every problem is reported with the
file and the line, all of them at once, and nothing is registered from a refused manifest.

About 630 lines in one module: a manifest's parsing (YAML with line numbers, CSV, ranges) and the roll's
reconciliation report speak of the same codes, shapes and gaps, and each is tested against the other.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
import io
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.error import YAMLError

from station.config import yaml_with_lines
from station.domain import Batch, CodeState
from station.errors import InvalidIdentifier, StationError
from station.gs1 import link_key, normalize_gtin, parse_digital_link
from station.store import NewRoll, NewRollCode, Refusal, RollCode, RollInfo, Store

__all__ = [
    "CodeRules", "ClassifiedCode", "CodeShapeError", "ManifestError", "parse_manifest", "RollReport", "Gap",
    "reconcile", "write_report", "ROLL_ID_RE", "MAX_CODE_LENGTH",
]

ROLL_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,60}")
MAX_CODE_LENGTH = 300
MAX_ERRORS = 20
CSV_COLUMNS = ("roll", "product", "code")
CSV_OPTIONAL = ("seq",)
YAML_KEYS = {"version", "roll", "product", "issuer", "note", "codes", "sequence"}
SEQUENCE_KEYS = {"pattern", "serial", "first", "last"}


class ManifestError(StationError):
    """A roll manifest that cannot be registered; ``problems`` holds one "file: line N: problem" per entry."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:MAX_ERRORS])
        if len(problems) > MAX_ERRORS:
            shown.append(f"… and {len(problems) - MAX_ERRORS} more problems")
        super().__init__("\n".join(shown))
        self.problems = list(problems)


class CodeShapeError(StationError):
    """A code that is neither an accepted Digital Link nor one of the configured opaque shapes."""


@dataclass(frozen=True)
class ClassifiedCode:
    code: str
    shape: str                    # "digital_link" or the name of a configured opaque shape
    gtin: str | None = None       # a Digital Link's GTIN-14 and serial
    serial: str | None = None

    @property
    def is_digital_link(self) -> bool:
        return self.gtin is not None


def looks_like_link(text: str) -> bool:
    return text[:8].lower().startswith(("https://", "http://"))


@dataclass(frozen=True)
class CodeRules:
    """The code shapes a roll may carry: GS1 Digital Links (through biip) and opaque shapes from configuration."""

    digital_link: bool = True
    shapes: tuple[tuple[str, str], ...] = ()      # (name, regex)
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple((n, re.compile(r)) for n, r in self.shapes))

    @classmethod
    def from_config(cls, cfg: Any) -> CodeRules:
        """From a ``station.config.PreprintedConfig``."""
        return cls(digital_link=cfg.digital_link, shapes=tuple((s.name, s.regex) for s in cfg.code_shapes))

    def describe(self) -> str:
        kinds = (["a GS1 Digital Link with /01/ and /21/"] if self.digital_link else []) + \
                [f"{name} ({regex})" for name, regex in self.shapes]
        return ", ".join(kinds) or "nothing (no shape is configured in preprinted)"

    def classify(self, code: str) -> ClassifiedCode:
        """What kind of code this is; CodeShapeError says why it is none of the accepted ones."""
        if not code:
            raise CodeShapeError("empty code")
        if len(code) > MAX_CODE_LENGTH:
            raise CodeShapeError(f"code of {len(code)} characters (at most {MAX_CODE_LENGTH})")
        bad = next((c for c in code if c.isspace() or not c.isprintable()), None)
        if bad is not None:
            raise CodeShapeError(f"code {code!r} holds the character {bad!r} (spaces and control characters are "
                                 "not allowed)")
        if looks_like_link(code):
            if not self.digital_link:
                raise CodeShapeError(f"code {code!r} is a link, and Digital Links are not accepted "
                                     "(preprinted.digital_link is false)")
            try:
                parsed = parse_digital_link(code)
            except InvalidIdentifier as exc:
                raise CodeShapeError(str(exc)) from None
            return ClassifiedCode(code, "digital_link", parsed.gtin, parsed.serial)
        for name, regex in self._compiled:
            if regex.fullmatch(code):
                return ClassifiedCode(code, name)
        raise CodeShapeError(f"code {code!r} matches none of the accepted shapes: {self.describe()}")


# -- manifests -----------------------------------------------------------------------------------------------------

@dataclass
class _Draft:
    """A manifest as read, before the code checks: shared by the YAML and CSV readers."""

    path: str
    roll_id: str | None = None
    roll_line: int = 0
    product: str | None = None
    product_line: int = 0
    issuer: str = ""
    kind: str = "list"
    codes: list[tuple[int, int, str]] = field(default_factory=list)      # (seq, line, code)
    pattern: str | None = None
    first: int | None = None
    last: int | None = None
    problems: list[str] = field(default_factory=list)

    def problem(self, line: int | None, text: str) -> None:
        self.problems.append(f"{self.path}: line {line}: {text}" if line else f"{self.path}: {text}")


def _expand_pattern(pattern: str, serial: str | None) -> tuple[str, str | None]:
    """Check a sequence pattern; return (pattern, serial pattern). ValueError says what is wrong."""
    fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(pattern) if name is not None]
    names = [name for name, _, _ in fields]
    if names.count("serial") == 1 and len(names) == 1:
        if serial is None:
            raise ValueError(f"pattern {pattern!r} has {{serial}}: give the serial's own pattern in 'serial', "
                             "e.g. serial: \"MX{n:06d}\"")
        inner = [(n, c) for _, n, _, c in string.Formatter().parse(serial) if n is not None]
        if [n for n, _ in inner] != ["n"] or any(c for _, c in inner):
            raise ValueError(f"serial pattern {serial!r} must hold exactly one {{n}} (with an optional format "
                             "such as {n:06d})")
        return pattern, serial
    if names != ["n"]:
        found = ", ".join("{" + (n or "") + "}" for n in names) or "no placeholder"
        raise ValueError(f"pattern {pattern!r} must hold exactly one {{n}} (e.g. HUE{{n:07d}}) or one {{serial}}; "
                         f"found {found}")
    if fields[0][2]:
        raise ValueError(f"pattern {pattern!r}: conversions like !r are not allowed")
    if serial is not None:
        raise ValueError("'serial' is only for a pattern with {serial}")
    return pattern, None


def _make_code(pattern: str, serial: str | None, n: int) -> str:
    if serial is not None:
        return pattern.replace("{serial}", serial.format(n=n))
    return pattern.format(n=n)


def _read_yaml(path: Path, text: str, draft: _Draft) -> None:
    try:
        data, lines = yaml_with_lines(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        draft.problem(mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
        return
    if not isinstance(data, dict):
        draft.problem(1, "the manifest must be a mapping with roll, product and codes or sequence")
        return
    for key in data:
        if key not in YAML_KEYS:
            draft.problem(lines.get((key,)), f"unknown key {key!r} (expected {', '.join(sorted(YAML_KEYS))})")
    if data.get("version", 1) != 1:
        draft.problem(lines.get(("version",)), f"version {data.get('version')!r}: only version 1 is known")
    roll = data.get("roll")
    draft.roll_line = lines.get(("roll",), 0)
    draft.roll_id = None if roll is None else str(roll)
    product = data.get("product")
    draft.product_line = lines.get(("product",), 0)
    draft.product = None if product is None else str(product)
    if isinstance(product, int):
        draft.problem(draft.product_line, f"product {product}: quote the GTIN (\"0893…\") so its leading zero stays")
    draft.issuer = str(data.get("issuer") or "")
    codes, sequence = data.get("codes"), data.get("sequence")
    if (codes is None) == (sequence is None):
        draft.problem(None, "give either 'codes' (a list) or 'sequence' (pattern, first, last), not "
                            + ("both" if codes is not None else "neither"))
        return
    if codes is not None:
        if not isinstance(codes, list) or not codes:
            draft.problem(lines.get(("codes",)), "'codes' must be a non-empty list of codes")
            return
        for i, code in enumerate(codes):
            line = lines.get(("codes", i), 0)
            if not isinstance(code, str):
                draft.problem(line, f"code {code!r} is not text (quote it)")
                continue
            draft.codes.append((i + 1, line, code))
        return
    draft.kind = "sequence"
    seq_line = lines.get(("sequence",), 0)
    if not isinstance(sequence, dict):
        draft.problem(seq_line, "'sequence' must be a mapping with pattern, first and last")
        return
    for key in sequence:
        if key not in SEQUENCE_KEYS:
            draft.problem(lines.get(("sequence", key)), f"unknown key sequence.{key} (expected pattern, serial, "
                                                        "first, last)")
    missing = [k for k in ("pattern", "first", "last") if k not in sequence]
    if missing:
        draft.problem(seq_line, f"sequence needs {', '.join(missing)}")
        return
    pattern, serial = sequence["pattern"], sequence.get("serial")
    first, last = sequence["first"], sequence["last"]
    pattern_line = lines.get(("sequence", "pattern"), seq_line)
    ok = True
    for key, value in (("first", first), ("last", last)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            draft.problem(lines.get(("sequence", key)), f"sequence.{key} {value!r} is not a whole number ≥ 0")
            ok = False
    if ok and last < first:
        draft.problem(lines.get(("sequence", "last")), f"sequence.last {last} is before sequence.first {first}")
        ok = False
    if not isinstance(pattern, str) or (serial is not None and not isinstance(serial, str)):
        draft.problem(pattern_line, "bad pattern: the pattern (and serial) must be text")
        return
    try:
        _expand_pattern(pattern, serial)
        if ok:
            _make_code(pattern, serial, first)
    except (ValueError, KeyError, IndexError) as exc:
        draft.problem(pattern_line, f"bad pattern: {exc}")
        return
    if not ok:
        return
    draft.pattern = pattern if serial is None else f"{pattern} with serial {serial}"
    draft.first, draft.last = first, last
    draft.codes = [(n, pattern_line, _make_code(pattern, serial, n)) for n in range(first, last + 1)]


def _read_csv(text: str, draft: _Draft) -> None:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rolls: dict[str, int] = {}
    products: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not row or (row[0].startswith("#")) or all(not c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            required = [c for c in CSV_COLUMNS if c not in header]
            unknown = [c for c in header if c not in CSV_COLUMNS + CSV_OPTIONAL]
            duplicated = sorted({c for c in header if header.count(c) > 1})
            if required or unknown or duplicated:
                parts = ([f"missing {', '.join(required)}"] if required else []) + \
                        ([f"unknown {', '.join(unknown)}"] if unknown else []) + \
                        ([f"repeated {', '.join(duplicated)}"] if duplicated else [])
                draft.problem(line, f"wrong columns {','.join(header)} ({'; '.join(parts)}): expected "
                                    f"{','.join(CSV_COLUMNS)} and optionally seq")
                return
            continue
        if len(row) != len(header):
            draft.problem(line, f"{len(row)} cells, the header has {len(header)} ({','.join(header)})")
            continue
        cells = dict(zip(header, (c.strip() for c in row)))
        rolls.setdefault(cells["roll"], line)
        products.setdefault(cells["product"], line)
        if "seq" in cells:
            try:
                seq = int(cells["seq"])
                if seq < 0:
                    raise ValueError
            except ValueError:
                draft.problem(line, f"seq {cells['seq']!r} is not a whole number ≥ 0")
                continue
        else:
            seq = len(draft.codes) + 1
        draft.codes.append((seq, line, cells["code"]))
    if header is None:
        draft.problem(None, f"empty manifest: expected a header {','.join(CSV_COLUMNS)} and one row per code")
        return
    if len(rolls) > 1:
        second = sorted(rolls.items(), key=lambda kv: kv[1])[1]
        draft.problem(second[1], f"roll {second[0]!r} differs from roll {next(iter(rolls))!r} above: one roll per "
                                 "manifest")
    if len(products) > 1:
        second = sorted(products.items(), key=lambda kv: kv[1])[1]
        draft.problem(second[1], f"product {second[0]!r} differs from product {next(iter(products))!r} above: a "
                                 "roll is meant for one product")
    if rolls:
        draft.roll_id, draft.roll_line = next(iter(rolls.items()))
    if products:
        draft.product, draft.product_line = next(iter(products.items()))
    if not draft.codes and not draft.problems:
        draft.problem(None, "no codes: the manifest has a header and no rows")


def parse_manifest(path: str | Path, rules: CodeRules, *, products: Iterable[str] | None = None,
                   max_codes: int = 200_000) -> NewRoll:
    """Read and check a roll manifest (``.yaml``/``.yml`` or ``.csv``); ManifestError lists every problem."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError([f"{name}: cannot read the manifest: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError([f"{name}: not UTF-8 text (byte {exc.start})"]) from None
    draft = _Draft(name)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        _read_yaml(path, text, draft)
    elif suffix == ".csv":
        _read_csv(text, draft)
    else:
        raise ManifestError([f"{name}: unknown manifest type {suffix or '(none)'}: use .yaml, .yml or .csv"])
    if draft.problems:
        raise ManifestError(draft.problems)

    if not draft.roll_id:
        draft.problem(draft.roll_line or None, "the roll's identity ('roll') is missing")
    elif not ROLL_ID_RE.fullmatch(draft.roll_id):
        draft.problem(draft.roll_line, f"roll {draft.roll_id!r}: 1 to 60 of A-Z a-z 0-9 . _ -")
    gtin: str | None = None
    if not draft.product:
        draft.problem(draft.product_line or None, "the product ('product', its GTIN) is missing")
    else:
        try:
            gtin = normalize_gtin(draft.product)
        except InvalidIdentifier as exc:
            draft.problem(draft.product_line, f"product: {exc}")
        else:
            known = set(products) if products is not None else None
            if known is not None and gtin not in known:
                draft.problem(draft.product_line, f"product {gtin} is not in the product list")
    if len(draft.codes) > max_codes:
        draft.problem(None, f"{len(draft.codes)} codes: a roll holds at most {max_codes} "
                            "(preprinted.max_roll_codes)")
        raise ManifestError(draft.problems)

    codes: list[NewRollCode] = []
    seen_code: dict[str, int] = {}
    seen_key: dict[tuple[str, str], int] = {}
    seen_seq: dict[int, int] = {}
    for seq, line, code in draft.codes:
        if len(draft.problems) > 2 * MAX_ERRORS:
            break
        where = f" (n={seq})" if draft.kind == "sequence" else ""
        if seq in seen_seq:
            draft.problem(line, f"seq {seq} is also on line {seen_seq[seq]}")
            continue
        seen_seq[seq] = line
        if code in seen_code:
            draft.problem(line, f"code {code!r}{where} is also on line {seen_code[code]} (duplicate in the manifest)")
            continue
        seen_code[code] = line
        try:
            classified = rules.classify(code)
        except CodeShapeError as exc:
            prefix = f"pattern gives {code!r} for n={seq}, which is not accepted: " if draft.kind == "sequence" else ""
            draft.problem(line, prefix + str(exc))
            if draft.kind == "sequence":
                break  # one message is enough: the same pattern fails the same way for every n
            continue
        if classified.is_digital_link:
            assert classified.gtin is not None and classified.serial is not None
            if gtin is not None and classified.gtin != gtin:
                draft.problem(line, f"code {code!r}{where} is a Digital Link for GTIN {classified.gtin}, not the "
                                    f"roll's product {gtin}")
                continue
            key = (classified.gtin, classified.serial)
            if key in seen_key:
                draft.problem(line, f"code {code!r}{where}: serial {classified.serial!r} is also on line "
                                    f"{seen_key[key]} (duplicate in the manifest)")
                continue
            seen_key[key] = line
        # A Digital Link is registered with its scheme and host in lower case (gs1.link_key), as the line looks it
        # up: a host is case-insensitive, so a read in capitals is the same code (its serial is the same anyway).
        code = link_key(code)
        codes.append(NewRollCode(seq=seq, code=code, gtin=classified.gtin, serial=classified.serial, line=line))
    if draft.problems:
        raise ManifestError(draft.problems)
    assert draft.roll_id is not None and gtin is not None
    return NewRoll(roll_id=draft.roll_id, gtin=gtin, kind=draft.kind, codes=codes, pattern=draft.pattern,
                   first=draft.first, last=draft.last, issuer=draft.issuer, manifest=name,
                   manifest_sha256=hashlib.sha256(raw).hexdigest())


# -- reconciliation ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gap:
    """A run of codes before the roll's last activated one that were not activated (skipped or voided)."""

    first_seq: int
    last_seq: int
    first_code: str
    last_code: str
    skipped: int
    voided: int

    @property
    def count(self) -> int:
        return self.skipped + self.voided


@dataclass
class RollReport:
    """Where every code of one roll stands: activated, voided (with reasons), skipped, still unused."""

    roll: RollInfo
    codes: list[RollCode]
    refusals: list[Refusal]
    lots: dict[int, str]
    generated_at: dt.datetime
    last_activated_seq: int | None = None
    gaps: list[Gap] = field(default_factory=list)

    def status(self, code: RollCode) -> str:
        """activated, voided, skipped (unused, before the last activated code) or unused."""
        if code.state is CodeState.ACTIVATED:
            return "activated"
        if code.state is CodeState.VOIDED:
            return "voided"
        if self.last_activated_seq is not None and code.seq < self.last_activated_seq:
            return "skipped"
        return "unused"

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.status(c) for c in self.codes)

    @property
    def voided_by_reason(self) -> Counter[str]:
        return Counter(c.void_reason or "" for c in self.codes if c.state is CodeState.VOIDED)

    @property
    def refused_by_reason(self) -> Counter[str]:
        return Counter(r.reason.value for r in self.refusals)

    def summary_lines(self) -> list[str]:
        r, counts = self.roll, self.counts
        lines = [
            f"roll {r.roll_id} for product {r.gtin}: {r.code_count} codes"
            + (f" ({r.pattern}, {r.first}–{r.last})" if r.kind == "sequence" else " (list)")
            + f"; state {r.state.value}" + (f" ({r.state_reason})" if r.state_reason else ""),
            f"activated {counts['activated']}, voided {counts['voided']}, skipped {counts['skipped']}, "
            f"still unused {counts['unused']}",
        ]
        if self.voided_by_reason:
            lines.append("voided by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(self.voided_by_reason.items())))
        if self.roll.kind == "sequence":
            lines.append("gaps in the sequence: " + ("; ".join(
                f"{g.first_code}–{g.last_code} ({g.skipped} skipped, {g.voided} voided)"
                if g.first_seq != g.last_seq else f"{g.first_code} ({'skipped' if g.skipped else 'voided'})"
                for g in self.gaps) or "none"))
        if self.refusals:
            lines.append("refused reads of this roll: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.refused_by_reason.items())))
        return lines

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["roll", "product", "seq", "code", "status", "lot", "activated_at_utc", "void_reason",
                         "void_detail", "voided_at_utc"])
        for c in self.codes:
            writer.writerow([
                self.roll.roll_id, self.roll.gtin, c.seq, c.code, self.status(c),
                self.lots.get(c.batch_id, "") if c.batch_id is not None else "",
                c.activated_at.isoformat(timespec="seconds") if c.activated_at else "",
                c.void_reason or "", c.void_detail,
                c.voided_at.isoformat(timespec="seconds") if c.voided_at else "",
            ])
        return out.getvalue()

    def _sections(self) -> list[tuple[str, list[str], list[list[str]]]]:
        r = self.roll
        head = [
            ["Roll", r.roll_id], ["Product (GTIN)", r.gtin], ["Issuer", r.issuer or "—"],
            ["Manifest", f"{r.manifest} (sha256 {r.manifest_sha256[:16]}…)"],
            ["Registered (UTC)", r.registered_at.isoformat(timespec="seconds")],
            ["State", r.state.value + (f" — {r.state_reason}" if r.state_reason else "")],
            ["Codes", str(r.code_count) + (f" — {r.pattern}, {r.first}–{r.last}" if r.kind == "sequence" else "")],
            ["Report generated (UTC)", self.generated_at.isoformat(timespec="seconds")],
        ]
        counts = self.counts
        totals = [[k, str(counts[k])] for k in ("activated", "voided", "skipped", "unused")]
        sections: list[tuple[str, list[str], list[list[str]]]] = [
            ("Roll", ["", ""], head),
            ("Totals", ["status", "codes"], totals),
        ]
        by_lot = Counter(self.lots.get(c.batch_id, "?") for c in self.codes
                         if c.state is CodeState.ACTIVATED and c.batch_id is not None)
        sections.append(("Activated by lot", ["lot", "codes"], [[k, str(v)] for k, v in sorted(by_lot.items())]))
        sections.append(("Voided", ["seq", "code", "reason", "detail"],
                         [[str(c.seq), c.code, c.void_reason or "", c.void_detail] for c in self.codes
                          if c.state is CodeState.VOIDED]))
        sections.append(("Skipped (unused, before the last activated code)", ["seq", "code"],
                         [[str(c.seq), c.code] for c in self.codes if self.status(c) == "skipped"]))
        if self.roll.kind == "sequence":
            sections.append(("Gaps in the sequence", ["from", "to", "skipped", "voided"],
                             [[g.first_code, g.last_code, str(g.skipped), str(g.voided)] for g in self.gaps]))
        unused = [c for c in self.codes if self.status(c) == "unused"]
        ranges = _runs(unused)
        sections.append(("Still unused", ["from", "to", "codes"],
                         [[a.code, b.code, str(n)] for a, b, n in ranges]))
        sections.append(("Refused reads", ["time (UTC)", "reason", "code", "detail"],
                         [[f.at.isoformat(timespec="seconds"), f.reason.value, f.code or "", f.detail]
                          for f in self.refusals]))
        return sections

    def markdown(self) -> str:
        lines = [f"# Reconciliation of roll {self.roll.roll_id}", ""]
        for title, header, rows in self._sections():
            lines += [f"## {title}", ""]
            if not rows:
                lines += ["none", ""]
                continue
            cell = lambda v: v.replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines.append("| " + " | ".join(cell(h) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
            lines.append("")
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        parts = ["<!DOCTYPE html>", '<html lang="vi"><head><meta charset="utf-8">',
                 f"<title>Reconciliation of roll {e(self.roll.roll_id)}</title>",
                 "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
                 "td,th{border:1px solid #999;padding:.2em .6em;text-align:left}</style></head><body>",
                 f"<h1>Reconciliation of roll {e(self.roll.roll_id)}</h1>"]
        for title, header, rows in self._sections():
            parts.append(f"<h2>{e(title)}</h2>")
            if not rows:
                parts.append("<p>none</p>")
                continue
            parts.append("<table>")
            if any(header):
                parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows]
            parts.append("</table>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


def _runs(codes: Sequence[RollCode]) -> list[tuple[RollCode, RollCode, int]]:
    """Consecutive runs (by seq) of the given codes, as (first, last, count)."""
    runs: list[tuple[RollCode, RollCode, int]] = []
    for c in codes:
        if runs and c.seq == runs[-1][1].seq + 1:
            first, _, n = runs[-1]
            runs[-1] = (first, c, n + 1)
        else:
            runs.append((c, c, 1))
    return runs


def reconcile(store: Store, roll_id: str) -> RollReport:
    """The reconciliation of one roll, from the database."""
    roll = store.roll(roll_id)
    codes = store.roll_codes(roll.pk)
    refusals = store.refusals(roll_pk=roll.pk)
    batch_ids = {c.batch_id for c in codes if c.batch_id is not None}
    lots: dict[int, str] = {}
    for batch_id in batch_ids:
        batch: Batch = store.batch(batch_id)
        lots[batch_id] = batch.lot
    activated = [c.seq for c in codes if c.state is CodeState.ACTIVATED]
    report = RollReport(roll, codes, refusals, lots, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                        last_activated_seq=max(activated) if activated else None)
    if report.last_activated_seq is not None:
        run: list[RollCode] = []
        for c in codes:
            if c.seq >= report.last_activated_seq:
                break
            if c.state is CodeState.ACTIVATED:
                if run:
                    report.gaps.append(_gap(run))
                run = []
            else:
                if run and c.seq != run[-1].seq + 1:
                    report.gaps.append(_gap(run))
                    run = []
                run.append(c)
        if run:
            report.gaps.append(_gap(run))
    return report


def _gap(run: list[RollCode]) -> Gap:
    voided = sum(1 for c in run if c.state is CodeState.VOIDED)
    return Gap(run[0].seq, run[-1].seq, run[0].code, run[-1].code, len(run) - voided, voided)


def write_report(report: RollReport, folder: str | Path) -> list[Path]:
    """Write ``roll-<id>-reconciliation.csv``, ``.md`` and ``.html`` into ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"roll-{report.roll.roll_id}-reconciliation"
    paths = []
    for suffix, text in ((".csv", report.csv()), (".md", report.markdown()), (".html", report.html())):
        path = folder / f"{stem}{suffix}"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
