"""The telephony HAT as the firmware sees it: one class, whatever is behind it.

    inputs   ring, hook, polarity, loop voltage, caller ID  <- the HAT's MCU (serial)
             privacy push-button                            <- GPIO
    outputs  announcement relay, fault LED                  -> the HAT's MCU (serial)
             recording LED, MCU reset                       -> GPIO
    audio    capture from the line, play into the line      <- -> PyAudio

Everything the board reports becomes an event on the daemon's queue through `emit`; nothing
here takes a decision. The backends (see backends.py) only choose the gpiozero pin factory
and the device names: the real HAT and the simulator run exactly this code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from gpiozero import LED, DigitalInputDevice, DigitalOutputDevice, GPIOZeroError

from callrec import events as ev
from callrec.board.audio import AudioDeviceError, LineAudio
from callrec.board.mcu_link import McuLink
from callrec.config import BoardConfig

log = logging.getLogger(__name__)

# BCM numbering; hw/PINMAP.md is the wiring reference.
PIN_PRIVACY_BUTTON = "GPIO17"
PIN_RECORDING_LED = "GPIO27"
PIN_MCU_RESET = "GPIO22"

AUDIO_RETRY_MAX_S = 30.0


class BoardError(RuntimeError):
    """The board cannot be used at all (e.g. no GPIO on this machine)."""


class Board:
    """Pins, MCU link and line audio of one HAT."""

    def __init__(
        self,
        config: BoardConfig,
        emit: Callable[[ev.Event], None],
        pin_factory: Any = None,
        services: list[Any] | None = None,
    ) -> None:
        """`services` have start() and stop(); a backend adds them (the simulator's pin
        control), started once the pins are claimed and stopped before they are released."""
        self.config = config
        self._services = services or []
        self._emit = emit
        self._pin_factory = pin_factory
        self.mcu = McuLink(
            config.serial_port, config.serial_baud, emit, timeout_s=config.mcu_timeout_s
        )
        self.audio = LineAudio(
            config.capture_device,
            config.playback_device,
            config.sample_rate,
            config.frames_per_buffer,
        )
        self._privacy: DigitalInputDevice | None = None
        self._recording_led: LED | None = None
        self._mcu_reset: DigitalOutputDevice | None = None
        self._stopping = threading.Event()
        self._audio_thread: threading.Thread | None = None

    def start(self) -> None:
        """Claim the pins, start the MCU link, open the audio (retried in the background)."""
        f = self._pin_factory
        try:
            # A DigitalInputDevice, not a Button: Button's hold thread polls ten times a second.
            self._privacy = DigitalInputDevice(PIN_PRIVACY_BUTTON, pull_up=True,
                                               bounce_time=0.05, pin_factory=f)
        except GPIOZeroError as exc:
            raise BoardError(
                f"the HAT's GPIO pins cannot be used ({exc}); on a machine without the HAT, "
                'set board.backend = "sim" and run the line simulator'
            ) from exc
        # gpiozero calls these on its own thread: only enqueue.
        self._privacy.when_activated = lambda: self._emit(ev.PrivacyButton(True))
        self._privacy.when_deactivated = lambda: self._emit(ev.PrivacyButton(False))
        self._recording_led = LED(PIN_RECORDING_LED, pin_factory=f)
        # The MCU's reset is active low; held released (high) in normal operation.
        self._mcu_reset = DigitalOutputDevice(
            PIN_MCU_RESET, active_high=False, initial_value=False, pin_factory=f
        )
        for service in self._services:
            service.start()
        self.mcu.start()
        self._audio_thread = threading.Thread(
            target=self._open_audio, name="audio-open", daemon=True
        )
        self._audio_thread.start()

    def _open_audio(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                self.audio.open()
            except AudioDeviceError as exc:
                self._emit(ev.BoardFault(part="audio", ok=False, detail=str(exc)))
                self._stopping.wait(delay)
                delay = min(delay * 2, AUDIO_RETRY_MAX_S)
                continue
            self._emit(ev.BoardFault(part="audio", ok=True))
            return

    def stop(self) -> None:
        self._stopping.set()
        for service in self._services:
            service.stop()
        if self._audio_thread is not None:
            self._audio_thread.join(timeout=5)
        self.set_relay(False)
        self.mcu.stop()
        self.audio.close()
        for device in (self._privacy, self._recording_led, self._mcu_reset):
            if device is not None:
                device.close()

    # -- outputs ---------------------------------------------------------------------------
    def set_relay(self, closed: bool) -> None:
        """Connect the announcement output to the line (the MCU opens it if we hang)."""
        self.mcu.set_relay(closed)

    def set_recording_led(self, on: bool) -> None:
        if self._recording_led is not None and not self._recording_led.closed:
            self._recording_led.value = on

    @property
    def recording_led(self) -> bool:
        """What the recording LED shows right now (read back from the pin)."""
        led = self._recording_led
        return bool(led is not None and not led.closed and led.value)

    @property
    def privacy_pressed(self) -> bool | None:
        """The privacy button's input as read now (None: the pin is not claimed)."""
        button = self._privacy
        if button is None or button.closed:
            return None
        return bool(button.value)

    @property
    def mcu_reset_released(self) -> bool | None:
        """The MCU reset line is claimed and released (None: not claimed)."""
        reset = self._mcu_reset
        if reset is None or reset.closed:
            return None
        return not reset.value

    def set_fault_led(self, on: bool) -> None:
        self.mcu.set_fault_led(on)

    def reset_mcu(self) -> None:
        """Pulse the MCU's reset line (used when its serial link stays silent)."""
        if self._mcu_reset is not None:
            self._mcu_reset.blink(on_time=0.1, off_time=0, n=1, background=True)
