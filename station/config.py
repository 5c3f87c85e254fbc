"""Station configuration: one YAML file, overridable by STATION_… environment variables, validated by pydantic.

Every model forbids unknown keys, so a typo fails at start-up with the file and the key named instead of silently
doing nothing. Relative paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
import unicodedata
from pathlib import Path
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.resolver import VersionedResolver, implicit_resolvers
from ruamel.yaml.util import RegExp
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from station.domain import DiaryStep, Product, TriggerMode
from station.errors import ConfigError, InvalidIdentifier
from station.shifts import DEFAULT_SHIFT_STARTS

CONFIG_VERSION = 1
ENV_PREFIX = "STATION_"
ENV_NESTED = "__"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "station.yaml"

DEVICE_SCHEMES = {"tcp", "serial", "file", "cups"}
MQTT_SCHEMES = {"mqtt", "mqtts"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Secrets are masked wherever the configuration is shown: `config check --show` (a JSON-mode dump), the status, the
# screens and the logs. The password is a SecretStr (masked in str, repr and dumps; `.get_secret_value()` only
# where it is used); a URL shows its user but not its password (a camera's http://user:password@…); the PIN hash,
# which a 4-digit PIN makes easy to reverse, is shown only as set or not.
SECRET_MASK = "**********"


def redact_url(url: str) -> str:
    """`url` with the password of its user:password@ part masked (other URLs unchanged)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{SECRET_MASK}@{host}"))


Url = Annotated[str, PlainSerializer(redact_url, return_type=str, when_used="json")]


def _check_device_url(url: str, schemes: set[str]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"{url!r}: scheme must be one of {', '.join(sorted(s + '://' for s in schemes))}")
    if parts.scheme == "tcp":
        if not parts.hostname:
            raise ValueError(f"{url!r}: missing host (expected tcp://host:9100)")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"{url!r}: {exc}") from None
        if port is None:
            raise ValueError(f"{url!r}: missing port (expected tcp://host:9100)")
    if parts.scheme == "hid" and (parts.netloc or not parts.path):
        raise ValueError(f"{url!r}: expected hid:///dev/input/by-id/<scanner>-event-kbd (three slashes, a path)")
    if parts.scheme in {"serial", "file"} and not (parts.path or parts.netloc):
        raise ValueError(f"{url!r}: missing device path (expected {parts.scheme}:///dev/…)")
    if parts.scheme == "cups" and not parts.netloc:
        raise ValueError(f"{url!r}: missing queue name (expected cups://queue)")
    return url


class StationIdentityConfig(_Model):
    """Who this station is, in topics and in EPCIS events (the file's `station:` section; the line and the events
    take it as `station.engine.StationIdentity`, made by `app.runtime.station_identity`)."""

    site: str = Field("hue-01", description="Site (producer's workshop) id, used in MQTT topics.",
                      pattern=r"^[A-Za-z0-9_-]{1,40}$")
    id: str = Field("line-1", description="Station id within the site, used in MQTT topics.",
                    pattern=r"^[A-Za-z0-9_-]{1,40}$")
    resolver: str = Field("truyxuat.hue.example.vn", description="Domain of the Digital Link resolver printed in QR codes.",
                          pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
    timezone_offset: str = Field("+07:00", description="Station's UTC offset for EPCIS eventTimeZoneOffset.",
                                 pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$")
    read_point: str | None = Field(None, description="EPCIS readPoint id (an SGLN URN or a URI); default derived from resolver/site/id.")

    @property
    def read_point_id(self) -> str:
        return self.read_point or f"https://{self.resolver.split('/')[0]}/station/{self.site}/{self.id}"


class PrinterConfig(_Model):
    url: Url = Field("tcp://127.0.0.1:9100", description="Printer address: tcp://host:9100, serial:///dev/…, file:///dev/usb/lp0, cups://queue.")
    template: Path = Field(Path("labels/stamp-60x40.zpl"), description="ZPL label template, relative to the config file.")
    status_interval_s: float = Field(0.5, gt=0, le=60, description="Seconds between printer status polls.")
    status_timeout_s: float = Field(1.0, gt=0, le=30, description="Seconds to wait for a status reply before asking ~HQES.")
    stored_format: bool = Field(True, description="Store the template on the printer (^DF) once and send only the "
                                                  "variable fields per label (^XF), as Zebra advises for throughput.")
    dots_per_mm: Literal[6, 8, 12, 24] = Field(8, description="Print head resolution: 8 for 203 dpi, 12 for 300 dpi; "
                                                          "with the template's ^BQ magnification it sets the QR's "
                                                          "module size.")
    fonts: dict[str, Path] = Field(
        default_factory=lambda: {"E:VNSANS.TTF": Path("fonts/VNSANS.TTF")},
        description="TrueType fonts the template prints with (^A@…,E:NAME.TTF), by their name on the printer, and "
                    "the file each is downloaded from (relative to the config file). Downloaded once (~DY) and "
                    "again whenever the printer no longer lists it (^HW). E: is flash: kept at power-off.")

    _url = field_validator("url")(lambda v: _check_device_url(v, DEVICE_SCHEMES))

    @field_validator("fonts")
    @classmethod
    def _fonts(cls, v: dict[str, Path]) -> dict[str, Path]:
        checked: dict[str, Path] = {}
        for name, path in v.items():
            upper = name.strip().upper()
            if not re.fullmatch(r"[REBA]:[A-Z0-9_]{1,8}\.TTF", upper):
                raise ValueError(f"{name!r}: a font's name on the printer is d:NAME.TTF with d one of R E B A and "
                                 "NAME 1 to 8 letters, digits or _ (e.g. E:VNSANS.TTF)")
            checked[upper] = path
        return checked


SCANNER_SCHEMES = {"tcp", "serial", "hid"}
CAMERA_SCHEMES = {"camera", "http", "https", "folder", "file"}


class DecoderEngine(str, enum.Enum):
    ZXING = "zxing"        # zxing-cpp: the default, fastest and most tolerant here
    PYZBAR = "pyzbar"      # ZBar through pyzbar (needs libzbar0)


class VerifierConfig(_Model):
    url: Url = Field("serial:///tmp/packing-station/scanner?baud=115200",
                     description="Verification device: a scanner (serial:///dev/ttyACM0?baud=115200, tcp://host:port) "
                                 "or a camera (camera://0, http://camera/stream.mjpg, folder:///images, "
                                 "file:///video.avi).")
    terminator: Literal["\r\n", "\r", "\n"] = Field("\r\n", description="End of one read as the scanner sends it.")
    max_line_length: int = Field(512, ge=16, le=8192, description="Longest line accepted, in bytes.")
    decoder: DecoderEngine = Field(DecoderEngine.ZXING, description="Camera decoder engine.")
    dedupe_s: float = Field(1.0, gt=0, le=60, description="Camera: the same code seen again within this is one read. "
                                                         "A stamp already decided, read again within this of its "
                                                         "last read and within line.match_window_items, is the same "
                                                         "label seen again (repeat_read); any other read of it is a "
                                                         "duplicate_stamp.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        scheme = urlsplit(v).scheme
        if scheme in CAMERA_SCHEMES:
            if scheme in {"folder", "file"} and not urlsplit(v).path:
                raise ValueError(f"{v!r}: missing path (expected {scheme}:///path)")
            return v
        return _check_device_url(v, SCANNER_SCHEMES | CAMERA_SCHEMES)

    @property
    def is_camera(self) -> bool:
        return urlsplit(self.url).scheme in CAMERA_SCHEMES


class LineIoConfig(_Model):
    url: Url = Field("none://", description="Photo-eye and reject gate: none://, gpio://?trigger=GPIO17&reject=GPIO27, "
                                           "lineio+tcp://host:port (a network I/O module or the conveyor simulator).")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        scheme = urlsplit(v).scheme
        if scheme not in {"none", "gpio", "lineio+tcp"}:
            raise ValueError(f"{v!r}: scheme must be none://, gpio:// or lineio+tcp://")
        return v


class DevicesConfig(_Model):
    printer: PrinterConfig = PrinterConfig()
    verifier: VerifierConfig = VerifierConfig()
    line_io: LineIoConfig = LineIoConfig()


class DeliveryMode(str, enum.Enum):
    SERVER_ACK = "server-ack"      # confirmed when the central server acks that it stored the event (default)
    BROKER_ACK = "broker-ack"      # confirmed on the broker's PUBACK: for servers that send no acks


class TlsConfig(_Model):
    ca: Path | None = Field(None, description="CA certificate file (PEM).")
    cert: Path | None = Field(None, description="Client certificate file (PEM).")
    key: Path | None = Field(None, description="Client key file (PEM).")


class MqttConfig(_Model):
    url: Url = Field("mqtt://127.0.0.1:1883", description="Broker: mqtt://host:1883 or mqtts://host:8883.")
    prefix: str = Field("truyxuat", pattern=r"^[A-Za-z0-9_/-]{1,60}$", description="First topic level.")
    client_id: str | None = Field(None, description="Fixed MQTT client id; default {site}-{station}.")
    username: str | None = None
    # SecretStr: masked in every dump, repr and str ("**********"); only the MQTT client reads the value.
    password: SecretStr | None = Field(None, description="Broker password (masked in every output).")
    tls: TlsConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0, description="Broker keeps the session this long while offline.")
    max_inflight: int = Field(100, ge=1, le=10_000, description="Most messages published and not yet PUBACKed.")
    max_unconfirmed: int = Field(500, ge=0, le=100_000,
                                 description="Most events acknowledged by the broker but not yet by the server; 0: no limit.")
    events_per_message: int = Field(1, ge=1, le=500, description="Events packed into one EPCIS document.")
    delivery: DeliveryMode = DeliveryMode.SERVER_ACK
    ack_timeout_s: float = Field(30.0, gt=0, le=86400, description="Resend an event the server has not acked after this.")
    retry_initial_s: float = Field(2.0, gt=0, le=3600, description="First back-off after a failed publish.")
    retry_max_s: float = Field(300.0, gt=0, le=86400, description="Longest back-off between attempts.")
    status_interval_s: float = Field(5.0, gt=0, le=3600, description="Seconds between retained status updates.")

    _url = field_validator("url")(lambda v: _check_mqtt_url(v))


def _check_mqtt_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in MQTT_SCHEMES:
        raise ValueError(f"{url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"{url!r}: missing broker host")
    try:
        parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return url


class ForeignStampPolicy(str, enum.Enum):
    STOP = "stop"                # a foreign or already-used stamp on the line stops it for a person to look
    WARN = "warn"                # alarm only


class ResumePolicy(str, enum.Enum):
    AUTO = "auto"          # resume by itself once the printer reports ready again
    MANUAL = "manual"      # wait for the operator to press Resume


class LineConfig(_Model):
    verify_timeout_s: float = Field(3.0, gt=0, le=120, description="Window for the verification read after printing.")
    print_ahead: int = Field(1, ge=1, le=1000, description="Stamps printed and not yet verified, at most (the window of items between printer and verifier).")
    match_window_items: int | None = Field(
        10, ge=1, le=1000,
        description="A stamp still unread when the stamp printed this many items after it is read has passed the "
                    "verifier unread and is voided at once (reads within the window may come in any order, as a "
                    "camera decodes the labels of one frame); empty: only verify_timeout_s voids it.")
    max_consecutive_failures: int = Field(5, ge=1, le=1000, description="Voids in a row that stop the line.")
    resume: ResumePolicy = ResumePolicy.MANUAL
    serial_length: int = Field(10, ge=10, le=20, description="Characters in a generated serial ([0-9A-Z]).")
    trigger: TriggerMode = TriggerMode.FREE_RUN
    foreign_stamp: ForeignStampPolicy = ForeignStampPolicy.STOP
    commit_interval_ms: float = Field(10.0, ge=0, le=1000,
                                      description="Decisions wait at most this long to share one database commit.")


class Language(str, enum.Enum):
    VI = "vi"
    EN = "en"


class UiConfig(_Model):
    language: Language = Field(Language.VI, description="Language of the screens: vi (default) or en.")
    kiosk: bool = Field(False, description="Full screen without window decorations, for a station without a desktop.")
    shift_starts: tuple[str, ...] = Field(
        tuple(f"{h:02d}:{m:02d}" for h, m in DEFAULT_SHIFT_STARTS), min_length=1, max_length=12,
        description="Local times (HH:MM, the station's time zone) at which a shift starts; the operator's shift "
                    "counters count from the latest one.")

    @field_validator("shift_starts")
    @classmethod
    def _shift_starts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[tuple[int, int]] = set()
        for text in v:
            parts = text.split(":")
            if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts) \
                    or not (0 <= int(parts[0]) <= 23 and 0 <= int(parts[1]) <= 59):
                raise ValueError(f"{text!r} is not a time of day as HH:MM (e.g. 06:00)")
            key = (int(parts[0]), int(parts[1]))
            if key in seen:
                raise ValueError(f"{text!r} is given twice")
            seen.add(key)
        return tuple(sorted(v))

    @property
    def shift_start_times(self) -> tuple[tuple[int, int], ...]:
        """The shift starts as (hour, minute), in the order of the day."""
        return tuple((int(t[:2]), int(t[3:])) for t in self.shift_starts)


class TechnicianConfig(_Model):
    pin_hash: Annotated[str | None, PlainSerializer(lambda v: v and SECRET_MASK, when_used="json")] = Field(
        None, description="Salted hash of the technician PIN (scrypt$…); never the PIN itself. None: PIN 0000 until set.",
        pattern=r"^scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[0-9a-f]+\$[0-9a-f]+$",
    )


class DatabaseConfig(_Model):
    path: Path = Field(Path("var/station.db"), description="SQLite file; relative to the working directory.")


class CodeShape(_Model):
    """One accepted shape of an opaque (non-GS1) pre-printed code, e.g. a province's own numbering."""

    name: str = Field(description="Short name of the shape, shown in messages.", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    regex: str = Field(description="Python regular expression the whole code must match (anchors are implied).")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import re

        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"{v!r} is not a valid regular expression: {exc}") from None
        return v


class RefusalPolicy(str, enum.Enum):
    STOP = "stop"          # a foreign, duplicated or wrong-product stamp stops the line for a person to look
    WARN = "warn"          # alarm and reject the item; the line goes on


class PreprintedConfig(_Model):
    """Pre-printed stamp rolls: which code shapes a roll may carry, and how refused stamps are handled."""

    digital_link: bool = Field(True, description="Accept GS1 Digital Link codes (checked with biip; their GTIN must "
                                                 "be the roll's product).")
    code_shapes: list[CodeShape] = Field(default_factory=list,
                                         description="Accepted shapes of opaque codes (regular expressions).")
    opaque_epc: str = Field("https://{resolver}/tem/{code}",
                            description="EPC URI of an opaque code in EPCIS events; {resolver} is station.resolver, "
                                        "{code} the code, percent-encoded.")
    on_refusal: RefusalPolicy = Field(RefusalPolicy.STOP, description="stop: a refused stamp (other than an "
                                      "unreadable one) stops the line; warn: alarm, reject the item, go on.")
    product_scanner_url: Url | None = Field(
        None, description="Scanner on the product's own barcode (EAN-13/GTIN), in both modes: a mismatch with the "
                          "batch's GTIN stops the line. None: no product check.")
    commit_interval_ms: float = Field(10.0, ge=0, le=1000,
                                      description="Activations wait at most this long to share one database commit.")
    max_roll_codes: int = Field(200_000, ge=1, le=10_000_000, description="Most codes one roll manifest may hold.")

    @field_validator("opaque_epc")
    @classmethod
    def _epc_template(cls, v: str) -> str:
        if "{code}" not in v:
            raise ValueError(f"{v!r}: must contain {{code}}")
        if not (v.startswith("https://") or v.startswith("urn:")):
            raise ValueError(f"{v!r}: must be an https:// URI or a urn: so EPCIS accepts it")
        return v

    @field_validator("product_scanner_url")
    @classmethod
    def _product_url(cls, v: str | None) -> str | None:
        return None if v is None else _check_device_url(v, (DEVICE_SCHEMES - {"cups"}) | {"hid"})


class StationConfig(BaseSettings):
    """The whole configuration of one station."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED,
        validate_default=True,
    )

    version: Literal[1] = Field(CONFIG_VERSION, description="Configuration format version.")
    station: StationIdentityConfig = StationIdentityConfig()
    products_file: Path = Field(Path("products.yaml"), description="Product list, relative to the config file.")
    database: DatabaseConfig = DatabaseConfig()
    devices: DevicesConfig = DevicesConfig()
    mqtt: MqttConfig = MqttConfig()
    line: LineConfig = LineConfig()
    ui: UiConfig = UiConfig()
    technician: TechnicianConfig = TechnicianConfig()
    preprinted: PreprintedConfig = PreprintedConfig()
    source: Path | None = Field(None, exclude=True, description="The file this was read from (set by the loader).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: a technician's STATION_… variable overrides the file.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> StationConfig:
        if self.mqtt.tls is not None and not self.mqtt.url.startswith("mqtts://"):
            raise ValueError("mqtt.tls is set but mqtt.url is not mqtts://")
        return self

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else DEFAULT_CONFIG.parent

    def resolve(self, path: Path) -> Path:
        """A path from the file, made absolute against the config file's folder."""
        return path if path.is_absolute() else self.base_dir / path

    @property
    def mqtt_client_id(self) -> str:
        return self.mqtt.client_id or f"{self.station.site}-{self.station.id}"

    def topic(self, leaf: str) -> str:
        return f"{self.mqtt.prefix}/{self.station.site}/{self.station.id}/{leaf}"


# -- YAML: one library (ruamel.yaml) for reading, writing and the technician's round-trip edit ------------------------
# Files are read as YAML 1.1 with PyYAML's rules, as they always were: yes/no/on/off are booleans (y and n are text),
# a float needs its dot, and an unquoted number with a leading zero and an 8 or 9 in it (a GTIN such as
# 08938603001013) stays text.

_PYYAML_RULES = [   # where ruamel's YAML 1.1 differs from PyYAML's (yaml/resolver.py)
    ("tag:yaml.org,2002:bool",
     RegExp(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"), list("yYnNtTfFoO")),
    ("tag:yaml.org,2002:float",
     RegExp(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
             |\.[0-9_]+(?:[eE][-+][0-9]+)?
             |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
             |[-+]?\.(?:inf|Inf|INF)
             |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789.")),
]


class _PyYamlResolver(VersionedResolver):
    """ruamel's YAML 1.1 resolver with PyYAML's booleans and floats."""

    @property
    def versioned_resolver(self) -> Any:
        table = self._version_implicit_resolver
        if "pyyaml" not in table:
            replaced = {tag for tag, _, _ in _PYYAML_RULES}
            for versions, tag, regexp, first in implicit_resolvers:
                if (1, 1) in versions and tag not in replaced:
                    self.add_version_implicit_resolver("pyyaml", tag, regexp, first)   # type: ignore[arg-type]
            for tag, regexp, first in _PYYAML_RULES:
                self.add_version_implicit_resolver("pyyaml", tag, regexp, first)   # type: ignore[arg-type]
        return table["pyyaml"]


def _reader() -> YAML:
    reader = YAML(typ="rt")   # round trip: it keeps each key's and item's line, for the messages
    reader.version = (1, 1)   # octal 0123 and sexagesimal 1:30 constructed as YAML 1.1 numbers
    reader.Resolver = _PyYamlResolver
    return reader


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers and scalars as plain dicts, lists, str, int and float."""
    if isinstance(node, dict):
        return {_plain(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, dt.datetime):
        return dt.datetime.combine(node.date(), node.timetz())   # ruamel's TimeStamp as a datetime
    for plain in (str, int, float):
        if isinstance(node, plain):
            return plain(node)
    return node


def load_yaml(text: str) -> Any:
    """A YAML document as plain data. Raises ruamel.yaml's YAMLError (`problem_mark` says where)."""
    return _plain(_reader().load(text))


def yaml_with_lines(text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The YAML document as plain data, and the line (1-based) of every key and list item by its path."""
    document = _reader().load(text)
    lines: dict[tuple[Any, ...], int] = {(): 1}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, CommentedMap):
            for key, value in node.items():
                lines[path + (_plain(key),)] = node.lc.key(key)[0] + 1
                walk(value, path + (_plain(key),))
        elif isinstance(node, CommentedSeq):
            for index, item in enumerate(node):
                lines[path + (index,)] = node.lc.item(index)[0] + 1
                walk(item, path + (index,))

    if isinstance(document, (CommentedMap, CommentedSeq)):
        lines[()] = document.lc.line + 1
    walk(document, ())
    return _plain(document), lines


def dump_yaml(data: Any) -> str:
    """Plain data as block-style YAML that reads back the same as YAML 1.1 (a '22:00' stays quoted text)."""
    import io

    writer = YAML(typ="safe", pure=True)
    writer.version = (1, 1)
    writer.default_flow_style = False
    writer.allow_unicode = True
    writer.sort_base_mapping_type_on_output = False   # type: ignore[assignment]
    out = io.StringIO()
    writer.dump(data, out)
    return out.getvalue().removeprefix("%YAML 1.1\n---\n")   # the 1.1 rules without a directive in the text


def _yaml_error(path: Path, exc: YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigError(f"{path}:{where}: not valid YAML: {problem}")


def read_yaml(path: Path, what: str) -> Any:
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED.join(str(p).upper() for p in loc)


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, naming the file (or the environment variable) and the dotted key."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        env = _env_name(loc)
        origin = f"environment variable {env}" if loc and env in os.environ else source
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a setting: check its spelling and indentation)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{origin}: {key}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None) -> StationConfig:
    """Read, validate and return the configuration; ConfigError says what is wrong and where."""
    path = Path(path) if path else Path(os.environ.get("STATION_CONFIG", DEFAULT_CONFIG))
    data = read_yaml(path, "configuration file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings, not {type(data).__name__}")
    if "source" in data:
        raise ConfigError(f"{path}: source: unknown key (not a setting)")
    try:
        config = StationConfig(**data, source=path.resolve())
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    template = config.resolve(config.devices.printer.template)
    if not template.exists():
        raise ConfigError(f"{path}: devices.printer.template: file {template} not found")
    for name, font in config.devices.printer.fonts.items():
        if not config.resolve(font).is_file():
            raise ConfigError(f"{path}: devices.printer.fonts.{name}: file {config.resolve(font)} not found")
    return config


class DiaryStepEntry(_Model):
    """One stage of the product's production diary template, published for every new batch (issue 10)."""

    stage: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$",
                       description="raw_material, harvest, processing, packing (the trace page names these), or "
                                   "another lower-case word")
    place: str = Field("", max_length=500)
    detail: str = Field("", max_length=1000)
    days_before: int = Field(0, ge=0, le=3650, description="Days before the batch's production date.")
    time: str = Field("08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                      description="Local time of day (station.timezone_offset), HH:MM.")
    biz_step: str | None = Field(None, description="CBV business step; default: receiving for raw_material, "
                                                   "packing for packing, else the stage's own URI "
                                                   "(contracts.masterdata).")

    @field_validator("place", "detail")
    @classmethod
    def _text(cls, v: str) -> str:
        return _clean_text(v)


class ProductEntry(_Model):
    gtin: str
    name: str = Field(min_length=1, max_length=200)
    producer: str = Field(min_length=1, max_length=200, description="The producer's name.")
    region: str = ""
    shelf_life_days: int | None = Field(None, ge=1, le=36500)
    # Circular 02/2024 fields the trace page shows (issue 10), all optional.
    producer_id: str = Field("", pattern=r"^([a-z0-9][a-z0-9._-]{0,99})?$",
                             description="The producer's identifier at the central service; default: from the name.")
    producer_address: str = Field("", max_length=500)
    producer_phone: str = Field("", max_length=40)
    image_url: str = Field("", max_length=1000, pattern=r"^(https://\S+)?$", description="https:// only.")
    standards: str = Field("", max_length=500, description="Applied standards, e.g. TCVN 4067:1985.")
    diary: list[DiaryStepEntry] = Field(default_factory=list, max_length=50)

    @field_validator("producer_address", "producer_phone", "standards")
    @classmethod
    def _text(cls, v: str) -> str:
        return _clean_text(v)

    @field_validator("name", "producer", "region")
    @classmethod
    def _printable_text(cls, v: str) -> str:
        """One spelling of each Vietnamese letter: an editor may save ế as e + two combining marks (NFD), which
        prints (and compares) differently from the precomposed letter; a control character would print nothing."""
        v = unicodedata.normalize("NFC", v).strip()
        controls = sorted({f"U+{ord(c):04X}" for c in v if unicodedata.category(c) == "Cc"})
        if controls:
            raise ValueError(f"holds control characters ({', '.join(controls)}): a label cannot print them")
        return v


def _clean_text(v: str) -> str:
    v = unicodedata.normalize("NFC", v).strip()
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in v):
        raise ValueError("holds control characters")
    return v


class ProductFile(_Model):
    products: list[ProductEntry] = Field(min_length=1)


def load_products(path: Path) -> list[Product]:
    """The product list; each GTIN's check digit is verified and duplicates are refused."""
    from station.epcis import CBV_BIZ_STEPS  # deferred, as gs1: the schema validator is not needed to check config
    from station.gs1 import normalize_gtin  # deferred: gs1 pulls biip, which config validation alone doesn't need

    data = read_yaml(path, "product list")
    try:
        entries = ProductFile.model_validate(data).products
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    seen: dict[str, int] = {}
    products = []
    for i, entry in enumerate(entries):
        try:
            gtin = normalize_gtin(entry.gtin)
        except InvalidIdentifier as exc:
            raise ConfigError(f"{path}: products.{i}.gtin: {exc}") from None
        if gtin in seen:
            raise ConfigError(f"{path}: products.{i}.gtin: {gtin} is already listed as products.{seen[gtin]}")
        seen[gtin] = i
        diary = []
        for j, step in enumerate(entry.diary):
            if step.biz_step is not None and step.biz_step not in CBV_BIZ_STEPS:
                raise ConfigError(f"{path}: products.{i}.diary.{j}.biz_step: {step.biz_step!r} is not a CBV 2.0 "
                                  f"business step")
            hour, minute = (int(x) for x in step.time.split(":"))
            diary.append(DiaryStep(stage=step.stage, place=step.place, detail=step.detail,
                                   days_before=step.days_before, time=dt.time(hour, minute), biz_step=step.biz_step))
        products.append(Product(gtin=gtin, name=entry.name, producer=entry.producer, region=entry.region,
                                shelf_life_days=entry.shelf_life_days, producer_id=entry.producer_id,
                                producer_address=entry.producer_address, producer_phone=entry.producer_phone,
                                image_url=entry.image_url, standards=entry.standards, diary=tuple(diary)))
    return products


def dump_config(config: StationConfig) -> str:
    """The configuration as YAML (for `station config show`)."""
    data = config.model_dump(mode="json", exclude={"source"})
    return dump_yaml(data)



def edit_config_text(text: str, changes: Mapping[str, Any], *, source: str = "<config>") -> str:
    """`text` (a configuration file) with each dotted key of `changes` set, everything else as it was: comments,
    key order, quoting and blank lines (ruamel.yaml round trip). Missing sections are added. Raises ConfigError
    when the text is not YAML or a key runs through something that is not a mapping."""
    import io

    editor = YAML()
    editor.preserve_quotes = True
    editor.width = 120
    editor.indent(mapping=2, sequence=4, offset=2)
    editor.representer.add_representer(
        type(None), lambda rep, _value: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    try:
        data = editor.load(text)
    except YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings")
    for key, value in changes.items():
        node = data
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = CommentedMap()
            elif not isinstance(child, dict):
                raise ConfigError(f"{source}: {'.'.join(parents[:depth + 1])} is not a section, cannot set {key}")
            node = child
        node[leaf] = str(value) if isinstance(value, Path) else value
    out = io.StringIO()
    editor.dump(data, out)
    return out.getvalue()
