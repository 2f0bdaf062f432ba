"""The prompt library: every announcement version ever installed, and which one plays.

A *slot* is a (direction, language) pair: "in/fr", "out/en". Each slot has numbered versions
(kept forever: the proof in an old recording must still name a file that exists) and at most
one active version, with when and by whom it was made active; every activation is also kept
in a history.

On disk, under the announcement directory:

    library/state.json       versions' metadata, active versions, history (one file, so that
                             one atomic rename moves the whole library from a state to the next)
    library/<slot-n>.wav     the converted audio, e.g. library/in-fr-3.wav; never a name
                             taken from the upload

Writes are temp file + fsync + rename (+ fsync of the folder): a power cut at any instant
leaves either the previous state or the new one. A version's audio is durable before the state
that names it, so a state never names a missing file.

The installer's prompts (`<directory>/<stem>.wav`, [announcement] incoming/outgoing) are
adopted as version 1 of their slot; when the installer or `callrec prompts generate` writes
a new one, it becomes a new version, active if an installer's version was active.

Which languages play, per direction: [announcement] incoming_languages / outgoing_languages
("fr", "en", "fr en": in that order, one after the other). Unset, the direction plays one
prompt, its stem's language (a stem that is not a language code counts as French, the
product's first language), which is how every configuration before the library behaved.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callrec.announcement import Prompt, PromptError, load_prompt
from callrec.config import ANNOUNCEMENT_LANGUAGES, AnnouncementConfig, parse_language_list
from callrec.storage.atomic_json import fsync_dir, write_atomic

DIRECTIONS = ("in", "out")
LANGUAGES = ANNOUNCEMENT_LANGUAGES
DEFAULT_LANGUAGE = "fr"
INSTALLER = "installer"  # who "uploaded" an adopted prompt
GAP_S = 0.5  # silence between two languages, so the second does not run into the first
LIBRARY = "library"
STATE = "state.json"
MAX_LABEL = 60
_VERSION_RE = re.compile(r"(in|out)-(fr|en)-([1-9][0-9]{0,5})")


class LibraryError(ValueError):
    """A request the library cannot honour (unknown version, wrong slot); says which."""


# -- pure: configuration ----------------------------------------------------------------------
def parse_languages(text: str) -> list[str]:
    """ "fr en" / "fr,en" -> ["fr", "en"]; ValueError naming what is wrong."""
    return parse_language_list(text)


def stem_of(config: AnnouncementConfig, direction: str) -> str:
    return config.incoming if direction == "in" else config.outgoing


def played_languages(config: AnnouncementConfig, direction: str) -> list[str]:
    """The languages announced, in order, for calls in `direction`."""
    text = config.incoming_languages if direction == "in" else config.outgoing_languages
    if text.strip():
        return parse_languages(text)
    stem = stem_of(config, direction)
    return [stem if stem in LANGUAGES else DEFAULT_LANGUAGE]


def legacy_stem(config: AnnouncementConfig, direction: str, lang: str) -> str:
    """The installer's file for a slot: the direction's stem for its own language (or for the
    first played language when the stem is not a language code), else <lang>.wav, which is
    what the installer writes for every language."""
    stem = stem_of(config, direction)
    if stem == lang or (stem not in LANGUAGES and lang == played_languages(config, direction)[0]):
        return stem
    return lang


def slot(direction: str, lang: str) -> str:
    if direction not in DIRECTIONS or lang not in LANGUAGES:
        raise LibraryError(f"no slot for direction {direction!r} and language {lang!r}")
    return f"{direction}/{lang}"


def safe_label(name: str) -> str:
    """A label for people from an uploaded file's name: no folders, no extension, letters,
    digits and a few separators only, at most MAX_LABEL characters. Kept in the metadata,
    never used in a path."""
    base = re.split(r"[\\/]", name)[-1]
    base = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    kept = "".join(c if (unicodedata.category(c)[0] in "LN" or c in " -_.()") else " "
                   for c in unicodedata.normalize("NFC", base))
    return " ".join(kept.split())[:MAX_LABEL].strip(" .")


# -- pure: state transitions ------------------------------------------------------------------
def empty_state() -> dict[str, Any]:
    return {"format": 1, "versions": {}, "active": {}, "history": []}


def versions_of(state: dict[str, Any], slot_name: str) -> list[dict[str, Any]]:
    """The slot's versions, newest first."""
    found = [v for v in state["versions"].values() if v["slot"] == slot_name]
    return sorted(found, key=lambda v: v["number"], reverse=True)


def next_version_id(state: dict[str, Any], slot_name: str) -> str:
    number = max((v["number"] for v in versions_of(state, slot_name)), default=0) + 1
    return f"{slot_name.replace('/', '-')}-{number}"


def add_version(state: dict[str, Any], slot_name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A new state with one more version in `slot_name` (not active); `meta` carries sha256,
    seconds, uploaded_at, uploaded_by, label, source..."""
    version_id = next_version_id(state, slot_name)
    direction, lang = slot_name.split("/")
    entry = {**meta, "id": version_id, "slot": slot_name, "direction": direction,
             "language": lang, "number": int(version_id.rsplit("-", 1)[1])}
    return {**state, "versions": {**state["versions"], version_id: entry}}


def activate(state: dict[str, Any], version_id: str, at: str, by: str) -> dict[str, Any]:
    """A new state where `version_id` is its slot's active version since `at`."""
    version = state["versions"].get(version_id)
    if version is None:
        raise LibraryError(f"no prompt version {version_id!r}")
    record = {"version": version_id, "since": at, "by": by}
    history = [*state["history"], {"slot": version["slot"], **record}]
    return {**state, "active": {**state["active"], version["slot"]: record}, "history": history}


def adopt_installed(state: dict[str, Any], slot_name: str, sha256: str, seconds: float,
                    stem: str, at: str) -> dict[str, Any]:
    """Take the installer's prompt for `slot_name` into the library if it is new: the first
    time as version 1 (active), later as a new version, active if an installer's version
    was. Returns `state` itself when there is nothing to do."""
    versions = versions_of(state, slot_name)
    installed = [v for v in versions if v.get("source") == "installed"]
    if installed and installed[0]["sha256"] == sha256:
        return state
    if any(v["sha256"] == sha256 and v.get("source") == "installed" for v in installed):
        return state  # an older installer's file came back: keep what was chosen since
    new = add_version(state, slot_name, {
        "sha256": sha256, "seconds": round(seconds, 3), "uploaded_at": at,
        "uploaded_by": INSTALLER, "label": stem, "source": "installed", "stem": stem,
    })
    version_id = next_version_id(state, slot_name)
    current = state["active"].get(slot_name)
    current_source = state["versions"].get(current["version"], {}).get("source") if current \
        else None
    if current is None or current_source == "installed":
        new = activate(new, version_id, at, INSTALLER)
    return new


def played_name(version: dict[str, Any]) -> str:
    """The name a recording's proof gives a version: an installer's prompt keeps its stem (as
    before the library existed), an uploaded one is named by its version id."""
    return str(version.get("stem") or version["id"])


# -- I/O --------------------------------------------------------------------------------------
def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PlayList:
    """What one direction plays: the prompt (languages joined) and the versions in it."""

    prompt: Prompt
    versions: tuple[dict[str, Any], ...]


class PromptLibrary:
    def __init__(self, config: AnnouncementConfig, rate: int = 8000) -> None:
        self.config = config
        self.rate = rate
        self.directory = Path(config.directory)
        self.root = self.directory / LIBRARY
        self.state_path = self.root / STATE

    # -- reading ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return empty_state()
        except ValueError as exc:
            # Written atomically, so only tampering gets here: say so, change nothing.
            raise LibraryError(f"{self.state_path} is unreadable ({exc})") from None
        return data

    def generation(self) -> tuple[int, int, int] | None:
        """Changes whenever the state file is replaced (cheap: one stat)."""
        try:
            st = self.state_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def audio_path(self, version_id: str) -> Path:
        if not _VERSION_RE.fullmatch(version_id):
            raise LibraryError(f"no prompt version {version_id!r}")
        return self.root / f"{version_id}.wav"

    def version(self, version_id: str) -> dict[str, Any]:
        found = self.state()["versions"].get(version_id)
        if found is None:
            raise LibraryError(f"no prompt version {version_id!r}")
        return dict(found)

    # -- changing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (web threads, the daemon, the command line)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, state: dict[str, Any]) -> None:
        write_atomic(self.state_path, json.dumps(state, indent=1, sort_keys=True).encode())

    def sync_installed(self) -> list[str]:
        """Adopt the installer's prompts of every played slot; returns the slots changed."""
        changed: list[str] = []
        wanted = [(d, lang, legacy_stem(self.config, d, lang)) for d in DIRECTIONS
                  for lang in played_languages(self.config, d)]
        if not any((self.directory / f"{stem}.wav").is_file() for _, _, stem in wanted):
            return changed  # nothing installed: create nothing (not even the library folder)
        with self._locked():
            state = self.state()
            before = state
            for direction, lang, stem in wanted:
                try:
                    raw = (self.directory / f"{stem}.wav").read_bytes()
                    prompt = load_prompt(self.directory, stem, self.rate)
                except (OSError, PromptError):
                    continue  # nothing usable installed: the slot stays empty (a fault if played)
                if hashlib.sha256(raw).hexdigest() != prompt.sha256:
                    continue  # replaced between the two reads: the next sync takes it
                name = slot(direction, lang)
                after = adopt_installed(state, name, prompt.sha256, prompt.seconds, stem,
                                        now_iso())
                if after is not state:
                    # The bytes checked above, so the version's file is what its SHA-256 says.
                    write_atomic(self.audio_path(next_version_id(state, name)), raw)
                    changed.append(name)
                    state = after
            if state is not before:
                self._save(state)
        return changed

    def add_upload(self, wav: Path, direction: str, lang: str, *, by: str, label: str,
                   details: dict[str, Any]) -> dict[str, Any]:
        """Take a converted WAV (moved into the library) as the slot's newest version, not
        active yet; returns its metadata."""
        name = slot(direction, lang)
        data = wav.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        with self._locked():
            state = self.state()
            version_id = next_version_id(state, name)
            target = self.audio_path(version_id)
            with open(wav, "r+b") as f:
                os.fsync(f.fileno())
            os.replace(wav, target)
            fsync_dir(self.root)
            meta = {"sha256": sha, "uploaded_at": now_iso(), "uploaded_by": by,
                    "label": safe_label(label) or version_id, "source": "upload", **details}
            state = add_version(state, name, meta)
            self._save(state)
        return dict(state["versions"][version_id])

    def activate(self, version_id: str, by: str) -> dict[str, Any]:
        """Make a version its slot's active one; returns the activation record."""
        with self._locked():
            state = self.state()
            if version_id not in state["versions"]:
                raise LibraryError(f"no prompt version {version_id!r}")
            # The daemon will play this file: check it is there and playable first.
            self._load_version(state["versions"][version_id])
            state = activate(state, version_id, now_iso(), by)
            self._save(state)
            return dict(state["active"][state["versions"][version_id]["slot"]])

    # -- what plays -------------------------------------------------------------------------
    def _load_version(self, version: dict[str, Any]) -> Prompt:
        prompt = load_prompt(self.root, str(version["id"]), self.rate)
        if prompt.sha256 != version["sha256"]:
            raise PromptError(f"prompt version {version['id']} does not match its SHA-256 "
                              "(the file was changed outside the library)")
        return prompt

    def playlist(self, direction: str) -> PlayList:
        """The prompt for calls in `direction`: the active version of each played language,
        in order, with GAP_S of silence between; PromptError if one is missing."""
        state = self.state()
        parts: list[tuple[dict[str, Any], Prompt]] = []
        for lang in played_languages(self.config, direction):
            active = state["active"].get(slot(direction, lang))
            if active is None:
                # Not in the library: the installer's file, read as before the library (its
                # error names the file the technician must install).
                prompt = load_prompt(self.directory, legacy_stem(self.config, direction, lang),
                                     self.rate)
                parts.append(({"id": None, "language": lang, "sha256": prompt.sha256}, prompt))
                continue
            version = state["versions"][active["version"]]
            parts.append((version, self._load_version(version)))
        return combine(parts, self.rate)


def combine(parts: list[tuple[dict[str, Any], Prompt]], rate: int) -> PlayList:
    """One Prompt from one or more versions. Its SHA-256 is that of exactly what is played:
    the stored file itself for one version, else a WAV file holding the joined audio (the
    proof lists each version's own SHA-256 as well)."""
    versions = tuple({"version": v["id"], "language": v["language"], "sha256": p.sha256}
                     for v, p in parts)
    if len(parts) == 1:
        version, prompt = parts[0]
        name = played_name(version) if version["id"] else prompt.name
        return PlayList(Prompt(name, prompt.sha256, rate, prompt.pcm), versions)
    gap = bytes(2 * int(rate * GAP_S))
    pcm = gap.join(p.pcm for _, p in parts)
    name = "+".join(played_name(v) if v["id"] else p.name for v, p in parts)
    return PlayList(Prompt(name, hashlib.sha256(wav_bytes(pcm, rate)).hexdigest(), rate, pcm),
                    versions)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """Mono 16-bit PCM as a WAV file (the canonical 44-byte header)."""
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()
