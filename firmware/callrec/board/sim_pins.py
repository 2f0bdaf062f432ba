"""The simulated board's push-button, pressed from outside the daemon.

With the "sim" backend the pins are gpiozero MockFactory pins inside the daemon's process, so
nothing outside it can reach them. This serves a unix socket next to the line simulator's
(`sim_socket` with "-gpio" added), one JSON request per connection, for the line simulator and
the tests: {"press": "privacy", "hold_s": 0.2} drives the button's pin low (pressed: the
button pulls to ground) then high, exactly as the real button would, so the same gpiozero
callback turns it into an event. {"read": "recording_led"} returns the LED pin's level.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_HOLD_S = 5.0


def gpio_socket_path(sim_socket: str) -> Path:
    path = Path(sim_socket)
    return path.with_name(f"{path.stem}-gpio{path.suffix or '.sock'}")


class SimPinServer:
    """Drives named MockFactory pins on requests from a unix socket."""

    def __init__(self, factory: Any, path: Path, buttons: dict[str, str],
                 outputs: dict[str, str]) -> None:
        self.factory, self.path = factory, path
        self.buttons, self.outputs = buttons, outputs  # name -> pin ("GPIO17")
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        sock.listen(4)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="sim-pins", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if "press" in request:
            pin = self.factory.pin(self.buttons[str(request["press"])])
            hold = min(MAX_HOLD_S, max(0.1, float(request.get("hold_s", 0.2))))
            pin.drive_low()  # pressed: the button pulls the input to ground
            time.sleep(hold)
            pin.drive_high()
            return {"ok": True}
        if "read" in request:
            return {"ok": True, "value": bool(self.factory.pin(self.outputs[request["read"]])
                                              .state)}
        raise ValueError("expected 'press' or 'read'")

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                try:
                    reply = self.handle(json.loads(f.readline(4096)))
                except (ValueError, KeyError, TypeError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                f.write(json.dumps(reply).encode() + b"\n")
                f.flush()
