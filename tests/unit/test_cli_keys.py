"""`callrec keys`: status, the owner's backup of the device key, and its restoration."""

from __future__ import annotations

import base64
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
    # "auto" on a computer without the Pi's OTP: said plainly, not hidden
    assert "hardware binding: NONE" in out and "another computer opens every recording" in out
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


def bound_config_file(tmp_path: Path, secret: Path) -> Path:
    path = tmp_path / "callrec.toml"
    path.write_text(f'runtime_dir = "{tmp_path}/run"\n[storage]\ndata_dir = "{tmp_path}/data"\n'
                    f'key_binding = "file"\nkey_binding_file = "{secret}"\n')
    return path


def test_bound_key_status_export_and_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "board" / "otp.key"
    cfg = bound_config_file(tmp_path, secret)
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "data"), key_binding="file",
                                          key_binding_file=str(secret)))
    store = open_store(config)
    meta = {"id": "20261129T100000Z-0a1b2c3d", "caller_number": "0612345678",
            "status": "recording"}
    store.open_writer(meta, 8000).close()
    store.close()
    device_key = config.storage.device_key_path
    wrapped = device_key.read_bytes()

    assert main(["keys", "status", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "hardware binding: file" in out and "opens no recording" in out
    assert "NOT bound" not in out
    # The owner's backup is the device key itself (it must work without this recorder).
    assert main(["keys", "export", "--config", str(cfg)]) == 0
    backup = capsys.readouterr().out
    assert "WARNING" in backup and "key: " in backup
    b32 = next(s for s in backup.splitlines() if s.startswith("key: "))[5:].replace(" ", "")
    key = base64.b32decode(b32 + "=" * (-len(b32) % 8))[:32]
    assert len(key) == 32 and key not in wrapped  # the card holds it only wrapped

    # The binding secret lost (its medium gone, or the card in another recorder): a clear
    # error, exit 1, nothing replaced.
    secret.rename(tmp_path / "kept")
    assert main(["keys", "status", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "callrec keys restore" in err
    assert main(["keys", "export", "--config", str(cfg)]) == 1
    capsys.readouterr()
    assert device_key.read_bytes() == wrapped and not secret.exists()
    monkeypatch.setattr("sys.stdin", io.StringIO(backup))
    assert main(["keys", "restore", "--config", str(cfg)]) == 1  # never overwrites a key
    capsys.readouterr()

    # The documented way out: move the old key away, restore the backup under this binding.
    device_key.rename(tmp_path / "old-device.key")
    monkeypatch.setattr("sys.stdin", io.StringIO(backup))
    assert main(["keys", "restore", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "device key restored" in out and "hardware binding: file" in out
    assert secret.stat().st_size == 32 and device_key.read_bytes()[:8] == b"CRDEVK02"
    assert device_key.read_bytes() != wrapped  # wrapped by the new secret
    assert read_recording_sidecar(config, meta["id"])["caller_number"] == "0612345678"


def test_restore_without_binding_says_it_is_unbound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path / "a"), key_binding="none"))
    store = open_store(config)
    assert store.keys is not None
    backup = store.keys.export_device_key()
    store.close()
    cfg = tmp_path / "callrec.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path}/b"\nkey_binding = "none"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO(backup))
    assert main(["keys", "restore", "--config", str(cfg)]) == 0
    assert "hardware binding: NONE" in capsys.readouterr().out


@pytest.mark.parametrize(("storage", "message"), [
    ('key_binding = "file"\n', "needs the path"),
    ('key_binding = "otp"\nkey_binding_file = "/srv/x"\n', "only read with"),
    ('key_binding = "file"\nkey_binding_file = "relative/x"\n', "absolute"),
    ('key_binding = "file"\nkey_binding_file = "{data}/keys/../secret"\n', "inside data_dir"),
    ('key_binding = "file"\nkey_binding_file = "/media/callrec/s"\n', "inside usb_mount"),
    ('key_binding = "tpm"\n', "not one of"),
])
def test_binding_configuration_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], storage: str, message: str
) -> None:
    cfg = tmp_path / "callrec.toml"
    data = tmp_path / "data"
    cfg.write_text(f'[storage]\ndata_dir = "{data}"\n' + storage.replace("{data}", str(data)))
    assert main(["keys", "status", "--config", str(cfg)]) == 2
    assert message in capsys.readouterr().err
