"""The prompt library: versions, activation, adoption of the installer's prompts, what plays."""

from __future__ import annotations

import hashlib
import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from callrec.announcement import AnnouncementPlayer, PromptError
from callrec.config import AnnouncementConfig, ConfigError, parse
from callrec.prompt_library import (
    GAP_S,
    INSTALLER,
    LibraryError,
    PromptLibrary,
    activate,
    add_version,
    adopt_installed,
    empty_state,
    legacy_stem,
    played_languages,
    safe_label,
    versions_of,
    wav_bytes,
)


def tone_wav(path: Path, freq: float, seconds: float = 2.5, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return pcm


def lib_for(tmp_path: Path, **keys: str) -> PromptLibrary:
    return PromptLibrary(AnnouncementConfig(directory=str(tmp_path / "prompts"), **keys))


# -- pure ------------------------------------------------------------------------------------
def test_languages_per_direction_default_to_the_stem_and_old_files_keep_their_meaning() -> None:
    assert played_languages(AnnouncementConfig(), "in") == ["fr"]
    assert played_languages(AnnouncementConfig(incoming="en"), "in") == ["en"]
    assert played_languages(AnnouncementConfig(incoming="test"), "in") == ["fr"]
    both = AnnouncementConfig(incoming="test", outgoing="en", outgoing_languages="fr, en")
    assert played_languages(both, "out") == ["fr", "en"]
    # The installer's files: the stem for its language (or the first one), <lang>.wav else.
    assert legacy_stem(both, "in", "fr") == "test"
    assert legacy_stem(both, "out", "en") == "en" and legacy_stem(both, "out", "fr") == "fr"


def test_the_configuration_refuses_unknown_or_repeated_languages() -> None:
    ok = parse({"announcement": {"incoming_languages": "fr en", "outgoing_languages": "en"}})
    assert ok.announcement.incoming_languages == "fr en"
    assert parse({"announcement": {"incoming": "fr"}}).announcement.incoming_languages == ""
    for bad in ("de", "fr fr", "fr;en"):
        with pytest.raises(ConfigError, match=r"announcement\.incoming_languages"):
            parse({"announcement": {"incoming_languages": bad}})


def test_versions_are_numbered_per_slot_and_activation_is_recorded() -> None:
    s0 = empty_state()
    s1 = add_version(s0, "in/fr", {"sha256": "a" * 64})
    s2 = add_version(s1, "in/fr", {"sha256": "b" * 64})
    s3 = add_version(s2, "out/en", {"sha256": "c" * 64})
    assert [v["id"] for v in versions_of(s3, "in/fr")] == ["in-fr-2", "in-fr-1"]
    assert versions_of(s3, "out/en")[0]["id"] == "out-en-1"
    assert s0 == empty_state() and "in-fr-1" not in s0["versions"]  # states are not mutated
    s4 = activate(s3, "in-fr-2", "2026-01-01T10:00:00+00:00", "tech")
    s5 = activate(s4, "in-fr-1", "2026-01-02T10:00:00+00:00", "admin")
    assert s5["active"]["in/fr"] == {"version": "in-fr-1", "since": "2026-01-02T10:00:00+00:00",
                                     "by": "admin"}
    assert [h["version"] for h in s5["history"]] == ["in-fr-2", "in-fr-1"]
    assert "in/fr" not in s3["active"]
    with pytest.raises(LibraryError):
        activate(s5, "in-fr-9", "2026-01-03T10:00:00+00:00", "tech")


def test_installed_prompts_are_adopted_once_and_a_new_one_follows_only_installer_choices() -> None:
    at = "2026-01-01T10:00:00+00:00"
    s1 = adopt_installed(empty_state(), "in/fr", "a" * 64, 3.0, "fr", at)
    assert s1["active"]["in/fr"]["version"] == "in-fr-1"
    assert s1["active"]["in/fr"]["by"] == INSTALLER
    assert adopt_installed(s1, "in/fr", "a" * 64, 3.0, "fr", at) is s1  # nothing new
    s2 = adopt_installed(s1, "in/fr", "b" * 64, 3.0, "fr", at)  # `callrec prompts generate`
    assert s2["active"]["in/fr"]["version"] == "in-fr-2"
    # A technician's choice is not overridden by a regenerated installer's file.
    s3 = activate(add_version(s2, "in/fr", {"sha256": "u" * 64, "source": "upload"}),
                  "in-fr-3", at, "tech")
    s4 = adopt_installed(s3, "in/fr", "c" * 64, 3.0, "fr", at)
    assert s4["active"]["in/fr"]["version"] == "in-fr-3" and "in-fr-4" in s4["versions"]


def test_labels_are_safe() -> None:
    assert safe_label("../../etc/passwd") == "passwd"
    assert safe_label("C:\\Users\\Marie Dupont\\annonce été.mp3") == "annonce été"
    assert safe_label('<Accueil> & "co".wav') == "Accueil co"
    assert safe_label("<script>alert(1)</script>.wav") == "script"  # "/" ends a folder
    assert len(safe_label("x" * 500 + ".wav")) == 60


# -- on disk ---------------------------------------------------------------------------------
def test_a_legacy_install_plays_as_before_and_is_adopted_as_version_1(tmp_path: Path) -> None:
    lib = lib_for(tmp_path, incoming="test", outgoing="test")
    tone_wav(lib.directory / "test.wav", 440)
    legacy = (lib.directory / "test.wav").read_bytes()
    assert lib.sync_installed() == ["in/fr", "out/fr"]
    state = lib.state()
    assert state["active"]["in/fr"]["version"] == "in-fr-1"
    assert (lib.root / "in-fr-1.wav").read_bytes() == legacy
    playlist = lib.playlist("in")
    # The proof names the prompt and the SHA-256 of the file, exactly as before the library.
    assert playlist.prompt.name == "test"
    assert playlist.prompt.sha256 == hashlib.sha256(legacy).hexdigest()
    assert playlist.versions == ({"version": "in-fr-1", "language": "fr",
                                  "sha256": hashlib.sha256(legacy).hexdigest()},)
    assert lib.sync_installed() == []  # idempotent


def test_missing_prompt_names_the_file_to_install(tmp_path: Path) -> None:
    lib = lib_for(tmp_path, incoming="missing", outgoing="missing")
    assert lib.sync_installed() == []
    with pytest.raises(PromptError, match=r"missing\.wav"):
        lib.playlist("in")


def test_upload_then_activate_changes_what_plays(tmp_path: Path) -> None:
    lib = lib_for(tmp_path)
    tone_wav(lib.directory / "fr.wav", 440)
    lib.sync_installed()
    before = lib.generation()
    new_pcm = tone_wav(tmp_path / "converted.wav", 660)
    meta = lib.add_upload(tmp_path / "converted.wav", "in", "fr", by="tech",
                          label="Accueil v2.mp3", details={"seconds": 2.5})
    assert meta["id"] == "in-fr-2" and meta["label"] == "Accueil v2"
    assert meta["uploaded_by"] == "tech" and not (tmp_path / "converted.wav").exists()
    assert lib.playlist("in").prompt.name == "fr"  # stored, not active yet
    record = lib.activate("in-fr-2", "tech")
    assert record["version"] == "in-fr-2" and record["by"] == "tech"
    assert lib.generation() != before
    playlist = lib.playlist("in")
    assert playlist.prompt.pcm == new_pcm and playlist.prompt.name == "in-fr-2"
    assert playlist.prompt.sha256 == meta["sha256"]
    assert lib.playlist("out").prompt.name == "fr"  # the other direction is untouched
    assert [h["version"] for h in lib.state()["history"]] == ["in-fr-1", "out-fr-1", "in-fr-2"]


def test_a_bilingual_office_plays_both_languages_and_the_proof_covers_both(
        tmp_path: Path) -> None:
    lib = lib_for(tmp_path, incoming_languages="fr en")
    fr = tone_wav(lib.directory / "fr.wav", 440)
    en = tone_wav(lib.directory / "en.wav", 880, seconds=2.0)
    lib.sync_installed()
    playlist = lib.playlist("in")
    gap = bytes(2 * int(8000 * GAP_S))
    assert playlist.prompt.pcm == fr + gap + en
    assert playlist.prompt.name == "fr+en"
    assert playlist.prompt.sha256 == hashlib.sha256(wav_bytes(fr + gap + en, 8000)).hexdigest()
    assert [v["version"] for v in playlist.versions] == ["in-fr-1", "in-en-1"]
    assert [v["sha256"] for v in playlist.versions] == [
        hashlib.sha256((lib.root / f"{i}.wav").read_bytes()).hexdigest()
        for i in ("in-fr-1", "in-en-1")]
    # And the proof a recording keeps lists them.
    player = AnnouncementPlayer(output=type("Null", (), {"write": lambda self, pcm: None})())
    proof = player.play(playlist.prompt, lambda ok, err: None, playlist.versions)
    player.stop()
    assert proof.as_dict()["versions"] == [dict(v) for v in playlist.versions]


def test_a_tampered_version_is_not_played_nor_activated(tmp_path: Path) -> None:
    lib = lib_for(tmp_path)
    tone_wav(lib.directory / "fr.wav", 440)
    lib.sync_installed()
    tone_wav(tmp_path / "up.wav", 660)
    lib.add_upload(tmp_path / "up.wav", "in", "fr", by="tech", label="x", details={})
    tone_wav(lib.root / "in-fr-2.wav", 700)  # changed behind the library's back
    with pytest.raises(PromptError, match="SHA-256"):
        lib.activate("in-fr-2", "tech")
    assert lib.state()["active"]["in/fr"]["version"] == "in-fr-1"
    with pytest.raises(LibraryError):
        lib.activate("../../users", "tech")
    with pytest.raises(LibraryError):
        lib.audio_path("../fr")


def test_a_power_cut_while_saving_leaves_the_previous_state(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    lib = lib_for(tmp_path)
    tone_wav(lib.directory / "fr.wav", 440)
    lib.sync_installed()
    tone_wav(tmp_path / "up.wav", 660)
    lib.add_upload(tmp_path / "up.wav", "in", "fr", by="tech", label="x", details={})
    saved = lib.state_path.read_bytes()

    def cut(*args: object) -> None:
        raise OSError("power cut")  # the rename never happens

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(OSError):
        lib.activate("in-fr-2", "tech")
    monkeypatch.undo()
    assert lib.state_path.read_bytes() == saved
    assert json.loads(saved)["active"]["in/fr"]["version"] == "in-fr-1"
    assert not [p for p in lib.root.iterdir() if p.name.startswith(".state.json.")]
