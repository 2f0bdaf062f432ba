"""Configuration backup and restore: the archive's builder and reader (pure: bytes in, bytes
or values out; the web page and its tests do the I/O).

What a backup holds, and why:

- `callrec.toml`, the configuration file's text as it is (comments included: they are the
  office's notes on why a value was chosen), so that a replacement box behaves as the old one.
- `donotrecord.json`, the do-not-record list (objections), when the technician includes it
  (the default). Losing it on a replacement box would record the people who objected, the
  worse error; but it is made of phone numbers, personal data, so an archive that holds it
  is always encrypted with a passphrase the technician types (scrypt, then AES-256-GCM
  through storage/aead.py). Never with the device key: a backup must open on a replacement
  box, whose device key is another.
- `manifest.json`: format and its version, callrec's version, the configuration's schema
  version, the creation time, and the size and SHA-256 of every other member.

What it never holds: recordings, their keys, the device key or what wraps it, the TLS private
key, password files (`sip.trunk_password_file` is a path in the configuration, its content
stays on the box), accounts and their password hashes (a replacement box gets its accounts
from its first administrator), the access log and the subject requests (records of this box,
not settings). Announcement prompts are not in it either: a recorded prompt is hundreds of kB,
far over what the restore upload takes, and is put back on the Announcements page.

The archive is a ZIP (readable with any tool when not encrypted). Encrypted, it is wrapped:

    0  8  magic b"CRCBKENC"
    8  1  envelope version (1)
    9  1  log2 of scrypt's N     10  1  scrypt's r     11  1  scrypt's p
   12 16  salt                   28 12  nonce          40 16  passphrase check
   56  .  AES-256-GCM(ZIP) with the 56 header bytes as associated data, then the 16-byte tag

The key is scrypt(passphrase, salt); the check (HKDF of the key) tells a wrong passphrase
from a damaged file; the tag covers every byte, so nothing can be changed unnoticed.

Restoring validates everything before anything changes (`read`), then the caller shows what
would change (`changed_keys`, `plan_list`) and applies it after a confirmation.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import struct
import tomllib
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callrec.config import Config, ConfigError, parse
from callrec.config_store import changed_keys
from callrec.privacy.donotrecord import KINDS, Entry, normalise_number, normalise_prefix
from callrec.storage.aead import AESGCM, InvalidTag, hkdf_sha256

FORMAT = "callrec-config-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG_MEMBER = "callrec.toml"
LIST_MEMBER = "donotrecord.json"
SUFFIX = ".cbk"

# The restore page takes the archive in a form, and the web layer refuses bodies over
# 64 KiB (access.MAX_FORM_BYTES): leave room for the form's other fields. A backup is
# refused at creation if it is bigger, so no one keeps a backup that cannot be restored.
# A configuration is a few kB; a compressed list of 1000 numbers about 15 kB.
MAX_ARCHIVE_BYTES = 56 * 1024
MAX_MEMBER_BYTES = 1024 * 1024  # uncompressed: a zip bomb is refused before it is inflated
PASSPHRASE_MIN = 12  # the archive can be attacked offline, with no rate limit
PASSPHRASE_MAX = 256

MAGIC = b"CRCBKENC"
ENVELOPE_VERSION = 1
_HEAD = struct.Struct("<8sBBBB16s12s16s")
HEAD_BYTES = _HEAD.size  # 56
# scrypt at 16 MiB (128 * r * N): a Pi Zero has little memory to spare; p = 4 makes it
# about four times users.py's login cost, for an archive that may leave the building.
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 14, 8, 4
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_ZIP_TIME_MIN = (1980, 1, 1, 0, 0, 0)


class BackupError(ValueError):
    """The archive cannot be made or used; `code` names the reason for the page's text,
    `detail` is an optional technical detail (e.g. the configuration error)."""

    def __init__(self, code: str, text: str, detail: str = "") -> None:
        super().__init__(f"{text}: {detail}" if detail else text)
        self.code, self.text, self.detail = code, text, detail


@dataclass(frozen=True)
class Backup:
    """A validated archive's content."""

    config_text: str
    config: Config
    manifest: dict[str, Any]
    encrypted: bool
    do_not_record: tuple[Entry, ...] | None = None  # None: the list is not in this backup


@dataclass(frozen=True)
class ListPlan:
    """What restoring the list does: entries added; already listed; on this box only (kept:
    an objection is only withdrawn on the do-not-record page, never by a restore)."""

    add: tuple[Entry, ...] = ()
    present: int = 0
    kept: int = 0


@dataclass(frozen=True)
class Preview:
    """What a restore would change, shown before it is confirmed: key names, never values."""

    changed: tuple[str, ...]
    identical_text: bool
    plan: ListPlan | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_name(now: datetime) -> str:
    """The download's name: a date and time, nothing about the office or the box."""
    return f"callrec-config-{now.strftime('%Y%m%d-%H%M%S')}{SUFFIX}"


def normalise_passphrase(passphrase: str) -> bytes:
    # NFC: the same typed text from another keyboard or system gives the same bytes.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def check_config_text(text: str, source: str = f"backup: {CONFIG_MEMBER}") -> Config:
    """The configuration the text describes, read as the daemon reads it (config.parse: the
    schema, and a config_version newer than this code refused), or BackupError saying why.
    The restore writes it through config_store, which checks it once more."""
    try:
        return parse(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        raise BackupError("bad_config", "the configuration in the backup is not valid TOML",
                          str(exc)) from None
    except ConfigError as exc:
        if "key 'config_version'" in str(exc):
            raise BackupError("newer_config", "the configuration in the backup was written "
                              "for a newer version of callrec", str(exc)) from None
        raise BackupError("bad_config", "the configuration in the backup is not valid",
                          str(exc)) from None


def declared_version(text: str) -> int:
    """The schema version the (valid) file says it was written for: 1 when it does not say
    (the daemon migrates older files as it reads them; the manifest records the file's own)."""
    version = tomllib.loads(text).get("config_version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


# -- building ------------------------------------------------------------------------------------
def _list_json(entries: Iterable[Entry]) -> bytes:
    doc = {"version": 1, "entries": [
        {"value": e.value, "kind": e.kind, "reason": e.reason, "added_at": e.added_at}
        for e in entries]}
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()


def build(config_text: str, *, now: datetime, version: str,
          do_not_record: Iterable[Entry] | None = None, passphrase: str | None = None,
          salt: bytes | None = None, nonce: bytes | None = None) -> bytes:
    """The archive. `do_not_record` (the list's entries) needs a passphrase: it is then
    encrypted, as is everything else. Raises BackupError if the configuration would not
    restore, the passphrase is too short, or the archive is over MAX_ARCHIVE_BYTES."""
    check_config_text(config_text, f"this box's configuration ({CONFIG_MEMBER})")
    if do_not_record is not None and not passphrase:
        raise BackupError("need_passphrase", "a backup with the do-not-record list needs a "
                          "passphrase: the list is personal data")
    if passphrase is not None and not PASSPHRASE_MIN <= len(passphrase) <= PASSPHRASE_MAX:
        raise BackupError("short_passphrase", "the passphrase must have at least "
                          f"{PASSPHRASE_MIN} characters")
    members: dict[str, bytes] = {CONFIG_MEMBER: config_text.encode("utf-8")}
    if do_not_record is not None:
        members[LIST_MEMBER] = _list_json(do_not_record)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "callrec_version": version,
        "config_version": declared_version(config_text),
        "created_at": now.isoformat(timespec="seconds"),
        "encrypted": passphrase is not None,
        "members": {name: {"size": len(data), "sha256": sha256(data)}
                    for name, data in members.items()},
    }
    stamp = max(_ZIP_TIME_MIN, tuple(now.timetuple())[:6])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [(MANIFEST, json.dumps(manifest, indent=1).encode()),
                           *members.items()]:
            info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, data)
    archive = out.getvalue()
    if passphrase is not None:
        archive = seal(archive, passphrase, salt=salt, nonce=nonce)
    if len(archive) > MAX_ARCHIVE_BYTES:
        raise BackupError("too_large", "the backup would be larger than the restore page "
                          f"accepts ({MAX_ARCHIVE_BYTES // 1024} KiB)", f"{len(archive)} bytes")
    return archive


def _derive(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(normalise_passphrase(passphrase), salt=salt, n=1 << log2_n, r=r,
                          p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)


def _check_value(key: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(key, b"callrec backup check v1" + salt, 16)


def seal(archive: bytes, passphrase: str, *, salt: bytes | None = None,
         nonce: bytes | None = None) -> bytes:
    """`archive` encrypted under the passphrase (the envelope in the module's docstring)."""
    salt = salt or secrets.token_bytes(16)
    nonce = nonce or secrets.token_bytes(12)
    key = _derive(passphrase, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    head = _HEAD.pack(MAGIC, ENVELOPE_VERSION, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, salt, nonce,
                      _check_value(key, salt))
    cipher = AESGCM(hkdf_sha256(key, b"callrec backup v1"))
    return head + cipher.encrypt(nonce, archive, head)


def is_encrypted(blob: bytes) -> bool:
    return blob[: len(MAGIC)] == MAGIC


def unseal(blob: bytes, passphrase: str) -> bytes:
    """The ZIP inside an encrypted archive; BackupError if the passphrase is wrong or the
    file was changed or cut short."""
    if len(blob) < HEAD_BYTES + 16:
        raise BackupError("damaged", "the backup file is damaged or incomplete")
    _magic, version, log2_n, r, p, salt, nonce, check = _HEAD.unpack(blob[:HEAD_BYTES])
    if version > ENVELOPE_VERSION:
        raise BackupError("newer_format", "this backup was made by a newer version of callrec")
    # Bounds before scrypt runs: a crafted header must not make the box allocate gigabytes.
    if not (10 <= log2_n <= 17 and 1 <= r <= 16 and 1 <= p <= 16
            and 128 * r * (1 << log2_n) <= _SCRYPT_MAXMEM // 2):
        raise BackupError("damaged", "the backup file is damaged or incomplete")
    if not passphrase:
        raise BackupError("need_passphrase", "this backup is encrypted: type its passphrase")
    key = _derive(passphrase, salt, log2_n, r, p)
    if not hmac.compare_digest(_check_value(key, salt), check):
        raise BackupError("wrong_passphrase", "wrong passphrase for this backup")
    try:
        return AESGCM(hkdf_sha256(key, b"callrec backup v1")).decrypt(
            nonce, blob[HEAD_BYTES:], blob[:HEAD_BYTES])
    except InvalidTag:
        raise BackupError("damaged", "the backup file is damaged, incomplete or was "
                          "changed") from None


# -- reading -------------------------------------------------------------------------------------
def _members(archive: bytes) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise BackupError("damaged", "the backup file is damaged or incomplete") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if MANIFEST not in names:
            raise BackupError("not_backup", "this file is not a callrec configuration backup")
        allowed = {MANIFEST, CONFIG_MEMBER, LIST_MEMBER}
        if len(set(names)) != len(names) or not set(names) <= allowed:
            raise BackupError("damaged", "the backup holds unexpected files",
                              ", ".join(sorted(set(names) - allowed)) or "duplicates")
        out: dict[str, bytes] = {}
        for info in infos:
            if info.file_size > MAX_MEMBER_BYTES:
                raise BackupError("damaged", "the backup holds a file too large to be one of "
                                  "ours", info.filename)
            try:
                with zf.open(info) as member:
                    data = member.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
                raise BackupError("damaged", "the backup file is damaged or incomplete",
                                  info.filename) from None
            if len(data) > MAX_MEMBER_BYTES:
                raise BackupError("damaged", "the backup holds a file too large to be one of "
                                  "ours", info.filename)
            out[info.filename] = data
        return out


def _manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackupError("not_backup", "this file is not a callrec configuration backup") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not_backup", "this file is not a callrec configuration backup")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BackupError("damaged", "the backup's manifest is damaged", "format_version")
    if version > FORMAT_VERSION:
        raise BackupError("newer_format", "this backup was made by a newer version of callrec",
                          f"format {version}")
    if not isinstance(manifest.get("members"), dict):
        raise BackupError("damaged", "the backup's manifest is damaged", "members")
    return manifest


def _entries(raw: bytes) -> tuple[Entry, ...]:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackupError("bad_list", "the do-not-record list in the backup is damaged") \
            from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise BackupError("bad_list", "the do-not-record list in the backup is damaged")
    entries: list[Entry] = []
    for item in doc["entries"]:
        if not isinstance(item, dict) or item.get("kind") not in KINDS:
            raise BackupError("bad_list", "the do-not-record list in the backup is damaged")
        value, kind = item.get("value"), str(item["kind"])
        normal = normalise_prefix(value) if kind == "prefix" else normalise_number(value)
        if not normal or normal != value:
            raise BackupError("bad_list", "the do-not-record list in the backup is damaged")
        entries.append(Entry(normal, kind, str(item.get("reason", ""))[:200],
                             str(item.get("added_at", ""))[:40]))
    return tuple(entries)


def read(blob: bytes, passphrase: str = "") -> Backup:
    """Validate an archive completely (size, envelope, manifest, digests, formats, the
    configuration through config.parse, the list's entries) and return its content; any
    problem raises BackupError, and nothing has been touched."""
    if len(blob) > MAX_ARCHIVE_BYTES:
        raise BackupError("too_large", "this file is too large to be a callrec configuration "
                          "backup")
    encrypted = is_encrypted(blob)
    if encrypted:
        archive = unseal(blob, passphrase)
    elif blob[:4] == b"PK\x03\x04":
        archive = blob
    else:
        raise BackupError("not_backup", "this file is not a callrec configuration backup")
    members = _members(archive)
    manifest = _manifest(members.pop(MANIFEST))
    listed = manifest["members"]
    if set(listed) != set(members):
        raise BackupError("damaged", "the backup's files do not match its manifest")
    for name, data in members.items():
        expected = listed[name]
        if (not isinstance(expected, dict) or expected.get("size") != len(data)
                or not hmac.compare_digest(str(expected.get("sha256", "")), sha256(data))):
            raise BackupError("damaged", "a file in the backup does not match its manifest "
                              "(changed or damaged)", name)
    if CONFIG_MEMBER not in members:
        raise BackupError("damaged", "the backup holds no configuration")
    if LIST_MEMBER in members and not encrypted:
        # Only ever written encrypted: a plain one was made or edited by someone else.
        raise BackupError("damaged", "the backup holds a do-not-record list without "
                          "encryption: it was not made by callrec")
    try:
        text = members[CONFIG_MEMBER].decode("utf-8")
    except UnicodeDecodeError:
        raise BackupError("bad_config", "the configuration in the backup is not UTF-8 text") \
            from None
    config = check_config_text(text)
    if manifest.get("config_version") != declared_version(text):
        raise BackupError("damaged", "the backup's manifest does not match its configuration",
                          "config_version")
    entries = _entries(members[LIST_MEMBER]) if LIST_MEMBER in members else None
    return Backup(text, config, manifest, encrypted, entries)


# -- what would change ---------------------------------------------------------------------------
def plan_list(current: Iterable[Entry], backup: Iterable[Entry]) -> ListPlan:
    """Restoring the list adds what the backup has and this box lacks, and removes nothing."""
    here = {(e.value, e.kind) for e in current}
    wanted: dict[tuple[str, str], Entry] = {}
    for e in backup:
        wanted.setdefault((e.value, e.kind), e)
    add = tuple(e for k, e in wanted.items() if k not in here)
    return ListPlan(add, len(wanted) - len(add), len(here - set(wanted)))


def preview(current_text: str, backup: Backup, current_list: Iterable[Entry] | None
            ) -> Preview:
    """What restoring `backup` over this box's configuration text and list would change:
    the keys as config_store counts them (the access log names the same ones)."""
    plan = None
    if backup.do_not_record is not None:
        plan = plan_list(current_list or (), backup.do_not_record)
    return Preview(changed_keys(current_text, backup.config_text) if current_text else (),
                   current_text == backup.config_text, plan, backup.manifest)
