"""The running station: builds store, devices, engine and relay from a configuration, starts and stops them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

from app.devices import MqttPublisher, PrinterService, VerifierService, verifier_for
from app.label_fit import LabelFit
from drivers.zebra.fonts import TrueTypeMeasure
from drivers.mqtt import MqttClient, Will
from drivers.lineio import LineIO, Trigger, open_lineio
from station.alarms import Alarm
from station.config import DeliveryMode, ForeignStampPolicy, ResumePolicy, StationConfig, load_products, redact_url
from station.domain import Batch, Product
from station.engine import LineEngine, LineEvent, LineSettings, StampDecided, StateChanged, StationIdentity
from station.batches import default_lot, expiry_from_shelf_life
from station.errors import ConfigError, InvalidIdentifier, StationError
from station.gs1 import normalize_gtin, validate_lot
from station.masterdata import batch_opened_events
from station.ports import ItemTrigger
from station.relay import EVENT_REJECTED, DeliveryProblem, Relay, RelaySettings, Topics
from station.config import RefusalPolicy
from station.preprinted import PreprintedLine, PreprintedSettings, ServerCheck
from station.rolls import CodeRules
from station.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    auto_resume: bool | None = None       # None: as configured


def station_identity(config: StationConfig) -> StationIdentity:
    """The station's identity as the lines and the events take it, from the configuration's `station:` section."""
    ident = config.station
    return StationIdentity(site=ident.site, station=ident.id, resolver=ident.resolver, read_point=ident.read_point_id,
                           tz_offset=ident.timezone_offset)


class Station:
    """One station process: everything the configuration names, wired together."""

    def __init__(self, config: StationConfig, options: RunOptions = RunOptions()) -> None:
        self.config = config
        self.products: list[Product] = load_products(config.resolve(config.products_file))
        self.store = Store(config.database.path)
        self.store.sync_products(self.products)
        self.identity = station_identity(config)
        printer_cfg = config.devices.printer
        self.printer = PrinterService(printer_cfg.url, config.resolve(printer_cfg.template),
                                      status_interval_s=printer_cfg.status_interval_s,
                                      status_timeout_s=printer_cfg.status_timeout_s,
                                      stored_format=printer_cfg.stored_format,
                                      fonts={name: config.resolve(path) for name, path in printer_cfg.fonts.items()})
        unknown_fonts = sorted(self.printer.template.fonts - printer_cfg.fonts.keys())
        if unknown_fonts:
            self.store.close()
            raise ConfigError(f"{config.source}: devices.printer.fonts: the template {printer_cfg.template} prints "
                              f"with {', '.join(unknown_fonts)}, which no entry downloads (configured: "
                              f"{', '.join(printer_cfg.fonts) or 'none'})")
        measure = TrueTypeMeasure({name: config.resolve(path) for name, path in printer_cfg.fonts.items()})
        self.label_fit = LabelFit(config, self.printer.template, measure, self.identity.resolver, self.products)
        try:
            self.label_fit.check_room()
        except ConfigError:
            self.store.close()
            raise
        line = config.line
        auto = options.auto_resume if options.auto_resume is not None else line.resume is ResumePolicy.AUTO
        self.line_io: LineIO = open_lineio(config.devices.line_io.url, self._on_trigger)
        self.engine = LineEngine(self.store, self.printer, self.identity, LineSettings(
            verify_timeout_s=line.verify_timeout_s, print_ahead=line.print_ahead,
            max_consecutive_failures=line.max_consecutive_failures, auto_resume=auto,
            serial_length=line.serial_length,
            trigger=line.trigger,
            stop_on_foreign_stamp=line.foreign_stamp is ForeignStampPolicy.STOP,
            commit_interval_s=line.commit_interval_ms / 1000.0, match_window_items=line.match_window_items,
            repeat_read_s=config.devices.verifier.dedupe_s,
            # a poll, and both its ~HS and ~HQES timing out: the printer's word on a stamp that timed out
            printer_status_wait_s=printer_cfg.status_interval_s + 2 * printer_cfg.status_timeout_s,
        ), reject_gate=self.line_io if self.line_io.has_gate else None)   # no gate: items are taken off by hand
        self.verifier = verifier_for(config.devices.verifier, self.engine.submit_read)
        self.topics = Topics.for_station(config.mqtt.prefix, config.station.site, config.station.id)
        mqtt = config.mqtt
        tls = mqtt.tls
        self.mqtt = MqttClient(
            mqtt.url, config.mqtt_client_id, username=mqtt.username,
            password=mqtt.password.get_secret_value() if mqtt.password is not None else None,
            ca_file=str(config.resolve(tls.ca)) if tls and tls.ca else None,
            cert_file=str(config.resolve(tls.cert)) if tls and tls.cert else None,
            key_file=str(config.resolve(tls.key)) if tls and tls.key else None,
            keepalive=mqtt.keepalive_s, session_expiry=mqtt.session_expiry_s,
            will=Will(self.topics.status, json.dumps(self._offline_status()).encode(), qos=1, retain=True),
            max_inflight=mqtt.max_inflight, max_queued=mqtt.max_inflight * 2 + 10,
        )
        self.relay = Relay(self.store, MqttPublisher(self.mqtt), self.topics, RelaySettings(
            max_inflight=mqtt.max_inflight, max_unconfirmed=mqtt.max_unconfirmed,
            events_per_message=mqtt.events_per_message,
            broker_ack_confirms=mqtt.delivery is DeliveryMode.BROKER_ACK, ack_timeout_s=mqtt.ack_timeout_s,
            retry_initial_s=mqtt.retry_initial_s, retry_max_s=mqtt.retry_max_s,
            status_interval_s=mqtt.status_interval_s,
        ), status=self.status, sender=self.identity.read_point, on_problem=self._on_delivery_problem)
        self.engine.add_listener(self._on_line_event)
        self.preprinted: PreprintedLine | None = None
        # The product's own barcode, checked against the batch's GTIN on either line.
        self.product_scanner: VerifierService | None = None
        pre = config.preprinted
        if pre.product_scanner_url:
            verifier_cfg = config.devices.verifier
            self.product_scanner = VerifierService(pre.product_scanner_url, lambda r: self.line.submit_product_read(r),
                                                   terminator=verifier_cfg.terminator.encode(),
                                                   max_line_length=verifier_cfg.max_line_length, name="product")
        self._started = False

    @property
    def line(self) -> LineEngine | PreprintedLine:
        """The line this station runs: the pre-printed line once enabled, otherwise the printing engine."""
        return self.preprinted if self.preprinted is not None else self.engine

    def _on_trigger(self, trigger: Trigger) -> None:
        self.engine.submit_trigger(ItemTrigger(trigger.seq, trigger.at))

    def _offline_status(self) -> dict[str, Any]:
        return {"online": False, "site": self.config.station.site, "station": self.config.station.id,
                "state": "offline"}

    def _on_line_event(self, event: LineEvent) -> None:
        if isinstance(event, StampDecided):
            self.relay.notify()
        elif isinstance(event, StateChanged):
            self.relay.status_changed()

    def _on_delivery_problem(self, problem: DeliveryProblem) -> None:
        # On the relay's thread: the line announces it (screen banner, log, retained status) as its own alarms.
        self.line.raise_alarm(self.delivery_alarm(problem))

    def delivery_alarm(self, problem: DeliveryProblem) -> Alarm:
        """The alarm for a delivery problem, its detail naming what to look at: broker, topic, user, file (for an
        event the central server rejected: the event and the server's reason)."""
        if problem.code == EVENT_REJECTED:
            return Alarm.raise_(problem.code, f"the central server answered {problem.detail}")
        mqtt = self.config.mqtt
        parts = [f"{self.mqtt.url} answered {problem.detail}",
                 f"user {mqtt.username!r}" if mqtt.username else "no user name (anonymous)"]
        if self.config.source is not None:
            parts.append(f"configuration {self.config.source}")
        return Alarm.raise_(problem.code, "; ".join(parts))

    def delivery_problems(self) -> list[str]:
        """The delivery problems that last now, as alarm lines (for the run summary)."""
        return [str(self.delivery_alarm(p)) for p in self.relay.problems]

    def status(self) -> dict[str, Any]:
        """The retained status: state, this run's counters and device health."""
        summary = self.line.summary
        health = self.printer.health()
        return {
            "site": self.config.station.site,
            "station": self.config.station.id,
            "state": self.line.state.value,
            "mode": "preprinted" if self.preprinted is not None else "printed",
            "batch": summary.batch_lot,
            "counters": {
                "printed": summary.printed, "activated": summary.activated,
                "voided": dict(summary.voided), "unused": summary.unused,   # unused: reserved, never printed
            },
            "devices": {
                "printer": {"url": redact_url(self.printer.url), "condition": health.condition.value,
                            "faults": list(health.faults), "detail": health.detail},
                "verifier": {"url": redact_url(self.verifier.url)},
                "broker": {"url": self.mqtt.url, "connected": self.mqtt.connected,
                           "problems": [{"code": p.code, "detail": p.detail, "since": p.since.isoformat() + "Z"}
                                        for p in self.relay.problems]},
            },
            "alarms": [a.code for a in self.line.alarms[-5:]],
        }

    def start(self) -> None:
        """Open the devices and start delivery; the line itself starts with `run()`."""
        # The engine, the device readers, the relay and the writer share one interpreter: a 1 ms switch interval
        # (default 5 ms) keeps a photo-eye trigger from waiting behind a commit for the GIL.
        sys.setswitchinterval(0.001)
        self.mqtt.start()
        self.relay.start()
        self.printer.start()
        self.verifier.start()
        if self.product_scanner is not None:
            self.product_scanner.start()
        self.line_io.start()
        self._started = True

    def stop(self, drain_timeout: float = 0.0) -> None:
        for line in (self.engine, self.preprinted):
            if line is not None and line.state.value != "stopped":
                line.stop()
                line.wait(self.config.line.verify_timeout_s + 5)
        if drain_timeout > 0:
            self.relay.wait_drained(drain_timeout)
        self.line_io.stop()
        self.verifier.stop()
        if self.product_scanner is not None:
            self.product_scanner.stop()
        self.printer.stop()
        self.relay.stop()
        self.mqtt.stop()
        self.store.close()
        self._started = False

    def check_batch_label(self, gtin: str, lot: str, expiry: dt.date | None) -> None:
        """Refuse a batch whose stamps would not print whole (`app.label_fit`): StampTooLarge when the QR would not
        fit the template's QR area, LabelTextTooLong or LabelTextUnprintable when a text would not print whole.
        A pre-printed line prints nothing: nothing to refuse."""
        if self.preprinted is not None:
            return
        self.label_fit.check_qr(gtin, lot, expiry)
        self.label_fit.check_text(self.product(gtin), lot, expiry)

    def product(self, gtin: str | None) -> Product:
        if gtin is None:
            return self.products[0]
        known = ", ".join(p.gtin for p in self.products)
        try:
            wanted = normalize_gtin(gtin)        # a GTIN-13 or -12 names the same product as its GTIN-14
        except InvalidIdentifier as exc:
            raise StationError(f"product {gtin} is not in the product list ({known}): {exc}") from None
        for product in self.products:
            if product.gtin == wanted:
                return product
        raise StationError(f"product {gtin} is not in the product list ({known})")

    def open_batch(self, product: Product, lot: str | None = None, *,
                   production_date: dt.date | None = None, expiry_date: dt.date | None = None,
                   origin: str = "") -> Batch:
        """The open batch with this lot, or a new one (expiry from the product's shelf life unless given)."""
        today = dt.date.today()
        lot = validate_lot(lot or default_lot(today))
        existing = self.store.find_batch(product.gtin, lot)
        if existing is not None:
            if existing.closed:
                raise StationError(f"batch {lot} of {product.name} is closed: choose another lot")
            self.check_batch_label(existing.gtin, existing.lot, existing.expiry_date)
            return existing
        produced = production_date or today
        if expiry_date is None:
            expiry_date = expiry_from_shelf_life(product, produced)
        return self.create_batch(Batch(
            id=None, gtin=product.gtin, lot=lot, production_date=produced, expiry_date=expiry_date,
            origin=origin or product.region,
        ))

    def create_batch(self, draft: Batch, actor: str = "operator") -> Batch:
        """Store a new batch whose stamps fit the label, with, in the same transaction, its audit entry and the
        events that tell the central service about it (the batch, its product and producer, its diary: issue 10)."""
        self.check_batch_label(draft.gtin, draft.lot, draft.expiry_date)
        product = self.product(draft.gtin)
        return self.store.create_batch(
            draft, events=lambda batch: batch_opened_events(product, batch, self.identity), audit=actor)

    def close_batch(self, batch_id: int, actor: str = "operator") -> Batch:
        """Close a batch for good (no more stamps are printed for it), written to the audit log."""
        closed = self.store.close_batch(batch_id)
        self.store.audit(actor, "batch_closed", f"{closed.gtin} lot {closed.lot} (batch {closed.id})")
        return closed

    # -- pre-printed line (issue 5) ------------------------------------------------------------------------------
    # A separate block so the printed line's wiring above stays as it is. Call before start(): the configured
    # verifier then feeds the pre-printed line instead of the printed line's engine.

    def enable_preprinted(self, server_check: ServerCheck | None = None) -> PreprintedLine:
        """Build the pre-printed line on the configured verifier (and product scanner, if configured)."""
        if self._started:
            raise StationError("enable the pre-printed line before start()")
        pre = self.config.preprinted
        line = PreprintedLine(
            self.store, self.identity, CodeRules.from_config(pre),
            PreprintedSettings(stop_on_refusal=pre.on_refusal is RefusalPolicy.STOP,
                               commit_interval_s=pre.commit_interval_ms / 1000.0, opaque_epc=pre.opaque_epc),
            reject_gate=self.line_io if self.line_io.has_gate else None, server_check=server_check,
        )
        verifier_cfg = self.config.devices.verifier
        self.verifier = verifier_for(verifier_cfg, line.submit_read)   # scanner or camera, as for printed stamps
        line.add_listener(self._on_line_event)
        self.preprinted = line
        return line
