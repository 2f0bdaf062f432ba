"""Configuration: a typed schema read from TOML, with errors that name the file and the key.

Nothing is started until the whole file has been validated, so a typo never leaves the
appliance half-configured.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/callrec/callrec.toml")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class BoardConfig:
    backend: str = "hat"  # "hat" (the real HAT) or "sim" (the line simulator)
    serial_port: str = "/dev/serial0"
    serial_baud: int = 115200
    capture_device: str = "callrec-line"  # PortAudio device name, matched as a substring
    playback_device: str = "callrec-line"
    sample_rate: int = 8000
    frames_per_buffer: int = 1600  # 200 ms at 8 kHz: few wake-ups per second, low CPU
    sim_socket: str = "/run/callrec/sim.sock"  # only read by the "sim" backend
    mcu_timeout_s: float = 3.0  # no frame for this long: the link is considered lost


@dataclass(frozen=True)
class LineConfig:
    name: str = "line1"
    # Outgoing calls: most exchanges give no answer signal, so the announcement starts this many
    # seconds after the last dialled digit (or off-hook), unless a polarity reversal comes first.
    outgoing_answer_delay_s: float = 6.0
    # A ring burst longer than this without a hook change is a new ring, not the same one.
    ring_timeout_s: float = 8.0
    record_incoming: bool = True
    record_outgoing: bool = True
    country: str = "fr"  # call-progress tone plan: "fr", "eu", "us"


@dataclass(frozen=True)
class AnnouncementConfig:
    directory: str = "/var/lib/callrec/prompts"
    incoming: str = "fr"  # prompt stem: <directory>/<stem>.wav
    outgoing: str = "fr"
    # If the prompt is interrupted (caller hangs up), the call is not recorded.


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "/var/lib/callrec"
    fsync_interval_s: float = 1.0


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 6
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    page_size: int = 25


@dataclass(frozen=True)
class Config:
    board: BoardConfig = field(default_factory=BoardConfig)
    line: LineConfig = field(default_factory=LineConfig)
    announcement: AnnouncementConfig = field(default_factory=AnnouncementConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    web: WebConfig = field(default_factory=WebConfig)
    runtime_dir: str = "/run/callrec"
    source: str = "<defaults>"

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)

    @property
    def status_path(self) -> Path:
        return Path(self.runtime_dir) / "status.json"


_SECTIONS: dict[str, type] = {
    "board": BoardConfig,
    "line": LineConfig,
    "announcement": AnnouncementConfig,
    "storage": StorageConfig,
    "web": WebConfig,
}
_TOP_LEVEL = {"runtime_dir": str}
_CHOICES = {("board", "backend"): ("hat", "sim"), ("line", "country"): ("fr", "eu", "us")}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(where: str, value: Any, wanted: type) -> Any:
    # bool is a subclass of int: refuse true/false where a number is expected, and vice versa.
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {wanted.__name__}, got {type(value).__name__} {value!r}")


def parse(data: dict[str, Any], source: str = "<memory>") -> Config:
    """Validate a parsed TOML document into a Config, or raise ConfigError naming the key."""
    known = [*list(_SECTIONS), *list(_TOP_LEVEL)]
    sections: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TOP_LEVEL:
            top[key] = _coerce(f"{source}: key '{key}'", value, _TOP_LEVEL[key])
            continue
        if key not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section or key '{key}'{_suggest(key, known)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table ([{key}])")
        cls = _SECTIONS[key]
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for sub, subvalue in value.items():
            where = f"{source}: key '{key}.{sub}'"
            if sub not in types:
                raise ConfigError(f"{where} is unknown{_suggest(sub, list(types))}")
            wanted = {"str": str, "int": int, "float": float, "bool": bool}[str(types[sub])]
            values[sub] = _coerce(where, subvalue, wanted)
            choices = _CHOICES.get((key, sub))
            if choices and values[sub] not in choices:
                raise ConfigError(f"{where}: {values[sub]!r} is not one of {', '.join(choices)}")
            if wanted in (int, float) and values[sub] < 0:
                raise ConfigError(f"{where}: must not be negative")
        sections[key] = cls(**values)
    return Config(**sections, **top, source=source)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the configuration from `path`, $CALLREC_CONFIG or /etc/callrec/callrec.toml."""
    chosen = Path(path or os.environ.get("CALLREC_CONFIG") or DEFAULT_PATH)
    try:
        raw = chosen.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{chosen}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{chosen}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{chosen}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{chosen}: invalid TOML: {exc}") from None
    return parse(data, str(chosen))
