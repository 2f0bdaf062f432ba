"""The HAT MCU firmware: line sensing, commands from the Pi, and the relay watchdog.

Everything hardware-specific sits behind `hal` (see `main.py` for the RP2040 one and
callrec.sim.mcu_host for the simulated one):
    adc_line_volts() -> float     one sample of the line voltage, signed volts
    set_relay(bool), set_fault_led(bool)
    uart_read() -> bytes          non-blocking, b"" when nothing arrived
    uart_write(bytes)
    ticks_ms() -> int, ticks_diff(new, old) -> int   (MicroPython's ticks wrap around)
    cid_poll() -> (number, name) or None             None also when no CID chip is fitted
"""

from callrec_mcu import framing, linesense

FW_VERSION = "0.1.0"
WATCHDOG_MS = 3000  # no PING for this long: the Pi is presumed hung and the relay is opened

_ACK = "ACK"
_NAK = "NAK"


def _flag(value):
    if value is None:
        return "?"
    return "1" if value else "0"


def _polarity_sign(value):
    if value is None:
        return "?"
    return "+" if value > 0 else "-"


def cid_fields(number, name):
    """CID frame fields with escaped values, the name shortened until the frame fits."""
    number = escape_limited(number or "", framing.MAX_PAYLOAD // 2)
    name = name or ""
    while True:
        fields = ["CID", number, framing.escape_field(name)]
        if len(",".join(fields)) <= framing.MAX_PAYLOAD:
            return fields
        name = name[:-1]


def escape_limited(text, limit):
    """Escape `text`, dropping trailing characters until the result fits in `limit` bytes."""
    escaped = framing.escape_field(text)
    while len(escaped) > limit:
        text = text[:-1]
        escaped = framing.escape_field(text)
    return escaped


class Mcu:
    """The firmware main object: call step() once per ADC sample (every sample_ms)."""

    def __init__(self, hal, sample_ms=linesense.SAMPLE_MS, fw_version=FW_VERSION):
        self.hal = hal
        self.fw_version = fw_version
        self.sense = linesense.LineSense(sample_ms)
        self.decoder = framing.FrameDecoder()
        self.relay = False
        self.led_requested = False
        # Armed by the first PING: until the Pi talks, there is nothing to guard and a booting
        # Pi must not light the FAULT LED.
        self.wdt_armed = False
        self.wdt_expired = False
        self._last_ping = 0
        self._booted = False
        self.unknown_commands = 0
        hal.set_relay(False)
        hal.set_fault_led(False)

    def step(self):
        """One tick: sample the line, poll the CID chip, serve the UART, check the watchdog."""
        if not self._booted:
            self._booted = True
            self.send(["HELLO", str(framing.PROTOCOL_VERSION), self.fw_version])
        for event in self.sense.feed(self.hal.adc_line_volts()):
            self.send(self._event_fields(event))
        cid = self.hal.cid_poll()
        if cid is not None:
            self.send(cid_fields(cid[0], cid[1]))
        data = self.hal.uart_read()
        if data:
            for fields in self.decoder.feed(data):
                self.handle(fields)
        self._check_watchdog()

    def send(self, fields):
        self.hal.uart_write(framing.encode_frame(fields))

    def _event_fields(self, event):
        kind, value = event
        if kind == "POL":
            return ["POL", _polarity_sign(value)]
        if kind == "VOLT":
            return ["VOLT", f"{value:.1f}"]
        return [kind, _flag(value)]

    def handle(self, fields):
        """Execute one command frame from the Pi and answer ACK/NAK (or HELLO/STATE)."""
        kind = fields[0]
        args = fields[1:]
        if kind == "PING":
            self._last_ping = self.hal.ticks_ms()
            self.wdt_armed = True
            if self.wdt_expired:
                self.wdt_expired = False
                self._drive_led()
            self.send([_ACK, kind])
        elif kind == "VER":
            self.send(["HELLO", str(framing.PROTOCOL_VERSION), self.fw_version])
        elif kind == "GET":
            self.send(self.state_fields())
        elif kind == "RELAY":
            if len(args) != 1 or args[0] not in ("0", "1"):
                self.send([_NAK, kind, "BADARG"])
            elif args[0] == "1" and not self.wdt_armed:
                # Never close the relay unless a live Pi keeps the watchdog fed.
                self.send([_NAK, kind, "WDT"])
            else:
                self.relay = args[0] == "1"
                self.hal.set_relay(self.relay)
                self.send([_ACK, kind])
        elif kind == "LED":
            if len(args) != 2 or args[0] != "FAULT" or args[1] not in ("0", "1"):
                self.send([_NAK, kind, "BADARG"])
            else:
                self.led_requested = args[1] == "1"
                self._drive_led()
                self.send([_ACK, kind])
        else:
            self.unknown_commands += 1
            self.send([_NAK, framing.escape_field(kind[:16]), "UNKNOWN"])

    def state_fields(self):
        """The STATE snapshot: every value the Pi could have missed while not listening."""
        sense = self.sense
        volts = "?" if sense.volts is None else f"{sense.volts:.1f}"
        errors = self.decoder.bad_crc + self.decoder.malformed + self.decoder.oversize
        return [
            "STATE",
            "RING=" + _flag(sense.ring.on),
            "HOOK=" + _flag(sense.off_hook),
            "POL=" + _polarity_sign(sense.polarity),
            "VOLT=" + volts,
            "RELAY=" + _flag(self.relay),
            "LED=" + _flag(self.led_requested or self.wdt_expired),
            "WDT=" + _flag(self.wdt_expired),
            "RXERR=" + str(errors),
        ]

    def _check_watchdog(self):
        if not self.wdt_armed:
            return
        if self.hal.ticks_diff(self.hal.ticks_ms(), self._last_ping) < WATCHDOG_MS:
            return
        self.wdt_armed = False
        self.wdt_expired = True
        self.relay = False
        self.hal.set_relay(False)
        self._drive_led()
        self.send(["WDT"])

    def _drive_led(self):
        self.hal.set_fault_led(self.led_requested or self.wdt_expired)
