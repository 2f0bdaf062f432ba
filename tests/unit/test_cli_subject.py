"""`callrec subject ...`: on the store when the daemon is stopped, through the daemon's API when
it runs (with a token), and a clear refusal when it runs and no token is given."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callrec import cli
from callrec.audit import open_audit_for_reading
from callrec.config import load
from callrec.privacy.donotrecord import DoNotRecord, sealer_for
from callrec.privacy.requests import RequestBook
from callrec.storage.open_store import open_store
from callrec.storage.recordings import RecordingStore, new_recording_id

NUMBER = "+33 6 12 34 56 78"


def _config(tmp_path: Path, port: int = 8080) -> Path:
    path = tmp_path / "callrec.toml"
    path.write_text(f'runtime_dir = "{tmp_path}/run"\n[storage]\ndata_dir = "{tmp_path}/data"\n'
                    f'usb_mount_point = "{tmp_path}/usb"\n[web]\nport = {port}\n')
    return path


def _add(store: RecordingStore, number: str, offset: int) -> str:
    started = datetime(2024, 5, 1, 9, tzinfo=UTC) + timedelta(minutes=offset)
    rec_id = new_recording_id(started)
    meta = {"id": rec_id, "direction": "in", "caller_number": number, "status": "recording",
            "started_at": started.isoformat()}
    writer = store.open_writer(meta, 8000)
    writer.write(bytes(range(256)) * 40)
    writer.close()
    store.add({**meta, "status": "complete", "audio": store.audio_info(writer, 8000)})
    return rec_id


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[str]]:
    path = _config(tmp_path)
    store = open_store(load(path))
    ids = [_add(store, "0612345678", 0), _add(store, "0033612345678", 1),
           _add(store, "0145678912", 2)]
    store.close()
    return path, ids


def test_show_export_restrict_rectify_object_erase_on_a_stopped_daemon(
        setup: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = setup
    cfg = ["--config", str(path)]
    assert cli.main(["subject", "show", NUMBER, "--json", *cfg]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {d["id"] for d in shown["recordings"]} == set(ids[:2])
    subject = shown["subject"]

    out = tmp_path / "export.zip"
    assert cli.main(["subject", "export", NUMBER, "-o", str(out), *cfg]) == 0
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert f"recordings/{ids[0]}.wav" in archive.namelist()
    assert "information.html" in archive.namelist()
    assert out.stat().st_mode & 0o077 == 0  # personal data: the owner only

    assert cli.main(["subject", "restrict", NUMBER, "--reason", "contested", *cfg]) == 0
    assert cli.main(["subject", "restrict", NUMBER, "--lift", ids[0], "--reason", "ok",
                     *cfg]) == 0
    assert cli.main(["subject", "rectify", NUMBER, "--recording", ids[1], "--caller-name",
                     "DUPOND", *cfg]) == 0
    assert cli.main(["subject", "object", NUMBER, *cfg]) == 0
    config = load(path)
    store = open_store(config)
    assert not (store.get(ids[0]) or {}).get("restricted")
    assert (store.get(ids[1]) or {}).get("restricted") is True
    assert (store.get(ids[1]) or {}).get("caller_name") == "DUPOND"
    assert DoNotRecord.load(config.privacy.do_not_record_path(config.data_dir),
                            sealer_for(store.keys)).matches("0612345678")
    store.close()

    assert cli.main(["subject", "erase", NUMBER, *cfg]) == 1  # no terminal, no --yes
    receipt = tmp_path / "receipt.json"
    assert cli.main(["subject", "erase", NUMBER, "--yes", "--receipt", str(receipt),
                     *cfg]) == 0
    assert {r["id"] for r in json.loads(receipt.read_text())["erased"]} == set(ids[:2])
    store = open_store(config)
    assert store.count() == 1 and store.get(ids[2]) is not None
    book = RequestBook.for_data_dir(config.data_dir, store.keys)
    store.close()
    assert {r.type for r in book.for_subject(subject)} == {
        "access", "restriction", "rectification", "objection", "erasure"}
    journal, _ = open_audit_for_reading(config)
    actions = [(e["actor"].startswith("cli:"), e["action"]) for e in journal.entries()]
    for action in ("subject.show", "subject.export", "recording.restrict",
                   "recording.unrestrict", "recording.rectify", "subject.object",
                   "subject.erase"):
        assert (True, action) in actions, action
    assert journal.verify().ok


def test_a_running_daemon_without_a_token_is_refused_clearly(
        setup: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from callrec_web.server import WebServer

    server = WebServer(lambda env, start: [], "127.0.0.1", 0)
    server.start()
    try:
        path = _config(tmp_path, server.port)
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / "status.json").write_text(json.dumps({"running": True}))
        assert cli.main(["subject", "erase", NUMBER, "--yes", "--config", str(path)]) == 3
        err = capsys.readouterr().err
        assert "daemon is running" in err and "--token-file" in err
    finally:
        server.stop()
    # The daemon died without saying so: nothing answers, the command acts on the store.
    assert cli.main(["subject", "show", NUMBER, "--config", str(path)]) == 0


def test_a_running_daemon_is_asked_through_its_api(
        setup: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from callrec.audit import open_audit
    from callrec_web.app import make_app
    from callrec_web.context import WebContext
    from callrec_web.server import WebServer
    from callrec_web.users import UserStore

    path, _ids = setup
    config = load(path)
    store = open_store(config)
    users = UserStore(config.data_dir / "users.json")
    users.add_user("admin", "correct horse battery", ["admin"])
    token = users.create_token("admin", "cli")
    ctx = WebContext(config=config, store=store, users=users, status=dict,
                     setup_code=lambda: None, audit=open_audit(config, store.keys))
    server = WebServer(make_app(ctx), "127.0.0.1", 0, poll_interval_s=0.02)
    server.start()
    try:
        path = _config(tmp_path, server.port)
        (tmp_path / "run").mkdir(exist_ok=True)
        (tmp_path / "run" / "status.json").write_text(json.dumps({"running": True}))
        token_file = tmp_path / "token"
        token_file.write_text(token)
        cfg = ["--config", str(path), "--token-file", str(token_file)]
        assert cli.main(["subject", "show", NUMBER, *cfg]) == 0
        assert "2 recording(s)" in capsys.readouterr().out
        out = tmp_path / "api.zip"
        assert cli.main(["subject", "export", NUMBER, "-o", str(out), *cfg]) == 0
        assert zipfile.ZipFile(out).testzip() is None
        assert cli.main(["subject", "erase", NUMBER, "--yes", *cfg]) == 0
        assert store.count() == 1  # the daemon's own store did it
        assert cli.main(["subject", "show", NUMBER, "--config", str(path), "--token-file",
                         str(tmp_path / "run" / "status.json")]) == 1  # a wrong token
    finally:
        server.stop()
        store.close()
