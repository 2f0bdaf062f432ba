"""Every command and sub-command of `callrec` explains itself with --help."""

from __future__ import annotations

import argparse

import pytest

from callrec.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _commands(sub, (*prefix, name))


COMMANDS = list(_commands(build_parser()))


def test_the_commands_a_technician_needs_exist() -> None:
    for needed in [("run",), ("status",), ("user", "add"), ("sim", "call"), ("sim", "line"),
                   ("sim", "demo"), ("setup-code",), ("reindex",), ("prompts", "generate")]:
        assert needed in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: callrec " + " ".join(command))
    assert len(out.splitlines()) >= 3


def test_config_error_is_clear(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.toml"
    assert main(["status", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"configuration error: {missing}: configuration file not found" in err
