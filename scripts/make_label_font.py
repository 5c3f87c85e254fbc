"""Remake config/fonts/VNSANS.TTF: the TrueType font the station downloads to the printer for the label's text.

A Zebra's resident fonts (^A0 and the bitmap fonts) have no glyphs for most Vietnamese letters; a downloaded
TrueType font prints them. The whole DejaVu Sans is about 750 KB, minutes on a 9600-baud serial line, so this keeps
only what a label needs: Basic Latin, Latin-1, Latin Extended-A and -B (ơ ư are in B), the combining marks
Vietnamese uses (for text typed decomposed), Latin Extended Additional (ạ ả ấ … ỹ), general punctuation and the
đồng and euro signs. Hinting is dropped (64 KB instead of 105 KB); the printer rasterises the outlines itself.

DejaVu's licence (config/fonts/LICENSE-DejaVu.txt) lets a modified font be shipped if it is renamed to a name
without "Bitstream" or "Vera"; the subset is named "DejaVu Sans VN".

    python scripts/make_label_font.py [--source /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
TARGET = ROOT / "config" / "fonts" / "VNSANS.TTF"
FAMILY = "DejaVu Sans VN"

RANGES = (
    (0x0020, 0x007E),   # Basic Latin
    (0x00A0, 0x00FF),   # Latin-1 Supplement
    (0x0100, 0x017F),   # Latin Extended-A: ă đ ĩ ũ
    (0x0180, 0x024F),   # Latin Extended-B: ơ ư
    (0x0300, 0x0303),   # combining grave, acute, circumflex, tilde
    (0x0306, 0x0306),   # combining breve
    (0x0309, 0x0309),   # combining hook above
    (0x031B, 0x031B),   # combining horn
    (0x0323, 0x0323),   # combining dot below
    (0x1E00, 0x1EFF),   # Latin Extended Additional: ạ ả ấ ầ ẩ ẫ ậ … ỹ
    (0x2010, 0x2027),   # dashes, quotes, bullet, ellipsis
    (0x2030, 0x2030),   # per mille
    (0x2039, 0x203A),   # single angle quotes
    (0x20AB, 0x20AC),   # đồng and euro signs
    (0x2116, 0x2116),   # numero sign
    (0x2122, 0x2122),   # trade mark
)


def codepoints() -> list[int]:
    return [cp for low, high in RANGES for cp in range(low, high + 1)]


def make(source: Path, target: Path) -> int:
    options = subset.Options()
    options.hinting = False                  # 64 KB instead of 105 KB: 40 % less time on a serial line
    options.layout_features = ["*"]          # ccmp/mark keep combining marks in place where a renderer uses them
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_bounds = True
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints())
    subsetter.subset(font)
    names = font["name"]
    for record in names.names:
        text = record.toUnicode()
        if record.nameID in (1, 4, 16):
            record.string = text.replace("DejaVu Sans", FAMILY)
        elif record.nameID == 6:
            record.string = text.replace("DejaVuSans", "DejaVuSansVN")
        elif record.nameID == 3:
            record.string = f"{FAMILY}: subset of {text} for packing-station labels"
    target.parent.mkdir(parents=True, exist_ok=True)
    font.save(target)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"DejaVu Sans TTF (default {SOURCE})")
    parser.add_argument("--out", type=Path, default=TARGET, help=f"where to write it (default {TARGET})")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"{args.source}: not found (apt-get install fonts-dejavu-core)", file=sys.stderr)
        return 1
    size = make(args.source, args.out)
    print(f"wrote {args.out}: {size} bytes, {len(codepoints())} code points "
          f"(about {size * 10 / 9600:.0f} s to download at 9600 baud, 8N1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
