from __future__ import annotations

from pathlib import Path

import pytest

from callrec.config import Config, ConfigError, load, parse


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "callrec.toml"
    p.write_text(text)
    return p


def test_defaults_and_values(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, '[board]\nbackend = "sim"\n[web]\nport = 9000\n'))
    assert isinstance(cfg, Config)
    assert cfg.board.backend == "sim" and cfg.web.port == 9000
    assert cfg.line.outgoing_answer_delay_s == 6.0
    assert cfg.source == str(tmp_path / "callrec.toml")


def test_int_accepted_for_float() -> None:
    assert parse({"line": {"ring_timeout_s": 5}}).line.ring_timeout_s == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bord]\n", "unknown section or key 'bord' (did you mean 'board'?)"),
        ("[board]\nbackend = \"pi\"\n", "key 'board.backend': 'pi' is not one of hat, sim"),
        ("[web]\nprot = 1\n", "key 'web.prot' is unknown (did you mean 'port'?)"),
        ("[web]\nport = \"80\"\n", "key 'web.port': expected int, got str"),
        ("[web]\nport = true\n", "key 'web.port': expected int, got bool"),
        ("[line]\nring_timeout_s = -1\n", "key 'line.ring_timeout_s': must not be negative"),
        ("board = 3\n", "'board' must be a table"),
        ("[web\n", "invalid TOML"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(bad)
