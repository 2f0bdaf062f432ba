"""config_migrate (pure) and `callrec config migrate` (the file's I/O), and config.parse's
refusal of a file newer than the code."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

import pytest

from callrec.cli import main
from callrec.config import ConfigError, load, parse
from callrec.config_migrate import CURRENT_VERSION, MigrationError, migrate, set_version

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "hw" / "config").glob("*.toml"))

V1 = """\
# Front desk recorder: keep this comment.
runtime_dir = "/run/callrec"  # where status.json goes

# The web UI: a comment above the table stays with it.
[web]
host = "0.0.0.0"
page_size = 40  # more per page for the front desk

[retention]
max_age_days = 90
"""


def test_current_version_is_2() -> None:
    assert CURRENT_VERSION == 2


def test_a_file_without_version_is_stamped_keeping_every_comment_and_value() -> None:
    text, changes = migrate(V1)
    assert changes == ["config_version 1 -> 2: stamped config_version = 2"]
    assert tomllib.loads(text) == {**tomllib.loads(V1), "config_version": 2}
    # Only lines were added, in one block: removing it gives back the original exactly.
    start = text.index("# The configuration's schema version")
    end = text.index("config_version = 2\n\n") + len("config_version = 2\n\n")
    assert text[:start] + text[end:] == V1
    assert all(line.startswith("#") or line in ("config_version = 2", "")
               for line in text[start:end].splitlines())
    # Before the table's own comment, so that the comment stays attached to [web].
    assert text.index("config_version = 2") < text.index("# The web UI")
    assert parse(tomllib.loads(text)).config_version == 2


def test_an_up_to_date_file_is_unchanged() -> None:
    text, _ = migrate(V1)
    assert migrate(text) == (text, [])


def test_an_explicit_version_1_line_is_rewritten_in_place() -> None:
    v1 = "config_version = 1  # schema\n[web]\nport = 8080\n"
    text, changes = migrate(v1)
    assert text == "config_version = 2  # schema\n[web]\nport = 8080\n"
    assert len(changes) == 1


def test_a_header_lookalike_inside_a_multiline_string_is_skipped() -> None:
    # The first line starting with "[" is inside a string: inserting there would change it.
    text = 'runtime_dir = """\n[not a table]\n"""\n[web]\nport = 8080\n'
    migrated, _ = migrate(text)
    assert tomllib.loads(migrated) == {**tomllib.loads(text), "config_version": 2}
    assert tomllib.loads(migrated)["runtime_dir"] == "[not a table]\n"
    assert migrated.index("config_version") > migrated.index("[not a table]")


def test_files_without_tables_crlf_and_empty() -> None:
    assert tomllib.loads(migrate('runtime_dir = "/run/x"')[0]) == {
        "runtime_dir": "/run/x", "config_version": 2}
    crlf, _ = migrate("# c\r\n[web]\r\nport = 8080\r\n")
    assert "\r\n" in crlf and "\n" not in crlf.replace("\r\n", "")
    assert tomllib.loads(crlf)["config_version"] == 2
    assert tomllib.loads(migrate("")[0]) == {"config_version": 2}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_the_shipped_samples_migrate_and_load(sample: Path) -> None:
    original = parse(tomllib.loads(sample.read_text()))
    text, _ = migrate(sample.read_text())
    assert parse(tomllib.loads(text)) == dataclasses.replace(original, config_version=2)


@pytest.mark.parametrize("bad", ["config_version = 3\n", "config_version = 0\n",
                                 'config_version = "2"\n', "[web\n"])
def test_newer_invalid_or_broken_versions_are_refused(bad: str) -> None:
    with pytest.raises(MigrationError) as info:
        migrate(bad)
    if "3" in bad:
        assert "newer callrec" in str(info.value) and "upgrade the software" in str(info.value)


def test_set_version_refuses_rather_than_change_another_value() -> None:
    # A config_version key inside a table is not the top-level one: placing it must not touch
    # the table's value (and [web] has no such key, so the loader would refuse it anyway).
    text = "[web]\nconfig_version = 5\n"
    out = set_version(text, 2)
    assert tomllib.loads(out) == {"config_version": 2, "web": {"config_version": 5}}


def test_parse_refuses_a_newer_version_and_reads_older_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse({"config_version": CURRENT_VERSION + 1}, "x.toml")
    assert "written by a newer callrec" in str(info.value)
    assert "upgrade the software" in str(info.value)
    assert parse({}).config_version == 1
    assert parse({"config_version": 1}).config_version == 1
    assert parse({"config_version": 2}).config_version == 2


# --- callrec config migrate -------------------------------------------------------------------


@pytest.fixture
def v1_file(tmp_path: Path) -> Path:
    path = tmp_path / "callrec.toml"
    path.write_text(V1)
    path.chmod(0o640)
    return path


def test_cli_check_says_it_would_migrate_and_changes_nothing(
    v1_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "migrate", "--config", str(v1_file), "--check"]) == 1
    assert "would be migrated to 2" in capsys.readouterr().out
    assert v1_file.read_text() == V1
    assert sorted(p.name for p in v1_file.parent.iterdir()) == ["callrec.toml"]


def test_cli_migrates_atomically_with_a_backup(
    v1_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "migrate", "--config", str(v1_file)]) == 0
    assert "migrated config_version 1 -> 2" in capsys.readouterr().out
    backup = v1_file.with_name("callrec.toml.v1.bak")
    assert backup.read_text() == V1
    assert load(v1_file).config_version == 2
    assert v1_file.read_text() == migrate(V1)[0]
    assert v1_file.stat().st_mode & 0o777 == 0o640 == backup.stat().st_mode & 0o777
    # No temporary file left, and a second run is a no-op.
    assert sorted(p.name for p in v1_file.parent.iterdir()) == ["callrec.toml",
                                                                "callrec.toml.v1.bak"]
    assert main(["config", "migrate", "--config", str(v1_file), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_cli_keeps_an_earlier_backup(v1_file: Path) -> None:
    earlier = v1_file.with_name("callrec.toml.v1.bak")
    earlier.write_text("# an older backup\n")
    assert main(["config", "migrate", "--config", str(v1_file)]) == 0
    assert earlier.read_text() == "# an older backup\n"
    assert v1_file.with_name("callrec.toml.v1.bak.2").read_text() == V1


@pytest.mark.parametrize(("content", "message"), [
    ("config_version = 9\n", "written by a newer callrec"),
    ("[web]\nbogus = 1\n", "key 'web.bogus' is unknown"),
    ("[web\n", "invalid TOML"),
])
def test_cli_refuses_and_loses_nothing(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "callrec.toml"
    path.write_text(content)
    assert main(["config", "migrate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing changed" in err
    assert path.read_text() == content
    assert os.listdir(tmp_path) == ["callrec.toml"]
