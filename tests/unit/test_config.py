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


# --- [retention] -----------------------------------------------------------------------------


def test_retention_defaults_are_six_months_and_never_forever() -> None:
    cfg = parse({})
    assert cfg.retention.max_age_days == 180 and not cfg.retention.keep_forever
    policy = cfg.retention.policy()
    assert policy.max_age_days == 180
    assert policy.quota_bytes is None  # quota_gb = 0: no quota
    assert policy.min_free_bytes == 500_000_000
    assert cfg.retention.check_interval_minutes == 60


def test_retention_values_become_a_policy() -> None:
    cfg = parse(
        {"retention": {"max_age_days": 90, "quota_gb": 1.5, "min_free_mb": 0}}, "callrec.toml"
    )
    policy = cfg.retention.policy()
    assert (policy.max_age_days, policy.quota_bytes, policy.min_free_bytes) == (
        90,
        1_500_000_000,
        0,
    )
    assert parse({"retention": {"quota_gb": 2}}).retention.policy().quota_bytes == 2 * 10**9


@pytest.mark.parametrize("age", [{}, {"max_age_days": 0}])
def test_retention_forever_only_with_the_explicit_flag(age: dict[str, int]) -> None:
    cfg = parse({"retention": {"keep_forever": True, **age}})
    assert cfg.retention.max_age_days == 0  # shown as no age limit, never as 180
    policy = cfg.retention.policy()
    assert policy.max_age_days is None and policy.keep_forever


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[retention]\nmax_age_days = 0\n",
            "key 'retention.max_age_days': 0 would keep recordings forever",
        ),
        (
            "[retention]\nkeep_forever = true\nmax_age_days = 30\n",
            "key 'retention.keep_forever': true contradicts max_age_days = 30",
        ),
        ("[retention]\nmax_age_days = -1\n", "key 'retention.max_age_days': must not be negative"),
        ("[retention]\nmin_free_mb = -5\n", "key 'retention.min_free_mb': must not be negative"),
        ("[retention]\nquota_gb = -1.0\n", "key 'retention.quota_gb': must not be negative"),
        ("[retention]\nquota_gb = nan\n", "key 'retention.quota_gb': must be a number of GB"),
        ("[retention]\nquota_gb = inf\n", "key 'retention.quota_gb': must be a number of GB"),
        ("[retention]\nmax_age_days = 30.5\n", "key 'retention.max_age_days': expected int"),
        ("[retention]\nmax_age_days = \"180\"\n", "key 'retention.max_age_days': expected int"),
        ("[retention]\nkeep_forever = \"yes\"\n", "key 'retention.keep_forever': expected bool"),
        ("[retention]\nkeep_forever = 1\n", "key 'retention.keep_forever': expected bool"),
        ("[retention]\nmin_free_mb = 1.5\n", "key 'retention.min_free_mb': expected int"),
        (
            "[retention]\ncheck_interval_minutes = 0\n",
            "key 'retention.check_interval_minutes': must be from 1 to 1440",
        ),
        (
            "[retention]\ncheck_interval_minutes = 10080\n",
            "key 'retention.check_interval_minutes': must be from 1 to 1440",
        ),
        ("[retention]\nmax_age = 30\n", "key 'retention.max_age' is unknown (did you mean"),
        ("[retension]\n", "unknown section or key 'retension' (did you mean 'retention'?)"),
    ],
)
def test_retention_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


# --- [sip] -----------------------------------------------------------------------------------
SIP_OK = {"enabled": True, "lan": "192.168.1.2:5060", "trunk": "203.0.113.7:5060",
          "pbx_peer": "192.168.1.10:5060", "trunk_peer": "198.51.100.1:5060"}


def test_sip_line_off_by_default_and_read_when_on() -> None:
    assert not parse({}).sip.enabled
    cfg = parse({"sip": {**SIP_OK, "rtp_ports": "30000-30099", "media_timeout_s": 20}}).sip
    assert cfg.address("lan") == ("192.168.1.2", 5060)
    assert cfg.address("trunk_peer") == ("198.51.100.1", 5060)
    assert cfg.rtp_range == (30000, 30099) and cfg.media_timeout_s == 20.0
    v6 = parse({"sip": {**SIP_OK, "trunk": "[2001:db8::2]:5060"}}).sip
    assert v6.address("trunk") == ("2001:db8::2", 5060)
    # One socket for both sides: allowed while the peers are different hosts.
    same = parse({"sip": {**SIP_OK, "trunk": SIP_OK["lan"]}}).sip
    assert same.lan == same.trunk


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lan": ""}, "key 'sip.lan': a SIP line needs it"),
        ({"pbx_peer": "192.168.1.10"}, "key 'sip.pbx_peer': '192.168.1.10' is not host:port"),
        ({"trunk_peer": "h:99999"}, "the port must be from 1 to 65535"),
        ({"lan": "::1:5060"}, "write an IPv6 address in brackets"),
        ({"lan": "0.0.0.0:5060"}, "not an address peers can reach"),
        ({"trunk": "box.example:5060"}, "must be the box's IP address on that network"),
        ({"trunk": "192.168.1.2:5060", "trunk_peer": "192.168.1.10:5080"},
         "sides are told apart by the peer's host"),
        ({"rtp_ports": "20000"}, "key 'sip.rtp_ports'"),
        ({"rtp_ports": "20000-20003"}, "at least 8 ports"),
        ({"rtp_ports": "80-2000"}, "from 1024 to 65535"),
        ({"media_timeout_s": 1.0}, "from 5 to 3600 seconds"),
        ({"trunk_username": "office"}, "trunk_username and trunk_password_file go together"),
        ({"trunk_username": "office", "trunk_password_file": "pw"}, "must be an absolute path"),
    ],
)
def test_sip_errors_name_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"key 'sip\.") as info:
        parse({"sip": {**SIP_OK, **change}}, "callrec.toml")
    assert message in str(info.value)


def test_sip_addresses_not_checked_while_the_line_is_off() -> None:
    assert parse({"sip": {"enabled": False, "lan": "nonsense"}}).sip.lan == "nonsense"
