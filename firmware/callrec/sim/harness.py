"""The simulated appliance as real processes, for end-to-end tests and benchmarks.

    PulseAudio (hw/sim/pulse-line.sh)  ─  `callrec sim line`  ─  `callrec run`

Each piece is started exactly as a user would start it; this module only writes a
configuration, starts them, waits until they are ready and stops the processes it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from callrec.sim.line_sim import request

REPO = Path(__file__).resolve().parents[3]
PULSE_SCRIPT = REPO / "hw" / "sim" / "pulse-line.sh"


class HarnessError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Pulse:
    """A private PulseAudio with the line's null sinks; `env` is what clients need."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env: dict[str, str] = {}

    def up(self) -> None:
        run_env = {**os.environ, "PA_DIR": str(self.directory)}
        out = subprocess.run(
            ["bash", str(PULSE_SCRIPT), "up"],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if out.returncode != 0:
            raise HarnessError(f"PulseAudio did not start: {out.stdout}{out.stderr}")
        for line in (self.directory / "env.sh").read_text().splitlines():
            m = re.match(r'export (\w+)="(.*)"', line)
            if m:
                self.env[m.group(1)] = m.group(2)

    def down(self) -> None:
        subprocess.run(
            ["bash", str(PULSE_SCRIPT), "down"],
            env={**os.environ, "PA_DIR": str(self.directory)},
            capture_output=True,
            timeout=30,
            check=False,
        )


def write_config(
    directory: Path,
    prompt: str = "test",
    extra: str = "",
    web_port: int | None = None,
    device: str = "callrec-line",
    audio_format: str = "wav",
    refusal_key: str | None = None,
) -> Path:
    """A sim-board configuration with every path inside `directory`. Recordings stay in WAV
    unless `audio_format` says otherwise: most tests compare the captured PCM sample for
    sample; the product's default, "compact", has tests of its own. The caller's refusal key
    is the product's default ("9") unless `refusal_key` says otherwise ("": off)."""
    run = directory / "run"
    data = directory / "data"
    run.mkdir(parents=True, exist_ok=True)
    (data / "prompts").mkdir(parents=True, exist_ok=True)
    (directory / "usb").mkdir(exist_ok=True)  # the stick's mount point (a test mounts a tmpfs)
    config = directory / "callrec.toml"
    config.write_text(
        f'runtime_dir = "{run}"\n'
        "[board]\n"
        'backend = "sim"\n'
        f'serial_port = "{run}/sim-serial"\n'
        f'sim_socket = "{run}/sim.sock"\n'
        f'capture_device = "{device}"\n'
        f'playback_device = "{device}"\n'
        "[line]\n"
        "outgoing_answer_delay_s = 3.0\n"
        "ring_timeout_s = 3.0\n"
        "[announcement]\n"
        f'directory = "{data}/prompts"\n'
        f'incoming = "{prompt}"\n'
        f'outgoing = "{prompt}"\n'
        "[storage]\n"
        f'data_dir = "{data}"\n'
        # The simulated board's stand-in for the Pi's OTP key, outside data_dir as the OTP is
        # outside the SD card: the device key on "the card" is wrapped by it.
        'key_binding = "file"\n'
        f'key_binding_file = "{directory / "sim" / "board-otp.key"}"\n'
        f'usb_mount_point = "{directory / "usb"}"\n'
        f'audio_format = "{audio_format}"\n'
        + (f'[privacy]\nrefusal_key = "{refusal_key}"\n' if refusal_key is not None else "")
        + "[web]\n"
        f"port = {web_port or free_port()}\n"
        "threads = 4\n"
        f"{extra}"
    )
    return config


class Appliance:
    """`callrec sim line` + `callrec run` on one configuration."""

    def __init__(self, directory: Path, pulse: Pulse | None, config: Path | None = None) -> None:
        self.directory = directory
        self.pulse = pulse
        self.config_path = config or write_config(directory)
        from callrec.config import load

        self.config = load(self.config_path)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        # The clock's state the simulated appliance sees (callrec.clock's CALLREC_CLOCK), so
        # that what it records and retains does not depend on this machine's NTP state.
        # None: the machine's own (and always on a real rig).
        self.clock: str | None = "synchronised" if pulse is not None else None

    @property
    def env(self) -> dict[str, str]:
        pulse_env = self.pulse.env if self.pulse else {}  # None: real devices (HIL rig)
        return {
            **os.environ,
            **pulse_env,
            "CALLREC_CONFIG": str(self.config_path),
            "PYTHONUNBUFFERED": "1",
            **({"CALLREC_CLOCK": self.clock} if self.clock else {}),
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.web.port}"

    def _spawn(self, name: str, *args: str) -> None:
        log = self.directory / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "callrec", *args, "--config", str(self.config_path)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def start_line(self, timeout_s: float = 20.0) -> None:
        self._spawn("line", "sim", "line")
        sock = Path(self.config.board.sim_socket)
        self._wait(lambda: sock.exists(), timeout_s, "line simulator socket", "line")

    def start_daemon(self, timeout_s: float = 30.0, wait_ready: bool = True) -> None:
        self._spawn("daemon", "run")
        self._wait(self._web_up, timeout_s, "web UI", "daemon")
        if wait_ready:
            self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            st = self.status()
            return bool(st and st["board"]["mcu_connected"] and st["board"]["audio_open"])

        self._wait(ready, timeout_s, "board ready (MCU link and audio)", "daemon")
        # PortAudio's first capture callbacks come 1-2 s after open: let them flow.
        time.sleep(2.0)

    def start(self) -> None:
        self.start_line()
        self.start_daemon()

    def _web_up(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/login", timeout=1):  # noqa: S310
                return True
        except OSError:
            return False

    def _wait(self, check: Any, timeout_s: float, what: str, proc: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            p = self.procs.get(proc)
            if p is not None and p.poll() is not None:
                raise HarnessError(
                    f"{proc} exited ({p.returncode}) before {what}:\n{self.log_tail(proc)}"
                )
            if check():
                return
            time.sleep(0.1)
        raise HarnessError(f"timed out waiting for {what}:\n{self.log_tail(proc)}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def status(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.config.status_path.read_text())
            return data
        except (FileNotFoundError, ValueError):
            return None

    def call(self, **script: Any) -> dict[str, Any]:
        reply = request(self.config.board.sim_socket, {"cmd": "call", "call": script})
        if not reply.get("ok"):
            raise HarnessError(f"simulated call failed: {reply}")
        return reply

    def sim(self, **payload: Any) -> dict[str, Any]:
        return request(self.config.board.sim_socket, payload)

    def press_privacy_button(self) -> None:
        reply = self.sim(cmd="button", name="privacy")
        if not reply.get("ok"):
            raise HarnessError(f"privacy button: {reply}")

    def recording_led(self) -> bool:
        """The recording LED's pin, read on the simulated board."""
        return bool(self.sim(cmd="led")["value"])

    def wait_idle(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Wait until the daemon is idle and the last recording is written and indexed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            st = self.status()
            if st and st["state"] == "idle" and not st["finalising"]:
                return st
            time.sleep(0.05)
        raise HarnessError(f"daemon not idle after {timeout_s} s: {self.status()}")

    def stop_proc(self, name: str, timeout_s: float = 15.0) -> int | None:
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def stop(self) -> None:
        for name in ("daemon", "line"):
            with contextlib.suppress(OSError):
                self.stop_proc(name)
