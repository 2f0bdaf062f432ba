"""The configuration backup's archive (callrec.config_backup): round trip, encryption, and
every way a file can be wrong refused with its reason before anything is used."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from callrec import config_backup as cb
from callrec.privacy.donotrecord import Entry

NOW = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
TEXT = '# our line\n[line]\nname = "accueil"\ncountry = "fr"\n[retention]\nmax_age_days = 90\n'
PASS = "correct horse battery staple"
ENTRIES = [Entry("0612345678", "number", "objection 2026-001", "2026-01-02T03:04:05+00:00"),
           Entry("01", "prefix", "", "")]


def build(**kw: object) -> bytes:
    args: dict[str, object] = {"now": NOW, "version": "9.9"}
    args.update(kw)
    return cb.build(TEXT, **args)  # type: ignore[arg-type]


def code_of(blob: bytes, passphrase: str = "") -> str:
    with pytest.raises(cb.BackupError) as info:
        cb.read(blob, passphrase)
    return info.value.code


def test_plain_backup_round_trip_and_manifest() -> None:
    blob = build()
    assert blob[:4] == b"PK\x03\x04"  # any ZIP tool opens it
    backup = cb.read(blob)
    assert backup.config_text == TEXT and not backup.encrypted
    assert backup.do_not_record is None and backup.config.retention.max_age_days == 90
    m = backup.manifest
    assert m["format"] == cb.FORMAT and m["format_version"] == 1 and m["callrec_version"] == "9.9"
    assert m["created_at"] == "2026-03-01T12:30:05+00:00" and m["config_version"] == 1
    import hashlib
    assert m["members"] == {"callrec.toml": {"size": len(TEXT.encode()),
                                             "sha256": hashlib.sha256(TEXT.encode()).hexdigest()}}
    assert cb.file_name(NOW) == "callrec-config-20260301-123005.cbk"


def test_encrypted_backup_with_the_list_round_trip() -> None:
    blob = build(do_not_record=ENTRIES, passphrase=PASS)
    assert blob.startswith(cb.MAGIC)
    assert b"0612345678" not in blob and b"accueil" not in blob  # nothing readable
    backup = cb.read(blob, PASS)
    assert backup.encrypted and backup.config_text == TEXT
    assert backup.do_not_record == tuple(ENTRIES)


def test_the_passphrase_is_compared_as_typed_text_whatever_its_unicode_form() -> None:
    blob = build(do_not_record=ENTRIES, passphrase="mot de passe d\u00e9j\u00e0 vu")
    assert cb.read(blob, "mot de passe de\u0301ja\u0300 vu").do_not_record == tuple(ENTRIES)


def test_the_list_needs_a_passphrase_of_twelve_characters() -> None:
    with pytest.raises(cb.BackupError) as info:
        build(do_not_record=ENTRIES)
    assert info.value.code == "need_passphrase"
    with pytest.raises(cb.BackupError) as info:
        build(do_not_record=ENTRIES, passphrase="short")
    assert info.value.code == "short_passphrase"


def test_a_configuration_that_would_not_restore_is_not_backed_up() -> None:
    with pytest.raises(cb.BackupError) as info:
        cb.build("[line]\ncountry = \"xx\"\n", now=NOW, version="1")
    assert info.value.code == "bad_config" and "line.country" in info.value.detail


def test_wrong_or_missing_passphrase() -> None:
    blob = build(do_not_record=ENTRIES, passphrase=PASS)
    assert code_of(blob, "") == "need_passphrase"
    assert code_of(blob, PASS + "!") == "wrong_passphrase"


@pytest.mark.parametrize("where", [0, 9, 20, 40, 60, -1])
def test_any_changed_byte_of_an_encrypted_backup_is_refused(where: int) -> None:
    blob = bytearray(build(do_not_record=ENTRIES, passphrase=PASS))
    blob[where] ^= 0x01
    assert code_of(bytes(blob), PASS) in ("damaged", "wrong_passphrase", "not_backup")


def test_a_changed_ciphertext_byte_is_damage_not_a_wrong_passphrase() -> None:
    blob = bytearray(build(do_not_record=ENTRIES, passphrase=PASS))
    blob[cb.HEAD_BYTES + 5] ^= 0x80
    assert code_of(bytes(blob), PASS) == "damaged"


@pytest.mark.parametrize("keep", [10, 56, 100, -1])
def test_truncated_backups_are_refused(keep: int) -> None:
    for blob in (build(), build(do_not_record=ENTRIES, passphrase=PASS)):
        assert code_of(blob[:keep], PASS) in ("damaged", "not_backup")


def rezip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def members_of(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_a_plain_backup_edited_after_it_was_made_is_refused() -> None:
    members = members_of(build())
    members["callrec.toml"] = members["callrec.toml"].replace(b"90", b"9000")
    assert code_of(rezip(members)) == "damaged"


def test_other_files_are_not_backups() -> None:
    assert code_of(b"hello world") == "not_backup"
    assert code_of(rezip({"readme.txt": b"hi"})) == "not_backup"
    other = json.dumps({"format": "someone-else", "format_version": 1, "members": {}})
    assert code_of(rezip({"manifest.json": other.encode()})) == "not_backup"
    assert code_of(b"x" * (cb.MAX_ARCHIVE_BYTES + 1)) == "too_large"


def test_extra_members_and_plain_lists_are_refused() -> None:
    members = members_of(build())
    assert code_of(rezip({**members, "users.json": b"{}"})) == "damaged"
    # A list only ever travels encrypted: a plain one was not made by callrec.
    entries = json.dumps({"entries": []}).encode()
    manifest = json.loads(members["manifest.json"])
    import hashlib
    manifest["members"]["donotrecord.json"] = {"size": len(entries),
                                               "sha256": hashlib.sha256(entries).hexdigest()}
    members.update({"manifest.json": json.dumps(manifest).encode(), "donotrecord.json": entries})
    assert code_of(rezip(members)) == "damaged"


def manifest_edit(change: dict[str, object], text: bytes | None = None) -> bytes:
    import hashlib

    members = members_of(build())
    if text is not None:
        members["callrec.toml"] = text
    manifest = json.loads(members["manifest.json"])
    manifest["members"]["callrec.toml"] = {"size": len(members["callrec.toml"]),
                                           "sha256": hashlib.sha256(members["callrec.toml"]
                                                                    ).hexdigest()}
    manifest.update(change)
    members["manifest.json"] = json.dumps(manifest).encode()
    return rezip(members)


def test_newer_formats_and_configurations_are_refused() -> None:
    assert code_of(manifest_edit({"format_version": 2})) == "newer_format"
    newer = b"config_version = 99\n[line]\nname = \"x\"\n"
    assert code_of(manifest_edit({"config_version": 99}, newer)) == "newer_config"
    assert code_of(manifest_edit({}, b"[line]\ncountry = 1\n")) == "bad_config"
    assert code_of(manifest_edit({"config_version": 1}, b"[line\n")) == "bad_config"


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    members = members_of(build())
    members["callrec.toml"] = b"#" * (cb.MAX_MEMBER_BYTES + 10)
    blob = rezip({k: v for k, v in members.items()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert len(out.getvalue()) < cb.MAX_ARCHIVE_BYTES < len(blob)
    assert code_of(out.getvalue()) == "damaged"


def test_damaged_list_entries_are_refused() -> None:
    bad = [Entry("06 12 34 56 78", "number", "", "")]  # not in the list's normal form
    blob = cb.build(TEXT, now=NOW, version="1", do_not_record=bad, passphrase=PASS)
    assert code_of(blob, PASS) == "bad_list"


def test_the_list_plan_adds_and_never_removes() -> None:
    here = [Entry("0612345678", "number"), Entry("0700000000", "number")]
    backup = [Entry("0612345678", "number"), Entry("0612345678", "prefix"),
              Entry("0199999999", "number"), Entry("0199999999", "number")]
    plan = cb.plan_list(here, backup)
    assert [(e.value, e.kind) for e in plan.add] == [("0612345678", "prefix"),
                                                     ("0199999999", "number")]
    assert plan.present == 1 and plan.kept == 1


def test_preview_names_the_keys_that_change_never_values() -> None:
    backup = cb.read(build(do_not_record=ENTRIES, passphrase=PASS), PASS)
    current = '[line]\nname = "reception"\ncountry = "fr"\n'
    preview = cb.preview(current, backup, [Entry("0612345678", "number")])
    assert preview.changed == ("line.name", "retention.max_age_days")
    assert not preview.identical_text
    assert preview.plan is not None and len(preview.plan.add) == 1 and preview.plan.present == 1
    assert cb.preview(TEXT, backup, []).identical_text


def test_a_thousand_objections_fit_the_restore_limit() -> None:
    many = [Entry(f"06{i:08d}", "number", f"objection 2026-{i:04d}",
                  "2026-01-02T03:04:05+00:00") for i in range(0, 10**8, 10**5)]
    blob = build(do_not_record=many, passphrase=PASS)
    assert len(blob) < cb.MAX_ARCHIVE_BYTES
    assert len(cb.read(blob, PASS).do_not_record or ()) == 1000
