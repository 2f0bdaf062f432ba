"""The box on a SIP line, between real peers, for the call-flow tests.

    office side                     the box (callrec run)                 provider side
    baresip / SIPp   ◀──────▶  lan 127.0.0.10 │ trunk 127.0.0.20  ◀──────▶  SIPp / baresip
    at PBX_HOST:pbx_port                                         at PROVIDER_HOST:provider_port

Each party has an address of its own on loopback (Linux routes all of 127/8 there), so the box
tells the sides apart as it would on a real network. The office side is 127.0.0.1 because
baresip sends its RTP from an unbound socket, which the kernel gives 127.0.0.1 on loopback; the
box's relay would rightly ignore it from any other address. One appliance serves a whole test
module (starting one takes seconds); each test starts its peers on the configured ports and
finds its recordings as the ones that appeared since it began.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callrec.dsp.g711 import alaw_decode
from callrec.sim.harness import Appliance, Pulse, write_config
from recfiles import recording_wav, sidecar, sidecar_files
from sip_peers import SIPP_PCAPS, free_port, udp_bound

BOX_LAN_HOST = "127.0.0.10"
BOX_TRUNK_HOST = "127.0.0.20"
PBX_HOST = "127.0.0.1"
PROVIDER_HOST = "127.0.0.4"
SCENARIOS = Path(__file__).parent / "data" / "sip" / "scenarios"
TRUNK_USER = "callrec"
TRUNK_PASSWORD = "correct horse battery staple"  # a test secret, made up
TRUNK_REALM = "provider.test"
MEDIA_TIMEOUT_S = 5.0


@dataclass
class SipBox:
    app: Appliance
    lan: tuple[str, int]
    trunk: tuple[str, int]
    pbx: tuple[str, int]
    provider: tuple[str, int]
    seen: set[str] = field(default_factory=set)

    def recording_ids(self) -> set[str]:
        return {p.stem for p in sidecar_files(self.app)}

    def mark(self) -> None:
        """Remember the recordings present now: `new_recordings` returns only later ones."""
        self.seen = self.recording_ids()

    def new_recordings(self, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The sidecars of the `count` recordings made since `mark()`, once complete."""
        deadline = time.monotonic() + timeout
        while True:
            fresh = sorted(self.recording_ids() - self.seen)
            metas = [sidecar(self.app, rid) for rid in fresh]
            done = [m for m in metas if m.get("status") == "complete"]
            if len(done) >= count:
                return done
            assert time.monotonic() < deadline, (
                f"{len(done)} of {count} recordings complete after {timeout} s: "
                f"{[(m['id'], m.get('status')) for m in metas]}\n"
                f"{self.app.log_tail('daemon')}")
            time.sleep(0.2)

    def assert_no_new_recording(self, settle_s: float = 2.0) -> None:
        """Nothing was written (not even a sidecar) for the calls since `mark()`."""
        time.sleep(settle_s)
        fresh = self.recording_ids() - self.seen
        assert not fresh, f"unexpected recordings {fresh}"

    def channels(self, rec_id: str, directory: Path) -> np.ndarray:
        """The recording decrypted: an (n, 2) float array, office then remote party."""
        import wave

        with wave.open(str(recording_wav(self.app, rec_id, directory)), "rb") as w:
            assert w.getnchannels() == 2 and w.getframerate() == 8000
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return pcm.reshape(-1, 2).astype(np.float64)

    def sip_status(self, timeout: float = 5.0) -> dict[str, Any]:
        status = self.app.status() or {}
        sip: dict[str, Any] = status.get("sip") or {}
        return sip

    def daemon_log(self) -> str:
        return self.app.log_tail("daemon", 200)


def pcap_audio(name: str = "g711a.pcap") -> np.ndarray:
    """The speech SIPp plays from one of its pcaps (A-law RTP), decoded: the reference."""
    import struct

    data = (SIPP_PCAPS / name).read_bytes()
    off, payloads = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        packet = data[off + 16:off + 16 + incl]
        off += 16 + incl
        payloads.append(packet[42 + 12:])  # Ethernet, IPv4, UDP, then a 12-byte RTP header
    codes = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    return alaw_decode(codes).astype(np.float64)


def free_rtp_ports(size: int = 100) -> str:
    """A relay port range of this appliance's own: the default (20000-20999) would be shared
    with any other appliance running tests on this machine at the same time."""
    for _ in range(50):
        first = 21000 + size * random.randrange(11000 // size)  # below the ephemeral ports
        if not any(udp_bound(p, h) for p in range(first, first + size)
                   for h in (BOX_LAN_HOST, BOX_TRUNK_HOST)):
            return f"{first}-{first + size - 1}"
    raise AssertionError("no free relay port range")


def start_sip_box(directory: Path, pulse: Pulse, prompt: Path, *, refusal_key: str = "9",
                  extra: str = "", keepalive_s: float = 0.0) -> SipBox:
    """Write the configuration (credentials for TRUNK_REALM, a short media timeout), start
    the simulated board and the daemon. `keepalive_s`: the box's OPTIONS to the provider,
    off by default here (they would reach the SIPp scenarios at the provider's address)."""
    lan = (BOX_LAN_HOST, free_port(host=BOX_LAN_HOST))
    trunk = (BOX_TRUNK_HOST, free_port(host=BOX_TRUNK_HOST))
    pbx = (PBX_HOST, free_port(host=PBX_HOST))
    provider = (PROVIDER_HOST, free_port(host=PROVIDER_HOST))
    secret = directory / "secrets" / "trunk-password"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(TRUNK_PASSWORD + "\n")
    secret.chmod(0o600)
    sip = (
        "[sip]\n"
        "enabled = true\n"
        f'lan = "{lan[0]}:{lan[1]}"\n'
        f'trunk = "{trunk[0]}:{trunk[1]}"\n'
        f'pbx_peer = "{pbx[0]}:{pbx[1]}"\n'
        f'trunk_peer = "{provider[0]}:{provider[1]}"\n'
        f"media_timeout_s = {MEDIA_TIMEOUT_S}\n"
        f'rtp_ports = "{free_rtp_ports()}"\n'
        f'trunk_username = "{TRUNK_USER}"\n'
        f'trunk_password_file = "{secret}"\n'
        f'trunk_realm = "{TRUNK_REALM}"\n'
        f"trunk_keepalive_s = {keepalive_s}\n"
        f"{extra}"
    )
    config = write_config(directory, refusal_key=refusal_key, extra=sip)
    shutil.copy(prompt, directory / "data" / "prompts" / "test.wav")
    app = Appliance(directory, pulse, config)
    app.start()
    return SipBox(app, lan, trunk, pbx, provider)
