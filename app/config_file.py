"""Changing the station's configuration file from the technician's screen: write only the keys that changed,
validate the new file as the station does at start, and keep the old one when anything is wrong."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from station.config import StationConfig, edit_config_text, load_config, load_products, redact_url
from station.errors import ConfigError

SECRET_KEYS = ("mqtt.password", "technician.pin_hash")   # named as changed in the audit log, never shown


def config_value(config: StationConfig, dotted: str) -> Any:
    """The value of a dotted key (``devices.printer.url``) as the screen's fields hold it: paths and secrets as
    text, enums as their value."""
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part) if node is not None else None
    if isinstance(node, Path):
        return str(node)
    if isinstance(node, SecretStr):
        return node.get_secret_value()
    return node.value if hasattr(node, "value") else node


def save_config(path: Path, current: StationConfig, values: Mapping[str, Any]) -> tuple[StationConfig, list[str]]:
    """Write the keys that differ from ``current`` into the YAML file at ``path``, validated first.

    Only those keys change in the text (comments and layout are kept). The new file is written beside the old one,
    loaded with ``load_config`` (and its product list with ``load_products``), and only then moved over the old file
    (the previous file is kept as ``.bak``). A bad value raises ConfigError with the reason, naming the real file,
    and leaves the old file as it was.
    """
    changed = [key for key, value in values.items() if value != config_value(current, key)]
    if not changed:
        return current, []
    # Only the changed keys are rewritten: the file's comments, order and quoting stay as the technician left them.
    text = edit_config_text(path.read_text(encoding="utf-8"), {key: values[key] for key in changed},
                            source=str(path))
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            config = load_config(temp)
            load_products(config.resolve(config.products_file))
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(temp), str(path))) from None
        backup = path.with_name(path.name + ".bak")
        backup.write_bytes(path.read_bytes())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return load_config(path), changed


def change_detail(values: Mapping[str, Any], changed: list[str]) -> str:
    """What the audit log says of a saved change: each key with its new value (passwords in URLs masked), and the
    secrets only as changed."""
    shown = [k for k in changed if k not in SECRET_KEYS]
    hidden = [k for k in changed if k not in shown]
    return ", ".join(f"{k}={redact_url(str(values[k]))}" for k in shown) + "".join(f", {k} changed" for k in hidden)


__all__ = ["config_value", "save_config", "change_detail"]
