"""Runs the HAT MCU's own firmware (hw/mcu/callrec_mcu) under CPython on a pseudo-terminal.

`SimulatedLine` models the analog line that feeds the MCU's ADC; `McuHost` is the simulated
board around the firmware: a HAL whose UART is the master side of a pty (the daemon opens the
slave with pyserial like /dev/serial0), whose relay and LED are plain flags, and whose clock is
the count of simulated ADC samples, so debounce and watchdog timing are those of the real MCU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import tty
from pathlib import Path

from callrec_mcu.firmware import Mcu

log = logging.getLogger(__name__)

BATTERY_V = 48.0  # on-hook DC
OFF_HOOK_V = 8.0  # loop voltage with an office phone off-hook
RING_VRMS = 75.0
RING_HZ = 25.0
CID_DELAY_S = 0.5  # EN 300 659 / Bell: the FSK burst starts >= 500 ms after the first ring
WAKE_S = 0.01  # the host thread steps the firmware in 10 ms batches: low CPU, same timing
MAX_BATCH = 500  # samples per wake-up at most, so stop() is never kept waiting


class SimulatedLine:
    """The phone line as the MCU's ADC sees it. Setters are thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ringing = False
        self._off_hook = False
        self._polarity = 1
        self._battery = True
        self._ring_stopped_at = 0.0
        self._cid: tuple[str, str, float] | None = None

    def ring(self, on: bool) -> None:
        """Ringing voltage on/off (ignored while off-hook: the exchange has tripped it)."""
        with self._lock:
            if self._ringing and not on:
                self._ring_stopped_at = time.monotonic()
            self._ringing = on

    def off_hook(self, off: bool) -> None:
        """An office phone goes off-hook (True) or back on-hook; off-hook trips the ringing."""
        with self._lock:
            self._off_hook = off
            if off and self._ringing:
                self._ringing = False
                self._ring_stopped_at = time.monotonic()

    @property
    def is_off_hook(self) -> bool:
        with self._lock:
            return self._off_hook

    def reverse_polarity(self) -> None:
        with self._lock:
            self._polarity = -self._polarity

    def send_caller_id(self, number: str | None, name: str | None) -> None:
        """What the CID chip decodes next, CID_DELAY_S after ringing stops (or after now)."""
        with self._lock:
            self._cid = (number or "", name or "", time.monotonic())

    def disconnect(self) -> None:
        """Loss of line battery (0 V): the exchange clears down or the cable is pulled."""
        with self._lock:
            self._battery = False

    def reconnect(self) -> None:
        with self._lock:
            self._battery = True

    def volts_at(self, t_ms: int) -> float:
        """The line voltage at simulated time t_ms (the ringing phase follows it)."""
        with self._lock:
            if not self._battery:
                return 0.0
            dc = (OFF_HOOK_V if self._off_hook else BATTERY_V) * self._polarity
            if not self._ringing or self._off_hook:
                return dc
        return dc + RING_VRMS * math.sqrt(2) * math.sin(2 * math.pi * RING_HZ * t_ms / 1000)

    def take_caller_id(self) -> tuple[str, str] | None:
        """The pending caller ID once its FSK burst would be over, else None."""
        with self._lock:
            if self._cid is None or self._ringing:
                return None
            number, name, queued_at = self._cid
            if time.monotonic() - max(queued_at, self._ring_stopped_at) < CID_DELAY_S:
                return None
            self._cid = None
            return number, name


class _SimHal:
    """firmware.Mcu's HAL over a pty master; everything runs on the host thread."""

    def __init__(self, line: SimulatedLine, master_fd: int, write_lock: threading.Lock) -> None:
        self.line = line
        self.master_fd = master_fd
        self.write_lock = write_lock
        self.now_ms = 0
        self.relay = False
        self.fault_led = False
        self._rx = b""
        self.dropped_tx = 0

    def pump(self) -> None:
        """Read what the Pi sent since the last batch (one syscall per batch, not per sample)."""
        try:
            self._rx += os.read(self.master_fd, 4096)
        except OSError:  # nothing there (EAGAIN), or EIO: a real UART would just hear nothing
            pass

    def adc_line_volts(self) -> float:
        return self.line.volts_at(self.now_ms)

    def set_relay(self, closed: bool) -> None:
        self.relay = closed

    def set_fault_led(self, on: bool) -> None:
        self.fault_led = on

    def uart_read(self) -> bytes:
        data, self._rx = self._rx, b""
        return data

    def uart_write(self, data: bytes) -> None:
        with self.write_lock:
            try:
                os.write(self.master_fd, data)
            except OSError:  # buffer full (nobody reading) or pty gone: a UART drops bytes too
                self.dropped_tx += 1

    def ticks_ms(self) -> int:
        return self.now_ms

    def ticks_diff(self, new: int, old: int) -> int:
        return new - old  # the simulated clock never wraps

    def cid_poll(self) -> tuple[str, str] | None:
        return self.line.take_caller_id()


class McuHost:
    """The simulated HAT MCU: the real firmware on a pty, stepped at 1 kHz simulated ADC rate."""

    def __init__(self, line: SimulatedLine, link_path: str | None = None) -> None:
        self.line = line
        self.link_path = link_path
        self._master, self._slave = os.openpty()
        # Raw: no echo (the firmware would read its own frames back), no line editing, no CRLF.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._port_path = os.ttyname(self._slave)
        self._write_lock = threading.Lock()
        self._hal = _SimHal(line, self._master, self._write_lock)
        self._mcu = Mcu(self._hal)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        if link_path is not None:
            self._link(link_path)

    def _link(self, link_path: str) -> None:
        path = Path(link_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self._port_path)
        tmp.replace(path)  # atomic: a reader sees the old link or the new one, never none

    @property
    def port_path(self) -> str:
        """The pty slave device to open (link_path points here too)."""
        return self._port_path

    @property
    def relay_closed(self) -> bool:
        return self._hal.relay

    @property
    def fault_led(self) -> bool:
        return self._hal.fault_led

    @property
    def firmware(self) -> Mcu:
        """The firmware object itself, for tests that inspect its state."""
        return self._mcu

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("McuHost cannot be restarted: create a new one")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mcu-host", daemon=True)
            self._thread.start()
            log.info("simulated MCU on %s", self._port_path)

    def stop(self) -> None:
        """Stop the firmware and destroy the pty: the serial port disappears, as if unplugged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._closed:
            return
        self._closed = True
        if self.link_path is not None:
            path = Path(self.link_path)
            with contextlib.suppress(OSError):
                if path.is_symlink() and os.readlink(path) == self._port_path:
                    path.unlink()
        os.close(self._master)
        os.close(self._slave)

    def inject_garbage(self, data: bytes) -> None:
        """Raw bytes onto the MCU → Pi line (between frames, never inside one)."""
        self._hal.uart_write(data)

    def _run(self) -> None:
        started = time.monotonic()
        hal, mcu = self._hal, self._mcu
        while not self._stop.wait(WAKE_S):
            due_ms = int((time.monotonic() - started) * 1000)
            hal.pump()
            for _ in range(min(due_ms - hal.now_ms, MAX_BATCH)):
                hal.now_ms += 1
                mcu.step()
