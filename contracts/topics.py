"""MQTT topic names of the station/central contract: `{prefix}/{site}/{station}/{events|acks|status}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.errors import InvalidTopic

Kind = Literal["events", "acks", "status"]
KINDS: tuple[Kind, ...] = ("events", "acks", "status")
DEFAULT_PREFIX = "truyxuat"
DEFAULT_SHARE_GROUP = "ingest"


def check_level(name: str, what: str) -> str:
    """A single topic level of ours: non-empty, no '/', no wildcard, no leading '$' (the broker's own)."""
    if not name or "/" in name or "+" in name or "#" in name or name.startswith("$") or "\x00" in name:
        raise InvalidTopic(f"{what} {name!r} must be one non-empty topic level without '/', '+', '#' or a leading '$'")
    return name


def check_prefix(prefix: str) -> str:
    """The prefix may have several levels (`province/truyxuat`), each a plain level."""
    for level in prefix.split("/"):
        check_level(level, "topic prefix level")
    return prefix


@dataclass(frozen=True)
class StationTopic:
    prefix: str
    site: str
    station: str
    kind: Kind

    @property
    def topic(self) -> str:
        return f"{self.prefix}/{self.site}/{self.station}/{self.kind}"

    def sibling(self, kind: Kind) -> StationTopic:
        """The same station's topic of another kind: the acks topic of an events topic."""
        return StationTopic(self.prefix, self.site, self.station, kind)


def station_topic(prefix: str, site: str, station: str, kind: Kind) -> str:
    check_prefix(prefix)
    check_level(site, "site")
    check_level(station, "station")
    if kind not in KINDS:
        raise InvalidTopic(f"topic kind {kind!r} is not one of {', '.join(KINDS)}")
    return f"{prefix}/{site}/{station}/{kind}"


def events_topic(prefix: str, site: str, station: str) -> str:
    return station_topic(prefix, site, station, "events")


def acks_topic(prefix: str, site: str, station: str) -> str:
    return station_topic(prefix, site, station, "acks")


def status_topic(prefix: str, site: str, station: str) -> str:
    return station_topic(prefix, site, station, "status")


def events_filter(prefix: str) -> str:
    """Every station's events: `{prefix}/+/+/events`."""
    return f"{check_prefix(prefix)}/+/+/events"


def shared_events_subscription(prefix: str, group: str = DEFAULT_SHARE_GROUP) -> str:
    """The MQTT 5 shared subscription the ingest workers split the events by: `$share/{group}/{prefix}/+/+/events`."""
    return f"$share/{check_level(group, 'share group')}/{events_filter(prefix)}"


def parse_station_topic(topic: str, prefix: str) -> StationTopic:
    """Split a topic of ours into prefix, site, station and kind; InvalidTopic for anything else."""
    check_prefix(prefix)
    head = prefix + "/"
    if not topic.startswith(head):
        raise InvalidTopic(f"topic {topic!r} is not under {prefix}/")
    levels = topic[len(head):].split("/")
    if len(levels) != 3 or levels[2] not in KINDS:
        raise InvalidTopic(f"topic {topic!r} is not {prefix}/<site>/<station>/<{'|'.join(KINDS)}>")
    site, station, kind = levels
    check_level(site, "site")
    check_level(station, "station")
    return StationTopic(prefix, site, station, kind)  # type: ignore[arg-type]
