"""Web accounts in one JSON file, shared by the web process and the `callrec user` CLI.

Every write is a read-modify-write under an exclusive fcntl lock on a sibling lock file,
finished by an atomic replace, so two processes never lose each other's changes and a crash
leaves the old or the new file. Passwords are hashed with scrypt; API tokens are stored as
SHA-256 hashes only (a token is 256 random bits, so a fast hash is enough).
"""

from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callrec.storage.atomic_json import write_atomic

ROLES = ("admin", "technician", "supervisor", "privacy_officer")
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
PASSWORD_MIN = 10
PASSWORD_MAX = 128
TOKEN_LABEL_MAX = 64
MAX_TOKENS_PER_USER = 20

# OWASP's scrypt settings for 8 MiB of memory (Password Storage Cheat Sheet: N=2^13, r=8,
# p=10). The lanes run one after another, so a login costs 8 MiB whatever p is: a Pi Zero has
# little memory to spare, and the daemon's RSS budget is 60 MB. Records keep their own
# parameters and are re-hashed with these at the next successful login.
_SCRYPT = {"n": 2**13, "r": 8, "p": 10}
_SCRYPT_MAXMEM = 32 * 1024 * 1024
_SALT_BYTES = 16
_KEY_BYTES = 32
_FORMAT_VERSION = 1


class UserError(ValueError):
    """A user operation was refused; `code` names the reason for the UI's message table."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UserStoreCorrupt(UserError):
    """users.json exists but cannot be read: fail closed rather than reopen first-start setup."""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    label: str
    created_at: str


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str]
    created_at: str
    tokens: tuple[TokenInfo, ...] = ()


# -- validation ------------------------------------------------------------------------------
def check_username(name: str) -> str:
    """Return the name if it is a valid username, else raise UserError."""
    if not isinstance(name, str) or not USERNAME_RE.match(name):
        raise UserError(
            "username_invalid",
            "username must be 2-32 characters: a lowercase letter, then a-z 0-9 . _ -",
        )
    return name


def check_password(password: str, name: str | None = None) -> str:
    """Return the password (NFC-normalised) if the policy accepts it, else raise UserError."""
    if not isinstance(password, str):
        raise UserError("password_length", "password must be text")
    password = unicodedata.normalize("NFC", password)
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise UserError(
            "password_length", f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
        )
    if name is not None and password.lower() == name.lower():
        raise UserError("password_is_username", "password must not be the username")
    return password


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    """Return the roles as a set if all are known and there is at least one."""
    chosen = frozenset(roles)
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise UserError("role_invalid", f"unknown role(s): {', '.join(unknown)}")
    if not chosen:
        raise UserError("role_missing", "an account needs at least one role")
    return chosen


# -- hashing ---------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> dict[str, Any]:
    """A scrypt record with its parameters, so they can be raised later without a migration."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(
        unicodedata.normalize("NFC", password).encode(),
        salt=salt,
        dklen=_KEY_BYTES,
        maxmem=_SCRYPT_MAXMEM,
        **_SCRYPT,
    )
    return {"alg": "scrypt", **_SCRYPT, "salt": _b64(salt), "hash": _b64(key)}


def _password_matches(record: dict[str, Any], password: str) -> bool:
    try:
        n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
        # Bounds: a tampered file must not make one login cost gigabytes of memory or minutes.
        if record.get("alg") != "scrypt" or not (
            2 <= n <= 2**16 and 1 <= r <= 16 and 1 <= p <= 16 and n * r * p <= 2**20
        ):
            return False
        salt = base64.b64decode(record["salt"], validate=True)
        expected = base64.b64decode(record["hash"], validate=True)
    except (KeyError, TypeError, ValueError):
        return False
    key = hashlib.scrypt(
        unicodedata.normalize("NFC", password).encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=len(expected),
        maxmem=_SCRYPT_MAXMEM * 4,
    )
    return hmac.compare_digest(key, expected)


def _outdated(record: dict[str, Any]) -> bool:
    return any(record.get(k) != v for k, v in _SCRYPT.items())


@functools.cache
def _dummy_record() -> dict[str, Any]:
    """Unknown usernames are checked against this, so a login takes as long whether or not
    the account exists (no username enumeration by timing). Made on first use, not at import:
    the hash's 8 MiB would otherwise be the daemon's start-up peak."""
    return hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the store -------------------------------------------------------------------------------
class UserStore:
    """Accounts, roles, password hashes and API token hashes in `path` (users.json)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()
        self._cache_key: tuple[int, int, int, int] | None = None
        self._cache: dict[str, dict[str, Any]] = {}

    # -- file access -------------------------------------------------------------------------
    @staticmethod
    def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def _read(self) -> dict[str, dict[str, Any]]:
        """The users table; re-parsed only when the file changed (it is read per request)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        key = self._stat_key(st)
        with self._thread_lock:
            if key == self._cache_key:
                return self._cache
        try:
            doc = json.loads(self.path.read_bytes())
            users = doc["users"]
            if doc.get("version") != _FORMAT_VERSION or not isinstance(users, dict):
                raise ValueError("unexpected format")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserStoreCorrupt("users_corrupt", f"{self.path}: unreadable ({exc})") from None
        with self._thread_lock:
            self._cache_key, self._cache = key, users
        return users

    @contextmanager
    def _writing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Yield a copy of the table to change; it is written back when the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            users = json.loads(json.dumps(self._read()))  # deep copy: the cache stays intact
            yield users
            doc = {"version": _FORMAT_VERSION, "users": users}
            write_atomic(self.path, json.dumps(doc, indent=1, sort_keys=True).encode())
            st = os.stat(self.path)
            with self._thread_lock:
                self._cache_key, self._cache = self._stat_key(st), users
        finally:
            os.close(fd)  # closing releases the lock

    @staticmethod
    def _user(name: str, rec: dict[str, Any]) -> User:
        tokens = tuple(
            TokenInfo(t["id"], t["label"], t.get("created_at", "")) for t in rec.get("tokens", [])
        )
        return User(name, frozenset(rec.get("roles", [])), rec.get("created_at", ""), tokens)

    # -- reads -------------------------------------------------------------------------------
    def has_users(self) -> bool:
        """True once any account exists (first-start setup is then closed for good)."""
        return bool(self._read())

    def get(self, name: str) -> User | None:
        rec = self._read().get(name) if isinstance(name, str) else None
        return self._user(name, rec) if rec else None

    def list(self) -> list[User]:
        return [self._user(n, r) for n, r in sorted(self._read().items())]

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right, else None; same cost for unknown names."""
        rec = self._read().get(name) if isinstance(name, str) else None
        record = rec["password"] if rec else _dummy_record()
        ok = _password_matches(record, password if isinstance(password, str) else "")
        if not (rec and ok):
            return None
        if _outdated(record):
            self._rehash(name, password)
        return self._user(name, rec)

    def _rehash(self, name: str, password: str) -> None:
        """Re-hash a verified password with today's parameters (raised since it was set)."""
        with self._writing() as users:
            if name in users and _password_matches(users[name]["password"], password):
                users[name]["password"] = hash_password(password)

    def user_for_token(self, token: str) -> User | None:
        """The owner of an API token, or None if the token is unknown or revoked."""
        if not isinstance(token, str) or not 20 <= len(token) <= 128:
            return None
        digest = _token_hash(token)
        found: User | None = None
        for name, rec in self._read().items():
            for t in rec.get("tokens", []):
                if hmac.compare_digest(t.get("sha256", ""), digest):
                    found = self._user(name, rec)
        return found

    # -- writes ------------------------------------------------------------------------------
    def add_user(
        self, name: str, password: str, roles: Iterable[str], *, only_if_none: bool = False
    ) -> User:
        """Create an account. With only_if_none, refuse unless the store is empty (first start)."""
        check_username(name)
        password = check_password(password, name)
        chosen = check_roles(roles)
        record = hash_password(password)
        with self._writing() as users:
            if only_if_none and users:
                raise UserError("setup_done", "an account already exists")
            if name in users:
                raise UserError("user_exists", f"user {name} already exists")
            users[name] = {
                "roles": sorted(chosen),
                "password": record,
                "created_at": _now(),
                "tokens": [],
            }
            return self._user(name, users[name])

    def set_password(self, name: str, password: str) -> None:
        password = check_password(password, name)
        record = hash_password(password)
        with self._writing() as users:
            self._require(users, name)["password"] = record

    def set_roles(self, name: str, roles: Iterable[str]) -> None:
        chosen = check_roles(roles)
        with self._writing() as users:
            self._require(users, name)["roles"] = sorted(chosen)

    def delete(self, name: str) -> None:
        with self._writing() as users:
            self._require(users, name)
            del users[name]

    def create_token(self, user: str, label: str) -> str:
        """Make an API token for `user`; the token is returned once and never stored."""
        label = label.strip() if isinstance(label, str) else ""
        if not 1 <= len(label) <= TOKEN_LABEL_MAX or not label.isprintable():
            raise UserError("label_invalid", f"label must be 1 to {TOKEN_LABEL_MAX} characters")
        token = secrets.token_urlsafe(32)
        with self._writing() as users:
            tokens = self._require(users, user).setdefault("tokens", [])
            if len(tokens) >= MAX_TOKENS_PER_USER:
                raise UserError("too_many_tokens", "too many tokens: revoke one first")
            tokens.append(
                {
                    "id": secrets.token_hex(8),
                    "label": label,
                    "sha256": _token_hash(token),
                    "created_at": _now(),
                }
            )
        return token

    def revoke_token(self, user: str, token_id: str) -> None:
        """Remove one of `user`'s tokens by its id."""
        with self._writing() as users:
            rec = self._require(users, user)
            kept = [t for t in rec.get("tokens", []) if t.get("id") != token_id]
            if len(kept) == len(rec.get("tokens", [])):
                raise UserError("no_such_token", "no such token")
            rec["tokens"] = kept

    @staticmethod
    def _require(users: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
        rec = users.get(name)
        if rec is None:
            raise UserError("no_such_user", f"no user {name}")
        return rec
