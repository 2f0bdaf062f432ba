"""When to pulse the HAT MCU's reset line: a pure decision, fed with the board's events."""

from __future__ import annotations

import math
from dataclasses import dataclass

from callrec import events as ev


@dataclass
class McuRecovery:
    """Reset the MCU once its link has been down for a while, then at most once a minute.

    A reset is harmless when the MCU is fine but its cable or UART is not, and it brings back an
    MCU whose firmware hung with its own watchdog disabled.
    """

    reset_after_s: float = 10.0
    retry_every_s: float = 60.0
    down_since: float | None = None
    last_reset: float = -math.inf

    def observe(self, event: ev.Event) -> bool:
        """Feed every event; True means: pulse the reset line now."""
        if isinstance(event, ev.BoardFault) and event.part == "mcu":
            if event.ok:
                self.down_since = None
            elif self.down_since is None:
                self.down_since = event.at
            return False
        if not isinstance(event, ev.Tick) or self.down_since is None:
            return False
        if event.at - self.down_since < self.reset_after_s:
            return False
        if event.at - self.last_reset < self.retry_every_s:
            return False
        self.last_reset = event.at
        return True
