"""`python -m ui [config.yaml] [--kiosk] [--language vi|en]`: the station with its screens (what `station run` calls)."""

from __future__ import annotations

import argparse
import logging
import sys

from ui.app import LANGUAGES, main


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui", description="The packing station with its screens.")
    parser.add_argument("config", nargs="?", help="station.yaml (default: $STATION_CONFIG or config/station.yaml)")
    parser.add_argument("--kiosk", action=argparse.BooleanOptionalAction, default=None,
                        help="full screen without window decorations (default: ui.kiosk of the configuration)")
    parser.add_argument("--language", choices=LANGUAGES, help="language of the screens (default: ui.language)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return main(args.config, kiosk=args.kiosk, language=args.language)


if __name__ == "__main__":
    sys.exit(cli())
