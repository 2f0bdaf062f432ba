"""The diagnostics bundle (callrec.diagnostics) and the daemon's log ring (callrec.logring):
what goes in, what is removed, and the ring's bounds."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callrec import diagnostics as dg
from callrec.config import Config, ControllerConfig, SipConfig
from callrec.logring import LogRing

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "caller +33 6 12 34 56 78", "06.12.34.56.78", "0612345678", "33612345678",
    "sip:0612345678@192.0.2.1", "06-12-34-56-78", "tel:+33612345678;x",
])
def test_numbers_are_scrubbed_in_every_common_form(text: str) -> None:
    out = dg.scrub(text)
    assert "[number removed]" in out
    assert "12345678" not in out.replace(" ", "").replace(".", "").replace("-", "")


@pytest.mark.parametrize("text", [
    "2026-11-29 16:00:58,123 INFO callrec.daemon: call finished: recorded (in)",
    "recording 20261129T160058Z-0a1b2c3d indexed", "peer 192.168.100.200:5060",
    "rtp_ports 20000-20999", "prompt sha256 " + "ab" * 32, "pseudonym p-0123456789abcdef",
    "wrote 1234567 bytes",
])
def test_what_support_needs_is_kept(text: str) -> None:
    assert dg.scrub(text) == text


def test_session_like_tokens_are_scrubbed_hex_digests_kept() -> None:
    token = "Zq3vN0aB_k2-LmXr8sT1uVwYx9cDeFgH4iJ5oP6"
    assert dg.scrub(f"session {token} made") == "session [token removed] made"


def test_config_credentials_removed_and_controller_masked() -> None:
    config = Config(
        sip=SipConfig(trunk_username="alice-trunk", trunk_password_file="/etc/callrec/trunk.pw"),
        controller=ControllerConfig(name="Dr Marie Curie", address="1 rue X", contact="",
                                    dpo_contact="dpo@example.org"))
    doc = dg.redacted_config(config)
    assert doc["sip"]["trunk_username"] == dg.REMOVED
    assert doc["sip"]["trunk_password_file"] == "/etc/callrec/trunk.pw"  # a path stays
    assert doc["controller"]["name"] == dg.MASKED_SET
    assert doc["controller"]["contact"] == dg.MASKED_EMPTY
    assert doc["controller"]["dpo_contact"] == dg.MASKED_SET
    assert doc["privacy"]["refusal_key"] == "9"  # a DTMF key, not a secret
    text = dg.to_toml(doc)
    import tomllib
    assert tomllib.loads(text)["storage"]["data_dir"] == "/var/lib/callrec"
    for secret in ("alice-trunk", "Curie", "dpo@example.org", "rue X"):
        assert secret not in text


def members(blob: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n).decode() for n in zf.namelist()}


def test_bundle_members_and_scrubbing() -> None:
    inputs = dg.Inputs(
        created_at=NOW, made_by="a test", config=Config(),
        versions={"callrec": "1"}, status={"state": "idle", "faults": [
            {"part": "sip", "detail": "trunk 0612345678 rejected"}]},
        storage={"text": "SD card: 1 GB free"}, selftest=None,
        logs={"daemon.log": dg.Log("x INFO call from 0612345678\n", "ring"),
              "install.log": dg.Log(None, "/var/log/callrec/install.log: absent")})
    got = members(dg.build(inputs))
    assert list(got) == ["README.txt", "versions.json", "status.json", "storage.json",
                         "selftest.json", "config.toml", "logs/daemon.log", "logs/install.log"]
    assert "0612345678" not in "".join(got.values())
    fault = json.loads(got["status.json"])["faults"][0]
    assert fault["detail"] == "trunk [number removed] rejected"
    assert "absent" in got["logs/install.log"] and "none kept" in got["README.txt"]


def test_versions_name_the_libraries_and_c_libraries() -> None:
    v = dg.collect_versions(Config(), {"board": {"mcu_version": "1.4.0"}})
    assert v["board"] == {"backend": "hat", "mcu_firmware": "1.4.0", "mcu_connected": None,
                          "protocol_version": v["board"]["protocol_version"]}
    assert set(v["libraries"]) == set(dg.LIBRARIES) and v["libraries"]["bottle"]
    assert v["c_libraries"]["libsndfile"] and "PortAudio" in v["c_libraries"]["portaudio"]
    assert v["python"].startswith("3.")


def test_log_tail_reads_the_end_and_says_when_absent(tmp_path: Path) -> None:
    text, note = dg.read_log_tail(tmp_path / "none.log")
    assert text is None and "absent" in note
    log = tmp_path / "install.log"
    log.write_text("a" * 100 + "END")
    text, note = dg.read_log_tail(log, max_bytes=10)
    assert text == "aaaaaaaEND" and "the last 10 of 103 bytes" in note


def test_the_ring_keeps_the_last_records_within_its_bounds() -> None:
    ring = LogRing(capacity=5, max_chars=10_000)
    logger = logging.getLogger("test.ring")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        for i in range(8):
            logger.info("record %d", i)
        lines = ring.lines()
        assert len(lines) == 5 and lines[0].endswith("record 3") and ring.dropped == 3
        logger.error("x" * 50_000)  # one huge record is cut, its end kept
        assert len(ring.lines()[-1]) < 4200 and ring.lines()[-1].endswith("x")
        small = LogRing(capacity=1000, max_chars=2000)
        logger.addHandler(small)
        for _ in range(100):
            logger.info("y" * 100)
        assert sum(len(x) for x in small.lines()) <= 2000
    finally:
        logger.handlers.clear()
