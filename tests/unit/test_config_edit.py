"""config_edit: keys changed in the configuration's TOML text, everything else kept as written."""

from __future__ import annotations

import random
import tomllib

import pytest

from callrec.config import parse
from callrec.config_edit import ConfigEditError, format_string, format_value, update

FILE = '''\
# callrec configuration for the front desk.
# Jean, 2024-05-02: see the works council minutes before changing [line].

[board]
backend = "sim"   # the simulator, on the bench

[line]
name = "accueil" # the reception
country = "fr"
record_outgoing = true  # agreed on 12 March

[controller]
address = """12 rue des "Lilas"
75011 Paris"""   # multi-line: kept as the office wrote it
name = 'Cabinet Dupont'

[sip]
name = "sip"  # not the [line] name
'''


def test_only_the_value_changes_and_its_comment_stays() -> None:
    out = update(FILE, {("line", "country"): "us", ("line", "record_outgoing"): False})
    assert out == FILE.replace('country = "fr"', 'country = "us"').replace(
        "record_outgoing = true  # agreed", "record_outgoing = false  # agreed")


def test_same_key_in_another_section_is_left_alone() -> None:
    out = update(FILE, {("sip", "name"): "trunk"})
    data = tomllib.loads(out)
    assert data["sip"]["name"] == "trunk" and data["line"]["name"] == "accueil"
    assert 'name = "trunk"  # not the [line] name' in out
    assert 'name = "accueil" # the reception' in out


def test_a_multi_line_value_is_replaced_whole() -> None:
    out = update(FILE, {("controller", "address"): "1 place X\n69000 Lyon"})
    data = tomllib.loads(out)
    assert data["controller"]["address"] == "1 place X\n69000 Lyon"
    assert data["controller"]["name"] == "Cabinet Dupont"  # the literal string after it
    assert "# multi-line: kept as the office wrote it" in out
    assert "Lilas" not in out


@pytest.mark.parametrize("text", [
    'quote " and backslash \\ and \\n not a newline',
    "real\nnewline\r\nand\ttab",
    "unicode: Émilie Ñandú 中文 — ☎ 🎙",
    '"""three quotes""" and \'\'\'three apostrophes\'\'\'',
    "control \x00\x01\x1f\x7f chars",
    "# not a comment",
    "",
    "trailing backslash \\",
])
def test_tricky_strings_round_trip(text: str) -> None:
    out = update(FILE, {("controller", "name"): text, ("line", "name"): text})
    data = tomllib.loads(out)
    assert data["controller"]["name"] == text and data["line"]["name"] == text
    assert data["controller"]["address"].startswith("12 rue")
    parse(data)  # the configuration's own validation accepts it


def test_missing_keys_and_sections_are_added_where_they_belong() -> None:
    out = update(FILE, {("line", "ring_timeout_s"): 5.0, ("retention", "max_age_days"): 90,
                        ("web", "language"): "fr"})
    lines = out.splitlines()
    assert lines[lines.index("record_outgoing = true  # agreed on 12 March") + 1] == \
        "ring_timeout_s = 5.0"
    assert out.endswith('[retention]\nmax_age_days = 90\n\n[web]\nlanguage = "fr"\n')
    config = parse(tomllib.loads(out))
    assert config.line.ring_timeout_s == 5.0 and config.retention.max_age_days == 90


def test_config_version_is_stamped_before_the_first_table() -> None:
    out = update(FILE, {}, version=2)
    data = tomllib.loads(out)
    assert data["config_version"] == 2 and "config_version" not in data["board"]
    head, _, rest = out.partition("config_version = 2\n")
    assert head.startswith("# callrec configuration") and rest.lstrip().startswith("[board]")
    again = update(out, {("line", "country"): "eu"}, version=3)
    assert again.count("config_version") == 1 and tomllib.loads(again)["config_version"] == 3
    # A file whose first table has its own comment right above it keeps them together.
    out = update('# the board\n[board]\nbackend = "sim"\n', {}, version=2)
    assert out == 'config_version = 2\n\n# the board\n[board]\nbackend = "sim"\n'


def test_top_level_and_dotted_keys() -> None:
    out = update('runtime_dir = "/run/a"\nline.country = "fr"\n', {
        ("", "runtime_dir"): "/run/b", ("line", "country"): "us"}, version=2)
    assert out == 'runtime_dir = "/run/b"\nconfig_version = 2\nline.country = "us"\n'


def test_arrays_and_comments_inside_values_are_skipped_whole() -> None:
    text = '[line]\nx = [1, # one\n  "]", 2]  # end\nname = "a"\n'
    out = update(text, {("line", "name"): "b"})
    assert out == text.replace('"a"', '"b"')


def test_values_format_as_toml() -> None:
    assert format_value(True) == "true" and format_value(0) == "0"
    assert format_value(2.0) == "2.0" and format_value(1e-7) == "1e-07"
    assert tomllib.loads(f"x = {format_value(1e300)}")["x"] == 1e300
    assert format_string("a\"b") == '"a\\"b"'
    with pytest.raises(ConfigEditError):
        format_value([1])  # type: ignore[arg-type]


def test_refusals_name_the_problem_and_do_not_guess() -> None:
    with pytest.raises(ConfigEditError, match="not valid TOML"):
        update("[line\n", {("line", "name"): "x"})
    # An inline table cannot take a new key: refused, not silently half-done.
    with pytest.raises(ConfigEditError, match=r"could not be changed|cannot be written"):
        update('line = {name = "a"}\n', {("line", "country"): "us"})


def test_random_strings_always_round_trip() -> None:
    rng = random.Random(7)
    alphabet = 'ab"\\\'\n\r\t#=[]{}é€\x00\x7f\u2028 '
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        out = update(FILE, {("controller", "contact"): text, ("line", "name"): text})
        data = tomllib.loads(out)
        assert data["controller"]["contact"] == text and data["line"]["name"] == text
        assert data["line"]["country"] == "fr" and data["sip"]["name"] == "sip"
