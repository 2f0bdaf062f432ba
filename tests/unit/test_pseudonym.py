"""Keyed pseudonyms of phone numbers."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from callrec.config import Config, StorageConfig
from callrec.privacy.pseudonym import (
    Pseudonymizer,
    is_pseudonym,
    local_secret,
    pseudonym,
    pseudonym_key,
)
from callrec.storage.open_store import open_keys

KEY = b"k" * 32


def test_every_spelling_of_a_number_gives_one_pseudonym() -> None:
    spellings = ["+33 6 12 34 56 78", "06 12 34 56 78", "0033612345678", "06.12.34.56.78"]
    names = {pseudonym(s, KEY) for s in spellings}
    assert len(names) == 1
    (name,) = names
    assert is_pseudonym(name) and len(name) == 18 and "612345678" not in name
    assert pseudonym("0612345679", KEY) != name


def test_the_key_matters_and_no_digits_is_refused() -> None:
    assert pseudonym("0612345678", KEY) != pseudonym("0612345678", b"x" * 32)
    with pytest.raises(ValueError):
        pseudonym("anonymous", KEY)
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


def test_the_local_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pseudonym.key"
    first = local_secret(path)
    assert len(first) == 32 and local_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temporary left
    path.write_bytes(b"short")
    with pytest.raises(ValueError):
        local_secret(path)  # never silently replaced: that would change every pseudonym


def test_the_key_comes_from_the_device_key_when_encryption_is_on(tmp_path: Path) -> None:
    on = Config(storage=StorageConfig(data_dir=str(tmp_path / "on")))
    keys = open_keys(on)
    assert keys is not None
    derived = pseudonym_key(keys, on.data_dir)
    assert derived == keys.derive_key("pseudonym-v1")
    assert not (on.data_dir / "keys" / "pseudonym.key").exists()
    off = tmp_path / "off"
    assert pseudonym_key(None, off) == (off / "keys" / "pseudonym.key").read_bytes()
