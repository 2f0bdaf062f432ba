"""MicroPython entry point for the HAT's RP2040 (pins: hw/PINMAP.md). Not importable on CPython.

Install: copy callrec_mcu/ to /lib on the board and a /main.py holding
    from callrec_mcu.main import run
    run()
"""

import time

from machine import ADC, UART, WDT, Pin

from callrec_mcu.cidmsg import CidDecoder
from callrec_mcu.firmware import Mcu

# Line divider: 1/160 into an ADC biased at mid-scale, so +-264 V fits 0..3.3 V (hw/PINMAP.md).
ADC_MID = 32768
VOLTS_PER_COUNT = 3.3 * 160 / 65536
CID_PRESENT = True  # False on a board built without the demodulator chip


class Rp2040Hal:
    """The HAL of firmware.Mcu on the real board."""

    def __init__(self):
        # Relay and LED first, driven to the safe state before anything else can fail.
        self._relay = Pin(15, Pin.OUT, value=0)
        self._led = Pin(14, Pin.OUT, value=0)
        self._adc = ADC(Pin(26))
        self._uart = UART(0, baudrate=115200, tx=Pin(0), rx=Pin(1), txbuf=1024, rxbuf=512)
        self._cid_uart = UART(1, baudrate=1200, rx=Pin(5)) if CID_PRESENT else None
        self._cid = CidDecoder()

    def adc_line_volts(self):
        return (self._adc.read_u16() - ADC_MID) * VOLTS_PER_COUNT

    def set_relay(self, closed):
        self._relay.value(1 if closed else 0)

    def set_fault_led(self, on):
        self._led.value(1 if on else 0)

    def uart_read(self):
        return self._uart.read() or b""

    def uart_write(self, data):
        self._uart.write(data)

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, new, old):
        return time.ticks_diff(new, old)

    def cid_poll(self):
        if self._cid_uart is None or not self._cid_uart.any():
            return None
        return self._cid.feed(self._cid_uart.read())


def run():
    hal = Rp2040Hal()
    mcu = Mcu(hal)
    # If this loop ever stalls (a bug, a lock-up), the chip resets and the relay pin falls back
    # to open: the same guarantee for the MCU that the PING watchdog gives for the Pi.
    wdt = WDT(timeout=500)
    next_tick = time.ticks_ms()
    while True:
        mcu.step()
        wdt.feed()
        next_tick = time.ticks_add(next_tick, 1)
        if time.ticks_diff(time.ticks_ms(), next_tick) > 100:
            next_tick = time.ticks_ms()  # far behind (flash write, GC): skip, do not burst
        while time.ticks_diff(next_tick, time.ticks_ms()) > 0:
            pass
