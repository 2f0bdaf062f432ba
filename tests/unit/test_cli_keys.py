"""`callrec keys`: status, the owner's backup of the device key, and its restoration."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from callrec.cli import main
from callrec.config import Config, StorageConfig
from callrec.storage.open_store import open_store, read_recording_sidecar


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "callrec.toml"
    path.write_text(f'runtime_dir = "{tmp_path}/run"\n[storage]\ndata_dir = "{tmp_path}/data"\n')
    return path


def test_backup_and_restore_bring_the_recordings_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config_file(tmp_path)
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "data")))
    store = open_store(config)
    meta = {"id": "20261129T100000Z-0a1b2c3d", "caller_number": "0612345678",
            "status": "recording"}
    store.open_writer(meta, 8000).close()
    store.close()

    assert main(["keys", "status", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "encryption at rest: on" in out and "recording keys: 1" in out
    assert main(["keys", "export", "--config", str(cfg)]) == 0
    backup = capsys.readouterr().out
    assert "WARNING" in backup and "key: " in backup

    # The SD card died: a new card, the recordings' volume kept, the device key lost.
    config.storage.device_key_path.unlink()
    assert main(["keys", "status", "--config", str(cfg)]) == 1
    assert "restore" in capsys.readouterr().err.lower()
    monkeypatch.setattr("sys.stdin", io.StringIO(backup))
    assert main(["keys", "restore", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert read_recording_sidecar(config, meta["id"])["caller_number"] == "0612345678"

    monkeypatch.setattr("sys.stdin", io.StringIO(backup))
    assert main(["keys", "restore", "--config", str(cfg)]) == 1  # never overwrites a key


def test_a_damaged_backup_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config_file(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("callrec device key backup\nkey: ABCD EFGH\n"))
    assert main(["keys", "restore", "--config", str(cfg)]) == 1
    assert "callrec:" in capsys.readouterr().err
