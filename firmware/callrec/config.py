"""Configuration: a typed schema read from TOML, with errors that name the file and the key.

Nothing is started until the whole file has been validated, so a typo never leaves the
appliance half-configured.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from callrec.config_migrate import CURRENT_VERSION
from callrec.storage.retention import RetentionPolicy

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
    # A line that is never announced nor recorded, whatever the direction (e.g. the staff
    # representatives' line): no capture at all, no evidence record.
    never_record: bool = False


@dataclass(frozen=True)
class AnnouncementConfig:
    directory: str = "/var/lib/callrec/prompts"
    incoming: str = "fr"  # prompt stem: <directory>/<stem>.wav
    outgoing: str = "fr"
    # The languages announced, in order ("fr", "en", "fr en": a bilingual office plays both);
    # their versions are chosen in the web UI's prompt library (prompt_library.py). "": one
    # prompt, the stem's language, as before these keys existed.
    incoming_languages: str = ""
    outgoing_languages: str = ""
    # If the prompt is interrupted (caller hangs up), the call is not recorded.


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = "/var/lib/callrec"
    fsync_interval_s: float = 1.0
    # Encryption at rest: audio, sidecars and index sealed with AES-256-GCM, a key per
    # recording wrapped by the device key. Off only for a deliberate reason (it is shown).
    encrypt: bool = True
    # The device key; "" means <data_dir>/keys/device.key. Never on the removable volume.
    device_key_file: str = ""
    # What the device key file is wrapped by, so that the SD card alone opens no recording
    # (storage/key_binding.py): "otp" (the Pi's OTP customer key), "file" (key_binding_file,
    # on another medium), "none" (unwrapped: the SD card alone opens them, said in the status),
    # "auto": as the existing key file says, else "otp" if provisioned, else "none" with a
    # warning (a recorder whose OTP was never provisioned must still start and record).
    key_binding: str = "auto"
    # The secret file for key_binding = "file" (32 bytes, 0600, made on first use); never under
    # data_dir nor on the USB stick. "" for the other bindings.
    key_binding_file: str = ""
    # Where the USB stick is mounted (systemd/media-callrec.mount); recordings go to
    # <usb_mount_point>/callrec/recordings when it is mounted, writable and has room.
    usb_mount_point: str = "/media/callrec"
    # Record to the USB stick when it is usable (else the SD card); False: always the SD card.
    prefer_usb: bool = True
    # How a recording is kept once the call is over. Capture always writes PCM (nothing to
    # lose in a crash); after hang-up a low-priority child process transcodes it:
    # "compact": Ogg/Opus with pauses stored as DTX, 456 hours per GB at PESQ 3.81 on real
    #            speech (bench/codec.py; WAV: 17 h/GB); plays in every browser.
    # "lossless": FLAC, bit-exact, about half the size of WAV. "wav": kept as captured.
    audio_format: str = "compact"

    @property
    def device_key_path(self) -> Path:
        return Path(self.device_key_file or Path(self.data_dir) / "keys" / "device.key")


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 6
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    page_size: int = 25
    # HTTPS (ARCHITECTURE.md, "The web layer"): "auto" is on unless host is a loopback address
    # (the simulated appliance on 127.0.0.1 stays plain HTTP); "on"; "off" (said on the status
    # page). With TLS on, `port` only redirects to https://<same host>:<tls_port>/.
    tls: str = "auto"
    tls_port: int = 8443  # unprivileged: the service has no capability to bind below 1024
    # Made by install.sh (or `callrec tls generate`) in the ConfigurationDirectory; the key is
    # root:callrec 0640, never readable by others.
    tls_cert_file: str = "/etc/callrec/tls/callrec.crt"
    tls_key_file: str = "/etc/callrec/tls/callrec.key"
    # The staff UI's language until someone picks another with the switch in the page header
    # (kept in a cookie): "en" or "fr". The privacy notice follows the reader's browser.
    language: str = "en"

    @property
    def tls_on(self) -> bool:
        """Whether the web UI is meant to be served over HTTPS."""
        return self.tls == "on" or (self.tls == "auto" and not is_loopback(self.host))


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RetentionConfig:
    # Six months, counted in days so that it never exceeds six calendar months whatever the
    # start date (the shortest six-month span, e.g. 1 September to 1 March, is 181 days).
    # The founding document (Fonvirtual, shared/context) only says that callers have a right to
    # know how long recordings are kept; the figure is the CNIL's: its norm for recording calls
    # at work (NS 57, délibération n° 2014-474 of 27 November 2014) says recordings must not be
    # kept more than six months after they were made, and it only allows recording that is
    # limited in time, never permanent. An office that needs less should set less.
    max_age_days: int = 180
    # The only way to keep recordings without an age limit: max_age_days must then be 0 or
    # absent. A missing or zero age alone is refused, so "forever" is always a written choice.
    keep_forever: bool = False
    # Recordings allowed per volume, in GB (10^9 bytes); 0: no quota, only the free space limits.
    quota_gb: float = 0.0
    # Free space kept on each volume, in MB (10^6 bytes), for the OS, the index and the next call.
    min_free_mb: int = 500
    # How often retention runs (it also runs at start and when space runs low). At most a day,
    # so that a recording never outlives max_age_days by more than that.
    check_interval_minutes: int = 60

    def policy(self) -> RetentionPolicy:
        """The pure policy that storage.retention applies."""
        return RetentionPolicy(
            max_age_days=None if self.keep_forever else self.max_age_days,
            quota_bytes=round(self.quota_gb * 1e9) or None,
            min_free_bytes=self.min_free_mb * 1_000_000,
            keep_forever=self.keep_forever,
        )


@dataclass(frozen=True)
class PrivacyConfig:
    # How long the access log (callrec.audit) keeps its monthly files. A year: the CNIL's
    # recommendation on logging (délibération n° 2021-122 of 14 October 2021) keeps access
    # logs six months to a year, and the log must outlive the recordings it speaks of (180
    # days) plus the month a subject request may take, so that "who listened to my calls?"
    # can still be answered for every recording the box holds or has just erased.
    audit_retention_days: int = 365
    # The key a caller (or a called party) presses during the announcement to refuse the
    # recording: nothing of that call is written, an evidence record is kept, and the generated
    # prompts say so. One DTMF key; "" turns refusal off (the prompts then do not offer it).
    refusal_key: str = "9"
    # Dialled by the office before a number ("*0" then the number): that call is not recorded
    # (staff privacy). The box is in series on the line and cannot remove digits: the exchange
    # (or the PBX) receives the prefix too, so choose one it ignores or strips. "" turns it off.
    privacy_prefix: str = "*0"
    # The privacy button pressed with no call on the line keeps the next call that starts
    # within this many seconds out of recording (pressed during a call: that call).
    privacy_button_window_s: float = 60.0
    # The do-not-record list (objections: numbers and prefixes never recorded), sealed with a
    # key derived from the device key when storage.encrypt is on. "" means
    # <data_dir>/privacy/donotrecord.json.
    do_not_record_file: str = ""

    def do_not_record_path(self, data_dir: Path) -> Path:
        return Path(self.do_not_record_file or data_dir / "privacy" / "donotrecord.json")


@dataclass(frozen=True)
class ControllerConfig:
    """Who is responsible for the recordings (GDPR art. 13 and 30): shown on the public
    privacy notice, the record of processing and every subject's information sheet. Left
    empty, those pages say plainly that the office has not filled them in."""

    # The organisation that records (the controller), its postal address and a contact for
    # privacy requests (an e-mail address or a phone number people can actually reach).
    name: str = ""
    address: str = ""
    contact: str = ""
    # The data protection officer, if the organisation has one ("" if not).
    dpo_contact: str = ""
    # Why calls are recorded: a short sentence or two, in the office's words.
    purposes: str = "Quality of service and staff training; proof of what was agreed by phone."
    # The legal basis (GDPR art. 6): for these purposes, usually the controller's legitimate
    # interest, which is why callers are told and may object (the refusal key).
    legal_basis: str = "Legitimate interest of the controller (GDPR art. 6(1)(f))."
    # Who may receive the recordings.
    recipients: str = "Authorised staff of the controller only; no transfer outside the EU."
    # Where a person can complain.
    supervisory_authority: str = (
        "CNIL, 3 place de Fontenoy, TSA 80715, 75334 Paris Cedex 07, https://www.cnil.fr"
    )


@dataclass(frozen=True)
class SipConfig:
    """A SIP line: the box inline between the office's phones or PBX and its provider
    (ARCHITECTURE.md, "SIP"). Addresses are "host:port" ("[v6]:port" for IPv6)."""

    # Off: analog line only. On: the box also relays, announces and records SIP calls.
    enabled: bool = False
    name: str = "sip"  # the line's name in recordings and the status
    # Where the box listens for the office side; its host is the box's own address on that
    # network (it goes into Via, Contact and SDP, so 0.0.0.0 is refused).
    lan: str = ""
    # Where it listens for the provider; may be the same host:port as lan (sides are then told
    # apart by the peer's address, so pbx_peer and trunk_peer must be different hosts).
    trunk: str = ""
    pbx_peer: str = ""  # the office's PBX (or phone): incoming calls go there
    trunk_peer: str = ""  # the provider's SIP server: outgoing calls go there
    # UDP ports for the media relay, "first-last": two per call leg (RTP even, RTCP odd), so
    # four per call; the default serves 250 calls at once.
    rtp_ports: str = "20000-20999"
    # A call whose media stopped (one side sends nothing, not on hold) for this long is
    # released with a BYE to both sides, and its recording closed.
    media_timeout_s: float = 30.0
    # The announcement is always played to the remote party; also to the office side, as on
    # an analog line, unless this is false.
    announce_to_office: bool = True
    record_incoming: bool = True
    record_outgoing: bool = True
    never_record: bool = False
    # Digest credentials for the provider, used when it challenges a request the phone did not
    # answer itself (otherwise the challenge goes through to the phone unchanged). The
    # password is read from a file (0600, callrec only), never from this file.
    trunk_username: str = ""
    trunk_password_file: str = ""
    trunk_realm: str = ""  # "" answers any realm the provider names
    # OPTIONS to trunk_peer every so many seconds: keeps a NAT's pinhole open for incoming
    # calls and shows a provider that stopped answering as a status fault. 0: none; else 5-3600.
    trunk_keepalive_s: float = 30.0

    def address(self, key: str) -> tuple[str, int]:
        """One of lan, trunk, pbx_peer, trunk_peer as (host, port); valid once parsed."""
        return parse_host_port(getattr(self, key))

    @property
    def rtp_range(self) -> tuple[int, int]:
        first, _, last = self.rtp_ports.partition("-")
        return int(first), int(last)


def parse_host_port(text: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" to (host, port); ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, [addr]:port")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be from 1 to 65535")
    return host, int(port)


@dataclass(frozen=True)
class Config:
    board: BoardConfig = field(default_factory=BoardConfig)
    line: LineConfig = field(default_factory=LineConfig)
    announcement: AnnouncementConfig = field(default_factory=AnnouncementConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    web: WebConfig = field(default_factory=WebConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    runtime_dir: str = "/run/callrec"
    # The schema version the file was written for (config_migrate.py): a file without it is
    # version 1. Upgrades migrate older files; a newer file than this code is refused.
    config_version: int = 1
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
    "retention": RetentionConfig,
    "privacy": PrivacyConfig,
    "controller": ControllerConfig,
    "sip": SipConfig,
}
_TOP_LEVEL = {"runtime_dir": str, "config_version": int}
_CHOICES = {
    ("board", "backend"): ("hat", "sim"),
    ("line", "country"): ("fr", "eu", "us"),
    ("storage", "audio_format"): ("compact", "lossless", "wav"),
    ("storage", "key_binding"): ("auto", "otp", "file", "none"),
    ("web", "tls"): ("auto", "on", "off"),
    ("web", "language"): ("en", "fr"),
}


ANNOUNCEMENT_LANGUAGES = ("fr", "en")


def parse_language_list(text: str) -> list[str]:
    """ "fr en" or "fr,en" -> ["fr", "en"]; ValueError saying what is wrong."""
    found = [part for part in text.replace(",", " ").split() if part]
    for lang in found:
        if lang not in ANNOUNCEMENT_LANGUAGES:
            raise ValueError(f"{lang!r} is not one of {', '.join(ANNOUNCEMENT_LANGUAGES)}")
    if len(set(found)) != len(found):
        raise ValueError("a language is listed twice")
    return found


def _check_announcement(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """The announced languages are ones the prompt library has slots for."""
    for key in ("incoming_languages", "outgoing_languages"):
        try:
            parse_language_list(values.get(key, ""))
        except ValueError as exc:
            raise ConfigError(f"{source}: key 'announcement.{key}': {exc} (e.g. \"fr\" or "
                              "\"fr en\"; \"\" plays the stem's language)") from None
    return values


def _check_retention(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """Rules across the [retention] keys; `values` holds only the keys the file sets."""
    where = f"{source}: key 'retention."
    forever = values.get("keep_forever", False)
    age = values.get("max_age_days")
    if forever and age:
        raise ConfigError(
            f"{where}keep_forever': true contradicts max_age_days = {age}; remove max_age_days "
            "(or set it to 0) to keep recordings forever, or set keep_forever = false"
        )
    if not forever and age is not None and age <= 0:
        raise ConfigError(
            f"{where}max_age_days': {age} would keep recordings forever; give a number of days, "
            "or set keep_forever = true to keep them forever on purpose"
        )
    quota = values.get("quota_gb", 0.0)
    if not math.isfinite(quota):
        raise ConfigError(f"{where}quota_gb': must be a number of GB (0: no quota)")
    interval = values.get("check_interval_minutes")
    if interval is not None and not 1 <= interval <= 1440:
        raise ConfigError(f"{where}check_interval_minutes': must be from 1 to 1440 (a day)")
    if forever:
        # Shown as 0 on the information page: no age limit, by the explicit setting.
        values = {**values, "max_age_days": 0}
    return values


def _check_storage(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """Rules across the [storage] keys: a binding secret file must be where the SD card's
    data and the USB stick are not, or the binding would protect nothing."""
    where = f"{source}: key 'storage."
    binding = values.get("key_binding", StorageConfig.key_binding)
    secret = values.get("key_binding_file", "")
    if binding == "file" and not secret:
        raise ConfigError(f"{where}key_binding_file': key_binding = \"file\" needs the path of "
                          "the secret file (on another medium than data_dir)")
    if secret and binding != "file":
        raise ConfigError(f"{where}key_binding_file': only read with key_binding = \"file\" "
                          f"(key_binding is {binding!r}); remove it or set key_binding")
    if secret:
        path = Path(os.path.normpath(secret))
        if not path.is_absolute():
            raise ConfigError(f"{where}key_binding_file': must be an absolute path")
        for other in ("data_dir", "usb_mount_point"):
            root = Path(os.path.normpath(values.get(other, getattr(StorageConfig, other))))
            if path.is_relative_to(root):
                raise ConfigError(
                    f"{where}key_binding_file': {secret} is inside {other} ({root}): whoever "
                    "takes that medium would take the secret with the key it wraps"
                )
    return values


def _check_privacy(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """Rules across the [privacy] keys: the access log always has a retention period."""
    days = values.get("audit_retention_days")
    if days is not None and days < 1:
        raise ConfigError(f"{source}: key 'privacy.audit_retention_days': must be at least 1 "
                          "day (the access log always has a retention period)")
    return _check_saying_no(source, values)


DTMF_KEYS = "0123456789*#ABCD"


def _check_saying_no(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """The refusal key and the privacy prefix must be keys a phone can send, and distinct
    enough that dialling the prefix is never taken for a refusal."""
    where = f"{source}: key 'privacy."
    key = values.get("refusal_key", PrivacyConfig.refusal_key)
    if key and (len(key) != 1 or key not in DTMF_KEYS):
        raise ConfigError(f"{where}refusal_key': {key!r} is not one DTMF key (0-9, *, #, A-D); "
                          "\"\" turns refusal off")
    prefix = values.get("privacy_prefix", PrivacyConfig.privacy_prefix)
    if any(c not in DTMF_KEYS for c in prefix) or len(prefix) > 8:
        raise ConfigError(f"{where}privacy_prefix': {prefix!r} must be up to 8 DTMF keys "
                          "(0-9, *, #, A-D); \"\" turns it off")
    window = values.get("privacy_button_window_s")
    if window is not None and not 0 < window <= 600:
        raise ConfigError(f"{where}privacy_button_window_s': must be from 0 to 600 seconds")
    return values


def _check_sip(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """A SIP line needs its four addresses, the box's own as IP addresses (they go into
    every message and SDP it sends), and a usable relay port range."""
    where = f"{source}: key 'sip."
    if not values.get("enabled", False):
        return values
    addresses: dict[str, tuple[str, int]] = {}
    for key in ("lan", "trunk", "pbx_peer", "trunk_peer"):
        text = values.get(key, "")
        if not text:
            raise ConfigError(f"{where}{key}': a SIP line needs it (host:port)")
        try:
            addresses[key] = parse_host_port(text)
        except ValueError as exc:
            raise ConfigError(f"{where}{key}': {exc}") from None
    for key in ("lan", "trunk"):
        host = addresses[key][0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{where}{key}': {host!r} must be the box's IP address on that "
                              "network (it is written into Via, Contact and SDP)") from None
        if ip.is_unspecified:
            raise ConfigError(f"{where}{key}': {host} is not an address peers can reach; give "
                              "the box's IP address on that network")
    if addresses["lan"] == addresses["trunk"] and \
            addresses["pbx_peer"][0] == addresses["trunk_peer"][0]:
        raise ConfigError(f"{where}trunk': lan and trunk share {values['lan']}, so sides are "
                          "told apart by the peer's host, and pbx_peer and trunk_peer have the "
                          "same one; give the trunk its own address or port")
    first, sep, last = values.get("rtp_ports", SipConfig.rtp_ports).partition("-")
    if not (sep and first.isdigit() and last.isdigit()
            and 1024 <= int(first) and int(first) + 7 <= int(last) <= 65535):
        raise ConfigError(f"{where}rtp_ports': 'first-last' from 1024 to 65535, at least 8 "
                          "ports (four per call)")
    timeout = values.get("media_timeout_s", SipConfig.media_timeout_s)
    if not 5 <= timeout <= 3600:
        raise ConfigError(f"{where}media_timeout_s': must be from 5 to 3600 seconds")
    keepalive = values.get("trunk_keepalive_s", SipConfig.trunk_keepalive_s)
    if keepalive != 0 and not 5 <= keepalive <= 3600:
        raise ConfigError(f"{where}trunk_keepalive_s': 0 (none) or from 5 to 3600 seconds")
    if bool(values.get("trunk_username")) != bool(values.get("trunk_password_file")):
        raise ConfigError(f"{where}trunk_password_file': trunk_username and "
                          "trunk_password_file go together (or neither: challenges are then "
                          "passed to the phones)")
    secret = values.get("trunk_password_file", "")
    if secret and not Path(secret).is_absolute():
        raise ConfigError(f"{where}trunk_password_file': must be an absolute path")
    return values


def _check_web(source: str, values: dict[str, Any]) -> dict[str, Any]:
    """The HTTPS port must be one the unprivileged service can bind, apart from the plain
    one; the certificate and key are absolute paths."""
    where = f"{source}: key 'web."
    tls_port = values.get("tls_port", WebConfig.tls_port)
    if not 1024 <= tls_port <= 65535:
        raise ConfigError(f"{where}tls_port': must be from 1024 to 65535 (the service has no "
                          "capability to bind a lower port)")
    tls = values.get("tls", WebConfig.tls)
    if tls != "off" and tls_port == values.get("port", WebConfig.port):
        raise ConfigError(f"{where}tls_port': {tls_port} is also web.port, which redirects to "
                          "HTTPS; give each its own port")
    for key in ("tls_cert_file", "tls_key_file"):
        if key in values and not Path(values[key]).is_absolute():
            raise ConfigError(f"{where}{key}': must be an absolute path")
    return values


# Checks across the keys of one section, run after each key's own type check.
_SECTION_CHECKS = {"announcement": _check_announcement,
                   "retention": _check_retention, "storage": _check_storage,
                   "privacy": _check_privacy, "sip": _check_sip, "web": _check_web}


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


def _check_version(source: str, version: int) -> None:
    """Older versions are read as they are (migration only adds); a newer one may mean keys
    this code would misread, so it is refused rather than half-understood."""
    if version < 1:
        raise ConfigError(f"{source}: key 'config_version': must be 1 or more")
    if version > CURRENT_VERSION:
        raise ConfigError(f"{source}: key 'config_version': {version} was written by a newer "
                          f"callrec (this one reads up to {CURRENT_VERSION}); upgrade the "
                          "software")


def parse(data: dict[str, Any], source: str = "<memory>") -> Config:
    """Validate a parsed TOML document into a Config, or raise ConfigError naming the key."""
    known = [*list(_SECTIONS), *list(_TOP_LEVEL)]
    sections: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TOP_LEVEL:
            top[key] = _coerce(f"{source}: key '{key}'", value, _TOP_LEVEL[key])
            if key == "config_version":
                _check_version(source, top[key])
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
        if key in _SECTION_CHECKS:
            values = _SECTION_CHECKS[key](source, values)
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
