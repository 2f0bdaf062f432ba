"""The diagnostics bundle: what support needs to find a fault, and nothing about anyone.

A ZIP a technician downloads from Settings > Diagnostics (or makes with `callrec diagnostics`
when the web UI is down) and sends to whoever supports the box. It holds:

- versions.json: callrec, Python, the OS (/etc/os-release), the kernel, the libraries and the
  C libraries under them (libsndfile, PortAudio), the board backend, the MCU's firmware and
  the HAT protocol this software speaks;
- status.json: the live status as the status page shows it (its whitelist: no number, no
  name), with the faults; storage.json: the storage report (volumes, use, retention);
- selftest.json: the last self-test the box kept, with the time it ran. A bundle never runs
  one: the self-test closes the announcement relay and plays a tone on the line, which is
  not something a download should do behind the technician's back; the page links to it;
- config.toml: the configuration as the daemon reads it (comments dropped: they may say
  anything), with credentials removed (`sip.trunk_username`, any key naming a password, a
  secret or a token; file paths stay, never a file's content) and the controller's identity
  and contacts masked (a small office's controller is often a person);
- logs/daemon.log: the daemon's last log records (callrec.logring, in its memory; the
  web page has them, the CLI has the journal instead when journalctl can read it);
  logs/install.log: the installer's log, if readable.

Logs hold no personal data by rule, but the bundle leaves the box, so every text in it goes
through `scrub` on its way in: phone-number-like digit runs and session-like tokens removed.
Building the bundle is pure (`build`); `collect_versions` and the log readers do the I/O.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import platform
import re
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from callrec import __version__
from callrec.config import Config

INSTALL_LOG = Path("/var/log/callrec/install.log")
OS_RELEASE = Path("/etc/os-release")
MAX_LOG_BYTES = 512 * 1024  # of a log file's end
LIBRARIES = ("bottle", "cheroot", "gpiozero", "pyserial", "tinydb", "numpy", "soundfile",
             "PyAudio")
REMOVED = "(removed)"
MASKED_SET, MASKED_EMPTY = "(set, masked)", "(empty)"
# Keys whose value is a credential (never a file path: `_file` keys name where it is).
_SECRET_KEY = re.compile(r"password|passphrase|secret|token|username|credential")
# The controller's identity and contacts: personal data when the controller is a person
# (a doctor's practice, a sole trader); support never needs them.
_MASKED = {("controller", "name"), ("controller", "address"), ("controller", "contact"),
           ("controller", "dpo_contact")}

# 8 or more digits, maybe with a leading + and spaces, dots, hyphens or brackets between
# them: every written form of a phone number ("+33 6 12 34 56 78", "06.12.34.56.78",
# "0612345678", "sip:0612345678@..."). Not inside a word (recording ids, hex), which the
# look-arounds ensure; dates and IPv4 addresses are put back by _keep.
_NUMBER = re.compile(r"(?<![\w.])\+?\d(?:[ .()\-]?\d){7,}(?!\w)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_PORTS = re.compile(r"\d{1,5}-\d{1,5}")  # a port range (sip.rtp_ports)
# A session id, CSRF or API token (secrets.token_urlsafe): 32+ URL-safe characters with both
# cases. SHA-256 digests and fingerprints (lowercase hex) stay: support needs them.
_TOKEN = re.compile(r"(?<![\w-])[A-Za-z0-9_\-]{32,}(?![\w-])")


def _keep(match: re.Match[str]) -> str:
    text = match.group(0)
    if _IPV4.fullmatch(text) or _PORTS.fullmatch(text) or _DATE.match(text):
        return text
    return "[number removed]"


def _token(match: re.Match[str]) -> str:
    text = match.group(0)
    mixed = any(c.isupper() for c in text) and any(c.islower() for c in text)
    return "[token removed]" if mixed else text


def scrub(text: str) -> str:
    """`text` without anything that looks like a phone number or a session token."""
    return _TOKEN.sub(_token, _NUMBER.sub(_keep, text))


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {str(k): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


# -- the configuration ------------------------------------------------------------------------
def redacted_config(config: Config) -> dict[str, Any]:
    """The configuration's values, credentials removed and the controller masked."""
    out: dict[str, Any] = {}
    for f in fields(Config):
        value = getattr(config, f.name)
        if f.name == "source":
            continue
        if not hasattr(value, "__dataclass_fields__"):
            out[f.name] = value
            continue
        section: dict[str, Any] = {}
        for sub in fields(value):
            item = getattr(value, sub.name)
            if (f.name, sub.name) in _MASKED:
                item = MASKED_SET if item else MASKED_EMPTY
            elif _SECRET_KEY.search(sub.name) and not sub.name.endswith(("_file", "_path")):
                item = REMOVED if item else item
            section[sub.name] = item
        out[f.name] = section
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def to_toml(doc: dict[str, Any]) -> str:
    """A flat two-level document (top-level keys, then tables) as TOML."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


# -- gathering (I/O) -----------------------------------------------------------------------------
def _os_release(path: Path = OS_RELEASE) -> dict[str, str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    release: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("PRETTY_NAME", "ID", "VERSION_ID", "VERSION_CODENAME"):
            release[key] = value.strip().strip('"')
    return release


def _library_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _c_libraries() -> dict[str, str | None]:
    """libsndfile and PortAudio as loaded by their Python bindings (the daemon has PortAudio
    loaded already; libsndfile costs a few MB of mappings the first time, once)."""
    out: dict[str, str | None] = {"libsndfile": None, "portaudio": None}
    try:
        import soundfile

        out["libsndfile"] = str(soundfile.__libsndfile_version__)
    except (ImportError, OSError, AttributeError):
        pass
    try:
        import pyaudio

        out["portaudio"] = str(pyaudio.get_portaudio_version_text())
    except (ImportError, OSError, AttributeError):
        pass
    return out


def collect_versions(config: Config, status: dict[str, Any] | None) -> dict[str, Any]:
    from callrec.board.hat_protocol import PROTOCOL_VERSION

    board = (status or {}).get("board") or {}
    return {
        "callrec": __version__,
        "python": sys.version.split()[0],
        "os": _os_release(),
        "kernel": f"{platform.system()} {platform.release()} {platform.version()} "
                  f"{platform.machine()}",
        "libraries": _library_versions(),
        "c_libraries": _c_libraries(),
        "board": {
            "backend": config.board.backend,
            "mcu_firmware": board.get("mcu_version"),
            "mcu_connected": board.get("mcu_connected"),
            # What this software speaks; the MCU's own is in the self-test's board line.
            "protocol_version": PROTOCOL_VERSION,
        },
    }


def read_log_tail(path: Path, max_bytes: int = MAX_LOG_BYTES) -> tuple[str | None, str]:
    """The end of a log file and a note: (None, why) when it cannot be read."""
    try:
        with path.open("rb") as f:
            f.seek(0, io.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return None, f"{path}: absent (the installer did not write one on this box)"
    except OSError as exc:
        return None, f"{path}: not readable ({exc.strerror})"
    note = f"{path}: the last {len(data)} of {size} bytes" if size > len(data) else str(path)
    return data.decode("utf-8", errors="replace"), note


# -- the bundle ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Log:
    """A log for the bundle: its text, or None and the reason it is absent."""

    text: str | None
    note: str


@dataclass(frozen=True)
class Inputs:
    created_at: datetime
    made_by: str  # "the web UI" or "callrec diagnostics"
    config: Config
    versions: dict[str, Any]
    status: dict[str, Any] | None  # as the status page shows it (linestatus.sanitize)
    storage: dict[str, Any] | None
    selftest: dict[str, Any] | None
    logs: dict[str, Log]  # member name under logs/ -> the log


def bundle_name(now: datetime) -> str:
    return f"callrec-diagnostics-{now.strftime('%Y%m%d-%H%M%S')}.zip"


def _readme(inputs: Inputs, members: Iterable[str]) -> str:
    report = inputs.selftest
    selftest = (f"the last one kept, run {report.get('started_at')} ({report.get('mode')})"
                if report else "none kept since the box started (run one on the Self-test "
                "page or with `callrec selftest`, then make a new bundle)")
    logs = "\n".join(f"  logs/{name}: {log.note}" for name, log in inputs.logs.items())
    return (
        f"callrec diagnostics bundle\n"
        f"made {inputs.created_at.isoformat(timespec='seconds')} by {inputs.made_by}, "
        f"callrec {__version__}\n\n"
        "Holds no recording, phone number, name, key, password hash or session token: the\n"
        "configuration's credentials are removed, the controller's identity and contacts\n"
        "masked, and every text was scrubbed of number-like digit runs and tokens.\n\n"
        f"Files: {', '.join(members)}\n"
        f"Self-test: {selftest}\n"
        f"Logs:\n{logs}\n"
    )


def build(inputs: Inputs) -> bytes:
    """The bundle's ZIP (deflated), every text scrubbed."""
    members: dict[str, str] = {
        "versions.json": json.dumps(inputs.versions, indent=1),
        "status.json": json.dumps(inputs.status, indent=1),
        "storage.json": json.dumps(inputs.storage, indent=1),
        "selftest.json": json.dumps(inputs.selftest or {"none": "no self-test kept"},
                                    indent=1),
        "config.toml": to_toml(redacted_config(inputs.config)),
    }
    for name, log in inputs.logs.items():
        members[f"logs/{name}"] = log.text if log.text is not None else f"({log.note})\n"
    members = {"README.txt": _readme(inputs, ["README.txt", *members]), **members}
    stamp = max((1980, 1, 1, 0, 0, 0), tuple(inputs.created_at.timetuple())[:6])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            if name.endswith(".json"):
                text = json.dumps(_scrub_value(json.loads(text)), indent=1, ensure_ascii=False)
            else:
                text = scrub(text)
            info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, text.encode("utf-8"))
    return out.getvalue()


# -- from the command line (the web UI may be down) ------------------------------------------------
JOURNAL_LINES = 2000


def _journal() -> Log:
    """The service's journal, when journalctl is there and may read it (the web layer never
    runs a command; the CLI may)."""
    import shutil
    import subprocess

    tool = shutil.which("journalctl")
    if tool is None:
        return Log(None, "journalctl not found: no journal on this system")
    try:
        done = subprocess.run(  # a fixed command line, no shell
            [tool, "-u", "callrec", "-n", str(JOURNAL_LINES), "--no-pager", "-o", "short-iso"],
            capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Log(None, f"journalctl failed: {exc}")
    text = done.stdout.decode("utf-8", errors="replace")
    if done.returncode != 0 or text.strip() in ("", "-- No entries --"):
        why = done.stderr.decode("utf-8", errors="replace").strip()[:200]
        return Log(None, f"journalctl gave nothing ({why or 'no entries'}); run as root or a "
                         "member of systemd-journal to include it")
    return Log(text, f"journalctl -u callrec, the last {JOURNAL_LINES} lines")


def from_cli(config: Config, now: datetime) -> bytes:
    """The bundle made by `callrec diagnostics`: the status, storage report and self-test
    from the files the daemon keeps in its runtime directory, the journal instead of the
    daemon's in-memory log."""
    from callrec.selftest_run import load_report
    from callrec_web.linestatus import sanitize

    try:
        raw: dict[str, Any] = json.loads(config.status_path.read_text())
    except (OSError, ValueError):
        raw = {}
    status = sanitize(raw) if raw else None
    report = load_report(config)
    logs = {
        "daemon.log": Log(None, "the daemon's recent records are in its memory: download the "
                                "bundle from the web UI to have them; see journal.log"),
        "journal.log": _journal(),
        "install.log": Log(*read_log_tail(INSTALL_LOG)),
    }
    storage = raw.get("storage")
    return build(Inputs(
        created_at=now, made_by="callrec diagnostics", config=config,
        versions=collect_versions(config, status), status=status,
        storage=storage if isinstance(storage, dict) else None,
        selftest=report.as_dict() if report is not None else None, logs=logs))
