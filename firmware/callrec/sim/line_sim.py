"""`callrec sim line`: the simulated HAT and phone line, as a process of its own.

It runs the HAT microcontroller's own firmware (hw/mcu) under CPython on a pseudo-terminal
(the daemon opens it with pyserial like /dev/serial0), models the analog line feeding that
firmware's ADC, and plays the far end through PulseAudio. Calls are placed by `callrec sim
call` / `sim demo` over a unix socket carrying one JSON object per line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import wave
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from callrec.config import Config
from callrec.dsp.gen_callerid import etsi_message, fsk_burst, mdmf_message
from callrec.dsp.gen_dtmf import dial, frequencies
from callrec.dsp.gen_tones import tone_plan_signal
from callrec.dsp.signal import to_pcm16
from callrec.sim.farend import FarEnd
from callrec.sim.mcu_host import McuHost, SimulatedLine

log = logging.getLogger(__name__)

FAREND_DEVICE = "callrec-farend"
MAX_REQUEST = 64 * 1024
# The far end's playback stream, idle between sounds, loses the start of what is written when
# it restarts (a 0.1 s key was heard as 20 ms and not decoded; a dialled "*" vanished). Short
# sounds that must be heard whole (keys, dialled digits) are written after this much silence.
PRIME_S = 0.3


@dataclass
class CallScript:
    """What the simulated parties do during one call."""

    direction: str = "in"  # "in": the far end calls the office; "out": the office calls
    number: str | None = None  # caller ID sent between the rings (incoming)
    name: str | None = None
    absence: str | None = None  # caller ID without a number: "P" withheld, "O" unavailable
    # How caller ID reaches the box: "etsi-v23" / "bell202" FSK bursts on the line between
    # the first two rings, "dtmf" digits before the first ring, "chip" the HAT's demodulator.
    cid: str = "etsi-v23"
    digits: str = ""  # dialled by the office (outgoing)
    audio: str | None = None  # far-end speech, WAV (mono 16-bit at the line rate)
    talk_s: float | None = None  # how long the far end stays after answer (default: audio)
    answer: bool = True  # False: nobody picks up
    rings: int = 2  # rings before the office answers (incoming)
    ring_on_s: float = 1.5  # French cadence: 1.5 s on, 3.5 s off
    ring_off_s: float = 3.5
    answer_after_s: float = 3.0  # outgoing: far end picks up this long after dialling
    reversal_on_answer: bool = False  # outgoing: the exchange signals answer by a reversal
    wait_for_prompt: bool = True  # the far end listens to the announcement before talking
    keys_during_prompt: str = ""  # DTMF keys the far end presses while the prompt plays
    keys_after_s: float = 0.3  # ... this long after the answer (the prompt has started)
    # A staff member presses the HAT's privacy button this long after the answer (None: not).
    privacy_button_after_s: float | None = None
    hangup_after_s: float | None = None  # hang up this long after answer (overrides talk)
    # Who ends the call: "office" (on-hook), "caller" (the exchange reverses the polarity), or
    # "caller-tone" (the exchange only plays busy tone; the office hangs up busy_s later).
    hangup: str = "office"
    busy_s: float = 4.0
    heard_path: str | None = None  # write what the far end heard to this WAV file

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallScript:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown call field(s): {', '.join(sorted(unknown))}")
        script = cls(**data)
        if script.direction not in ("in", "out"):
            raise ValueError("direction must be in or out")
        if script.hangup not in ("office", "caller", "caller-tone"):
            raise ValueError("hangup must be office, caller or caller-tone")
        if script.cid not in ("etsi-v23", "bell202", "dtmf", "chip", "none"):
            raise ValueError("cid must be etsi-v23, bell202, dtmf, chip or none")
        for digit in script.digits + script.keys_during_prompt:
            frequencies(digit)  # raises ValueError for a key a phone does not have
        return script


def dtmf_caller_id(number: str | None, absence: str | None) -> str:
    """The DTMF keys of a caller-ID message: A<number>C, or D<reason>C without a number."""
    if number:
        return f"A{number}C"
    return {"P": "D10C", "O": "D00C"}.get(absence or "O", "D00C")


def read_wav(path: str, rate: int) -> bytes:
    with wave.open(path, "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, rate):
            raise ValueError(f"{path}: far-end audio must be mono 16-bit {rate} Hz WAV")
        return w.readframes(w.getnframes())


def write_wav(path: str, pcm: bytes, rate: int) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class LineSimulator:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rate = config.board.sample_rate
        self.line = SimulatedLine()
        self.mcu = McuHost(self.line, link_path=config.board.serial_port)
        # The line carries what the box plays back to its capture side; modelled while the
        # line is idle with the relay closed (the self-test's loopback): see farend.py.
        self.farend = FarEnd(FAREND_DEVICE, self.rate, echo=lambda: (
            self.mcu.relay_closed and not self.line.is_off_hook))
        self._call_lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None

    # -- one call ----------------------------------------------------------------------------
    def place_call(self, s: CallScript) -> dict[str, Any]:
        with self._call_lock:
            speech = read_wav(s.audio, self.rate) if s.audio else b""
            t0 = time.monotonic()
            timeline: dict[str, float] = {}
            if s.direction == "in":
                answered = self._ring(s, timeline, t0)
            else:
                self.line.off_hook(True)
                timeline["off_hook"] = 0.0
                if s.digits:
                    # The office hears the dial tone, then dials (silence first: see PRIME_S).
                    time.sleep(0.5 - PRIME_S)
                    self.farend.say(bytes(2 * int(self.rate * PRIME_S))
                                    + to_pcm16(dial(s.digits, rate=self.rate)))
                    timeline["dialled"] = time.monotonic() - t0
                time.sleep(s.answer_after_s)
                if s.reversal_on_answer:
                    self.line.reverse_polarity()
                answered = True
            result: dict[str, Any] = {"ok": True, "answered": answered, "script": asdict(s)}
            if not answered:
                result["timeline"] = timeline
                return result
            t_answer = time.monotonic()
            timeline["answer"] = t_answer - t0
            self.farend.start_listening()
            end = t_answer + s.hangup_after_s if s.hangup_after_s is not None else None
            heard_prompt = True
            button: threading.Timer | None = None
            if s.privacy_button_after_s is not None:
                button = threading.Timer(s.privacy_button_after_s, self.press_button)
                button.start()
            if s.keys_during_prompt:
                # Silence around the keys: see PRIME_S.
                lead_s = min(PRIME_S, s.keys_after_s)
                time.sleep(s.keys_after_s - lead_s)
                keys = dial(s.keys_during_prompt, tone_s=0.1, gap_s=0.1, rate=self.rate)
                self.farend.say(bytes(2 * int(self.rate * lead_s)) + to_pcm16(keys)
                                + bytes(2 * int(self.rate * PRIME_S)))
            if s.wait_for_prompt:
                heard_prompt = self.farend.wait_for_prompt_end(
                    timeout_s=min(30.0, s.hangup_after_s or 30.0)
                )
            timeline["speech_start"] = time.monotonic() - t0
            if end is None:
                talk = s.talk_s if s.talk_s is not None else len(speech) / (2 * self.rate)
                end = time.monotonic() + talk
            self.farend.say(speech, until=end)
            time.sleep(max(0.0, end - time.monotonic()))
            timeline["speech_end"] = time.monotonic() - t0
            if s.hangup == "caller":
                self.line.reverse_polarity()  # the exchange signals clear-down
                time.sleep(0.3)
            elif s.hangup == "caller-tone":
                # No line signal at all: only the exchange's busy tone, until the office
                # notices and hangs up.
                self.farend.say(to_pcm16(tone_plan_signal(
                    self.config.line.country, "busy", s.busy_s)))
            if button is not None:
                button.join()  # pressed before the hang-up if the script says so
            self.line.off_hook(False)
            timeline["hangup"] = time.monotonic() - t0
            time.sleep(0.2)  # let the last of the prompt (if any) arrive
            heard = self.farend.stop_listening()
            if s.heard_path:
                write_wav(s.heard_path, heard, self.rate)
            result.update(
                timeline=timeline,
                heard_prompt=heard_prompt,
                heard_seconds=len(heard) / (2 * self.rate),
            )
            return result

    def _send_caller_id(self, s: CallScript) -> float:
        """Send the script's caller ID the way it asks; returns the seconds it took."""
        started = time.monotonic()
        if s.cid == "chip":
            self.line.send_caller_id(s.number, s.name)
        elif s.cid == "dtmf":
            self.farend.say(to_pcm16(dial(dtmf_caller_id(s.number, s.absence), rate=self.rate)))
        elif s.cid in ("etsi-v23", "bell202"):
            if s.cid == "etsi-v23":
                message = etsi_message(s.number, s.name, absence=s.absence)
            else:
                message = mdmf_message(s.number, s.name, absence=s.absence)
            time.sleep(0.25)  # ETSI: the burst starts a few hundred ms after the ring ends
            self.farend.say(to_pcm16(fsk_burst(message, s.cid)))
        return time.monotonic() - started

    def _ring(self, s: CallScript, timeline: dict[str, float], t0: float) -> bool:
        rings = s.rings if s.answer else max(1, s.rings)
        has_cid = s.cid != "none" and bool(s.number or s.name or s.absence)
        if has_cid and s.cid == "dtmf":
            self._send_caller_id(s)  # DTMF caller ID comes before the first ring
        for n in range(rings):
            self.line.ring(True)
            time.sleep(s.ring_on_s)
            self.line.ring(False)
            pause = s.ring_off_s if n < rings - 1 or not s.answer else 0.2
            if n == 0 and has_cid and s.cid != "dtmf":
                # Europe and the US send caller ID between the first and second ring.
                pause = max(0.2, pause - self._send_caller_id(s))
            time.sleep(pause)
        timeline["rings_done"] = time.monotonic() - t0
        if not s.answer:
            return False
        self.line.off_hook(True)
        return True

    # -- the board's pins (in the daemon: see board/sim_pins.py) -----------------------------
    def _pins(self, payload: dict[str, Any]) -> dict[str, Any]:
        from callrec.board.sim_pins import gpio_socket_path

        return request(str(gpio_socket_path(self.config.board.sim_socket)), payload, 10.0)

    def press_button(self, name: str = "privacy") -> None:
        """Press a push-button of the HAT, as a staff member would."""
        try:
            self._pins({"press": name})
        except (OSError, ValueError) as exc:
            log.error("cannot press the %s button: %s", name, exc)

    # -- control socket ----------------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "call":
            return self.place_call(CallScript.from_dict(request.get("call", {})))
        if cmd == "button":  # not under the call lock: a button is pressed during calls
            return self._pins({"press": str(request.get("name", "privacy"))})
        if cmd == "led":
            return self._pins({"read": "recording_led"})
        if cmd == "status":
            return {
                "ok": True,
                "relay_closed": self.mcu.relay_closed,
                "fault_led": self.mcu.fault_led,
                "port": self.mcu.port_path,
            }
        if cmd == "garbage":
            self.mcu.inject_garbage(bytes.fromhex(str(request.get("hex", ""))))
            return {"ok": True}
        raise ValueError(f"unknown command {cmd!r}")

    def _serve_client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            line = f.readline(MAX_REQUEST)
            try:
                reply = self.handle(json.loads(line))
            except (ValueError, TypeError, OSError) as exc:
                reply = {"ok": False, "error": str(exc)}
            f.write(json.dumps(reply).encode() + b"\n")
            f.flush()

    def serve(self) -> None:
        """Run until stop(): MCU firmware, far-end audio, control socket."""
        path = Path(self.config.board.sim_socket)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.mcu.start()
        self.farend.open()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        os.chmod(path, 0o600)
        self._sock.listen(4)
        self._sock.settimeout(0.5)
        log.info("line simulator ready: MCU on %s, control on %s", self.mcu.port_path, path)
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._serve_client, args=(conn,), daemon=True).start()
        finally:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self.farend.close()
            self.mcu.stop()

    def stop(self) -> None:
        self._stop.set()


def request(socket_path: str, payload: dict[str, Any], timeout_s: float = 300.0) -> dict[str, Any]:
    """Send one request to a running simulator and return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(socket_path)
        with sock.makefile("rwb") as f:
            f.write(json.dumps(payload).encode() + b"\n")
            f.flush()
            reply = f.readline()
    if not reply:
        raise ConnectionError("the line simulator closed the connection")
    result: dict[str, Any] = json.loads(reply)
    return result
