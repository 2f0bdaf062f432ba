"""The serial link to the HAT's MCU: a background thread that turns frames into board events.

Three layers, as hw/PROTOCOL.md describes them: `hat_protocol.FrameParser` (pure bytes → messages),
`LinkMonitor` (pure: messages and port changes → events and link health, with the time passed
in), and `McuLink` (the I/O edge: pyserial, the thread, re-opening with back-off, the PINGs).
Nothing here logs caller-ID contents.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import serial

from callrec import events
from callrec.board import hat_protocol as hp

log = logging.getLogger(__name__)

PART = "mcu"
# The loop's idle tick (ping and link-timeout granularity). Commands do not wait for it: they
# interrupt the read (cancel_read), so a relay closes within a millisecond or two.
READ_TIMEOUT_S = 0.5
WRITE_TIMEOUT_S = 0.5  # a UART never blocks this long; a stuck pty or USB adapter does
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0


class LinkMonitor:
    """Decides which events a message or a port change produces, and whether the link is up.

    Health is reported as BoardFault(part="mcu") on transitions only. After a watchdog expiry
    or an MCU restart the relay is open whatever the Pi asked for, so the link counts as faulty
    until a PING is acknowledged again (both directions then work and the watchdog is re-armed).
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.ok: bool | None = None
        self.version: str | None = None
        self.protocol: int | None = None
        self._open = False
        self._opened_at = 0.0
        self._last_frame_at: float | None = None
        self._await_ping_ack = False
        # Last line state the Pi was told, to fill gaps from a STATE snapshot. The daemon starts
        # out assuming an idle line, so only a snapshot that differs produces an event.
        self._ring = False
        self._off_hook = False

    def connected(self, now: float) -> bool:
        """A valid message arrived within timeout_s on the open port."""
        last = self._last_frame_at
        return self._open and last is not None and now - last < self.timeout_s

    def port_opened(self, now: float) -> None:
        self._open = True
        self._opened_at = now
        self._last_frame_at = None

    def port_closed(self) -> None:
        """We closed the port ourselves (stop): not a fault."""
        self._open = False
        self._last_frame_at = None

    def port_unavailable(self, detail: str) -> list[events.Event]:
        """The port cannot be opened, or failed while in use."""
        self._open = False
        self._last_frame_at = None
        return self._health(False, detail)

    def tick(self, now: float) -> list[events.Event]:
        """Called regularly while the port is open: detects a silent MCU."""
        if not self._open or self.ok is False:
            return []
        since = self._opened_at if self._last_frame_at is None else self._last_frame_at
        if now - since >= self.timeout_s:
            return self._health(False, f"no frames for {self.timeout_s:g} s")
        return []

    def message(self, msg: hp.Message, now: float) -> list[events.Event]:
        """Events for one message from the MCU, health transitions first."""
        self._last_frame_at = now
        out: list[events.Event] = []
        if isinstance(msg, hp.AckMsg) and msg.command == "PING":
            self._await_ping_ack = False
        # A fault message must not first count as "frames flowing again" (an up/down blip).
        if not self._await_ping_ack and not self._is_fault(msg, now):
            out += self._health(True, "frames flowing")
        match msg:
            case hp.RingMsg(on=on):
                self._ring = on
                out.append(events.Ring(on))
            case hp.HookMsg(off_hook=off_hook):
                self._off_hook = off_hook
                out.append(events.Hook(off_hook))
            case hp.PolarityMsg(polarity=polarity):
                out.append(events.PolarityReversal(polarity=polarity))
            case hp.VoltMsg(volts=volts):
                out.append(events.LoopVoltage(volts))
            case hp.CallerIdMsg(number=number, name=name):
                log.info("caller ID received")  # never its contents
                out.append(events.CallerId(number, name))
            case hp.WatchdogMsg():
                log.warning("MCU watchdog expired: it opened the relay")
                out += self._fault("watchdog expired")
            case hp.HelloMsg(protocol=protocol, firmware=firmware):
                out += self._hello(protocol, firmware, now)
            case hp.StateMsg():
                out += self._snapshot(msg)
            case hp.NakMsg(command=command, reason=reason):
                log.warning("MCU refused %s: %s", command, reason)
        return out

    def _is_fault(self, msg: hp.Message, now: float) -> bool:
        return isinstance(msg, hp.WatchdogMsg) or (
            isinstance(msg, hp.HelloMsg) and self._after_handshake(now)
        )

    def _after_handshake(self, now: float) -> bool:
        # Within this window a HELLO answers our VER (or is the boot banner of an MCU that
        # started with us); later it means the MCU restarted and dropped the relay.
        return now - self._opened_at > self.timeout_s

    def _hello(self, protocol: int, firmware: str, now: float) -> list[events.Event]:
        if protocol != hp.PROTOCOL_VERSION:
            log.error("MCU speaks protocol %d, this code %d", protocol, hp.PROTOCOL_VERSION)
        if self.version is None or self.protocol != protocol or self.version != firmware:
            log.info("MCU firmware %s, protocol %d", firmware, protocol)
        self.version, self.protocol = firmware, protocol
        if self._after_handshake(now):
            log.warning("MCU restarted")
            return self._fault("mcu restarted")
        return []

    def _fault(self, detail: str) -> list[events.Event]:
        self._await_ping_ack = True
        self.ok = False
        return [events.BoardFault(part=PART, ok=False, detail=detail)]

    def _snapshot(self, msg: hp.StateMsg) -> list[events.Event]:
        out: list[events.Event] = []
        # Only what changed while nobody listened; a polarity difference is not re-announced
        # because a late "reversal" would be misread as an answer signal.
        if msg.ring is not None and msg.ring != self._ring:
            self._ring = msg.ring
            out.append(events.Ring(msg.ring))
        if msg.off_hook is not None and msg.off_hook != self._off_hook:
            self._off_hook = msg.off_hook
            out.append(events.Hook(msg.off_hook))
        if msg.volts is not None:
            out.append(events.LoopVoltage(msg.volts))
        return out

    def _health(self, ok: bool, detail: str) -> list[events.Event]:
        if self.ok is ok:
            return []
        self.ok = ok
        (log.info if ok else log.warning)("MCU link %s: %s", "up" if ok else "down", detail)
        return [events.BoardFault(part=PART, ok=ok, detail=detail)]


class McuLink:
    """Talks to the HAT MCU on `port` (a device path or a pyserial URL) from its own thread."""

    def __init__(
        self,
        port: str,
        baud: int,
        emit: Callable[[events.Event], None],
        timeout_s: float = 3.0,
        ping_interval_s: float = 1.0,
    ) -> None:
        self.port = port
        self.baud = baud
        self._emit = emit
        self._ping_interval_s = ping_interval_s
        self._monitor = LinkMonitor(timeout_s)
        self._parser = hp.FrameParser()
        self._commands: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._port: serial.SerialBase | None = None
        self._counters = {"opens": 0, "port_errors": 0, "tx_frames": 0, "dropped_commands": 0}
        # The MCU's last STATE snapshot (an answer to GET), for the self-test.
        self._state_cond = threading.Condition()
        self._last_state: hp.StateMsg | None = None
        self._states = 0

    def start(self) -> None:
        """Start the background thread (it opens the port itself, retrying while missing)."""
        if self._thread is not None:
            raise RuntimeError("McuLink already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mcu-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the port; returns once both are done."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def set_relay(self, closed: bool) -> None:
        """Ask the MCU to close/open the announcement relay (queued; never blocks)."""
        self._command(hp.encode_command("RELAY", closed))

    def set_fault_led(self, on: bool) -> None:
        """Ask the MCU to light/clear the FAULT LED (queued; never blocks)."""
        self._command(hp.encode_command("LED", "FAULT", on))

    def _command(self, frame: bytes) -> None:
        self._commands.put(frame)
        self._wake()

    def _wake(self) -> None:
        """Interrupt the link thread's blocking read (pyserial allows it from another thread)."""
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            try:
                port.cancel_read()
            except (OSError, ValueError):
                pass  # closing at this very moment: the loop will see it

    @property
    def connected(self) -> bool:
        """A valid frame arrived within timeout_s."""
        return self._monitor.connected(time.monotonic())

    @property
    def version(self) -> str | None:
        """The MCU firmware version from its last HELLO."""
        return self._monitor.version

    @property
    def protocol(self) -> int | None:
        """The protocol version from the MCU's last HELLO."""
        return self._monitor.protocol

    def request_state(self, timeout_s: float = 1.0) -> hp.StateMsg | None:
        """Ask the MCU for its STATE snapshot (GET) and wait for it; None if none came.
        For the self-test: blocks the calling thread, never the link's."""
        with self._state_cond:
            seen = self._states
        self._command(hp.encode_command("GET"))
        with self._state_cond:
            self._state_cond.wait_for(lambda: self._states > seen, timeout_s)
            return self._last_state if self._states > seen else None

    def stats(self) -> dict[str, int]:
        """Parser error counters plus port opens/errors and frames sent."""
        return {**self._parser.stats, **self._counters}

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(
                    self.port,
                    baudrate=self.baud,
                    timeout=READ_TIMEOUT_S,
                    write_timeout=WRITE_TIMEOUT_S,
                )
            except (OSError, ValueError) as exc:  # SerialException is an OSError
                self._publish(self._monitor.port_unavailable(f"cannot open {self.port}"))
                log.debug("cannot open %s: %s", self.port, exc)
                self._drop_commands()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = BACKOFF_FIRST_S
            self._counters["opens"] += 1
            self._port = port
            try:
                self._serve(port)
            except OSError as exc:
                self._counters["port_errors"] += 1
                log.debug("serial error on %s: %s", self.port, exc)
                self._publish(self._monitor.port_unavailable(f"lost {self.port}"))
            except Exception:
                # A bug here must not silence the board for the rest of the day: report it as
                # a link fault and start over with a fresh port.
                log.exception("MCU link failed; reopening %s", self.port)
                self._publish(self._monitor.port_unavailable("link error"))
            finally:
                self._port = None
                port.close()
            if not self._stop.is_set():
                self._stop.wait(BACKOFF_FIRST_S)  # a vanished device is rarely back at once
        self._monitor.port_closed()

    def _serve(self, port: serial.SerialBase) -> None:
        now = time.monotonic()
        self._monitor.port_opened(now)
        self._parser.reset()  # a frame half-read on a previous port must not continue
        for command in ("VER", "GET", "PING"):
            self._send(port, hp.encode_command(command))
        next_ping = now + self._ping_interval_s
        while not self._stop.is_set():
            data = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            for message in self._parser.feed(data):
                self._publish(self._monitor.message(message, now))
                if isinstance(message, hp.StateMsg):
                    with self._state_cond:
                        self._last_state, self._states = message, self._states + 1
                        self._state_cond.notify_all()
            self._flush_commands(port)
            if now >= next_ping:
                self._send(port, hp.encode_command("PING"))
                next_ping = max(next_ping + self._ping_interval_s, now)
            self._publish(self._monitor.tick(now))
        # Commands queued just before stop() (Board.stop() opens the relay) still go out.
        self._flush_commands(port)

    def _flush_commands(self, port: serial.SerialBase) -> None:
        while True:
            try:
                frame = self._commands.get_nowait()
            except queue.Empty:
                return
            self._send(port, frame)

    def _send(self, port: serial.SerialBase, frame: bytes) -> None:
        port.write(frame)
        self._counters["tx_frames"] += 1

    def _drop_commands(self) -> None:
        # A command for a board we cannot reach is stale by the time it comes back (a relay
        # closing minutes late would be worse than not at all): the caller sees the BoardFault.
        while True:
            try:
                self._commands.get_nowait()
            except queue.Empty:
                return
            self._counters["dropped_commands"] += 1
            log.warning("MCU unreachable: command dropped")

    def _publish(self, batch: list[events.Event]) -> None:
        for event in batch:
            self._emit(event)
