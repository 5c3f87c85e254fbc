"""`station rolls …` and `station batch …`: rolls of pre-printed stamps (register, list, report, lock, void) and
batch locks (a quality hold or a recall), each on the station's own database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli import EXIT_FAILED, EXIT_OK, _config, _existing_database
from station.config import StationConfig, load_products
from station.domain import CodeState
from station.errors import StationError

if TYPE_CHECKING:
    from station.line.events import StationIdentity
    from station.store import Store


def _open_store(config: StationConfig, *, read_only: bool = False) -> tuple[Store, StationIdentity]:
    """The station's store; read_only: an existing database only, as it is (see `_existing_database`)."""
    from app.runtime import station_identity
    from station.store import Store

    if read_only:
        store = Store(_existing_database(config))
    else:
        store = Store(config.database.path)
        store.sync_products(load_products(config.resolve(config.products_file)))
    return store, station_identity(config)


def cmd_rolls_register(args: argparse.Namespace) -> int:
    from station.rolls import CodeRules, ManifestError, parse_manifest
    from station.store import RollConflict

    config = _config(args)
    rules = CodeRules.from_config(config.preprinted)
    store, _ = _open_store(config)
    failed = 0
    with store:
        products = [p.gtin for p in store.products()]
        for path in args.manifests:
            try:
                roll = parse_manifest(path, rules, products=products, max_codes=config.preprinted.max_roll_codes)
                info = store.register_roll(roll)
            except (ManifestError, RollConflict, StationError) as exc:
                failed += 1
                print(f"station: manifest refused, nothing registered from it:\n{exc}", file=sys.stderr)
                continue
            print(f"registered roll {info.roll_id}: {info.code_count} codes for {info.gtin} from {path}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_rolls_list(args: argparse.Namespace) -> int:
    config = _config(args)
    store, _ = _open_store(config, read_only=True)
    with store:
        rolls = store.rolls(gtin=args.product)
        if not rolls:
            print("no rolls registered")
        for roll in rolls:
            counts = store.roll_counts(roll.pk)
            print(f"{roll.roll_id}  product {roll.gtin}  {roll.state.value:<7} {roll.code_count} codes: "
                  f"activated {counts[CodeState.ACTIVATED]}, voided {counts[CodeState.VOIDED]}, "
                  f"unused {counts[CodeState.UNUSED]}" + (f"  ({roll.state_reason})" if roll.state_reason else ""))
    return EXIT_OK


def cmd_rolls_report(args: argparse.Namespace) -> int:
    from station.rolls import reconcile, write_report

    config = _config(args)
    store, _ = _open_store(config, read_only=True)
    with store:
        report = reconcile(store, args.roll)
    for line in report.summary_lines():
        print(line)
    for path in write_report(report, args.out):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_rolls_state(args: argparse.Namespace) -> int:
    from station.domain import RollState
    from station.line.stamp_events import code_void_event

    config = _config(args)
    store, identity = _open_store(config)
    state = {"lock": RollState.LOCKED, "unlock": RollState.ACTIVE, "void": RollState.VOIDED}[args.rolls_command]
    with store:
        roll = store.set_roll_state(
            args.roll, state, args.reason, actor=args.actor,
            void_event=lambda code: code_void_event(code, "roll_voided", args.reason, identity,
                                                    config.preprinted.opaque_epc))
    print(f"roll {roll.roll_id} is {roll.state.value}: {roll.state_reason}")
    return EXIT_OK


def cmd_rolls_void_code(args: argparse.Namespace) -> int:
    from station.line.stamp_events import code_void_event

    config = _config(args)
    store, identity = _open_store(config)
    with store:
        code = store.find_code(args.code)
        if code is None:
            raise StationError(f"code {args.code!r} is in no registered roll")
        event = code_void_event(code, "operator", args.reason, identity, config.preprinted.opaque_epc)
        voided = store.void_code(args.code, args.reason, actor=args.actor, event=event)
    print(f"voided {voided.code} (#{voided.seq} of roll {voided.roll_id}): {args.reason}")
    return EXIT_OK


def cmd_rolls_refusals(args: argparse.Namespace) -> int:
    config = _config(args)
    store, _ = _open_store(config, read_only=True)
    with store:
        roll_pk = store.roll(args.roll).pk if args.roll else None
        refusals = store.refusals(roll_pk=roll_pk)
    for r in refusals[-args.limit:]:
        print(f"{r.at:%Y-%m-%d %H:%M:%S} UTC  {r.reason.value:<18} batch {r.batch_id}  roll {r.roll_id or '-'}  "
              f"{r.code!r}  {r.detail}")
    return EXIT_OK


def cmd_batch_lock(args: argparse.Namespace) -> int:
    from station.batch_lock import find_batch, set_batch_lock

    config = _config(args)
    store, identity = _open_store(config)
    with store:
        batch = find_batch(store, batch_id=args.batch, product=args.product, lot=args.lot)
        lock = args.batch_command == "lock"
        batch = set_batch_lock(store, batch, args.reason, identity, lock=lock, recall=getattr(args, "recall", False),
                               actor=args.actor)
        if lock:
            print(f"batch {batch.id} ({batch.gtin} lot {batch.lot}) locked: {batch.lock_reason}")
        else:
            print(f"batch {batch.id} ({batch.gtin} lot {batch.lot}) unlocked: {args.reason}")
    return EXIT_OK


def cmd_batch_publish(args: argparse.Namespace) -> int:
    from station.batch_lock import find_batch
    from station.masterdata import batch_opened_events

    config = _config(args)
    store, identity = _open_store(config)
    with store:
        batch = find_batch(store, batch_id=args.batch, product=args.product, lot=args.lot)
        product = store.product(batch.gtin)      # as the product list says now (synced on opening)
        assert batch.id is not None
        queued = store.publish_batch(batch.id, lambda b: batch_opened_events(product, b, identity), actor=args.actor)
        print(f"batch {batch.id} ({batch.gtin} lot {batch.lot}): {queued} events queued for the central service "
              f"(the batch with its product and producer, {queued - 1} diary stages); `station run` delivers them")
    return EXIT_OK


def add_roll_parsers(sub: argparse._SubParsersAction, with_config) -> None:  # type: ignore[type-arg]
    rolls = sub.add_parser("rolls", help="rolls of pre-printed stamps: register, list, report, lock, void")
    rolls_sub = rolls.add_subparsers(dest="rolls_command", required=True)
    register = with_config(rolls_sub.add_parser(
        "register", help="register rolls from manifest files (.yaml or .csv); a refused manifest registers nothing"))
    register.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    register.set_defaults(func=cmd_rolls_register)
    listing = with_config(rolls_sub.add_parser("list", help="registered rolls and their counts"))
    listing.add_argument("--product", default=None, help="only the rolls of this GTIN-14")
    listing.set_defaults(func=cmd_rolls_list)
    report = with_config(rolls_sub.add_parser(
        "report", help="reconciliation of a roll: activated, voided, skipped, unused, gaps (CSV, Markdown, HTML)"))
    report.add_argument("roll")
    report.add_argument("--out", type=Path, default=Path("."), help="folder for the report files (default .)")
    report.set_defaults(func=cmd_rolls_report)
    for name, text in (("lock", "lock a roll: its codes are refused until unlocked"),
                       ("unlock", "unlock a locked roll"),
                       ("void", "void a roll for good, with all its unused codes (void events are published)")):
        p = with_config(rolls_sub.add_parser(name, help=text))
        p.add_argument("roll")
        p.add_argument("--reason", required=True)
        p.add_argument("--actor", default="operator")
        p.set_defaults(func=cmd_rolls_state)
    void_code = with_config(rolls_sub.add_parser("void-code", help="void one unused code (a damaged stamp)"))
    void_code.add_argument("code")
    void_code.add_argument("--reason", required=True)
    void_code.add_argument("--actor", default="operator")
    void_code.set_defaults(func=cmd_rolls_void_code)
    refusals = with_config(rolls_sub.add_parser("refusals", help="stamps refused before activation"))
    refusals.add_argument("--roll", default=None)
    refusals.add_argument("--limit", type=int, default=50)
    refusals.set_defaults(func=cmd_rolls_refusals)

    batch = sub.add_parser("batch", help="batch locks (a recall or a quality hold); the batch's master data again")
    batch_sub = batch.add_subparsers(dest="batch_command", required=True)
    publish = with_config(batch_sub.add_parser(
        "publish", help="queue the batch's master data (product, producer, diary) for the central service again"))
    publish.add_argument("--batch", type=int, default=None, help="batch id")
    publish.add_argument("--product", default=None, help="GTIN (with --lot)")
    publish.add_argument("--lot", default=None)
    publish.add_argument("--actor", default="operator")
    publish.set_defaults(func=cmd_batch_publish)
    for name, text in (("lock", "lock a batch: nothing more is activated into it; the reason is published"),
                       ("unlock", "unlock a batch, with the reason")):
        p = with_config(batch_sub.add_parser(name, help=text))
        p.add_argument("--batch", type=int, default=None, help="batch id")
        p.add_argument("--product", default=None, help="GTIN (with --lot)")
        p.add_argument("--lot", default=None)
        p.add_argument("--reason", required=True)
        p.add_argument("--actor", default="operator")
        if name == "lock":
            p.add_argument("--recall", action="store_true", help="a recall (disposition recalled), not a hold")
        p.set_defaults(func=cmd_batch_lock)


__all__ = ["add_roll_parsers"]
