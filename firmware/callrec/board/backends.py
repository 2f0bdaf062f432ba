"""Board backends, chosen by `board.backend` in the configuration (or $CALLREC_BOARD).

A backend decides only where the pins come from; the serial port and audio device names come
from the configuration. "sim" uses gpiozero's own MockFactory and expects the line simulator
(`callrec sim line`) to provide the MCU on a pseudo-terminal and the audio on PulseAudio.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from callrec import events as ev
from callrec.board.board import Board
from callrec.config import BoardConfig


def _hat_pins() -> Any:
    return None  # gpiozero's default factory: lgpio on the Pi; a clear BadPinFactory elsewhere


def _sim_pins() -> Any:
    from gpiozero.pins.mock import MockFactory

    return MockFactory()


BACKENDS: dict[str, Callable[[], Any]] = {"hat": _hat_pins, "sim": _sim_pins}


def _sim_services(config: BoardConfig, factory: Any) -> list[Any]:
    """The simulator presses the board's button through a socket (see sim_pins.py)."""
    from callrec.board.board import PIN_PRIVACY_BUTTON, PIN_RECORDING_LED
    from callrec.board.sim_pins import SimPinServer, gpio_socket_path

    return [SimPinServer(factory, gpio_socket_path(config.sim_socket),
                         {"privacy": PIN_PRIVACY_BUTTON}, {"recording_led": PIN_RECORDING_LED})]


SERVICES: dict[str, Callable[[BoardConfig, Any], list[Any]]] = {"sim": _sim_services}


def make_board(config: BoardConfig, emit: Callable[[ev.Event], None]) -> Board:
    """Build the board named by the configuration, overridable with $CALLREC_BOARD."""
    name = os.environ.get("CALLREC_BOARD", config.backend)
    if name not in BACKENDS:
        raise ValueError(f"unknown board backend '{name}' (choose from {', '.join(BACKENDS)})")
    factory = BACKENDS[name]()
    services = SERVICES.get(name, lambda c, f: [])(config, factory)
    return Board(replace(config, backend=name), emit, pin_factory=factory, services=services)
