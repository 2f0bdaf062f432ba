from __future__ import annotations

from callrec import events as ev
from callrec.board.recovery import McuRecovery


def resets(r: McuRecovery, until: float, start: float = 0.0, step: float = 0.5) -> list[float]:
    out, t = [], start
    while t <= until:
        if r.observe(ev.Tick(at=t)):
            out.append(t)
        t += step
    return out


def test_a_healthy_link_is_never_reset() -> None:
    r = McuRecovery()
    r.observe(ev.BoardFault(part="mcu", ok=True, at=0.0))
    assert resets(r, 300) == []


def test_reset_after_ten_seconds_down_then_once_a_minute() -> None:
    r = McuRecovery()
    r.observe(ev.BoardFault(part="mcu", ok=False, detail="silent", at=5.0))
    r.observe(ev.BoardFault(part="mcu", ok=False, detail="still", at=8.0))  # keeps 5.0
    assert resets(r, 140, start=5.0) == [15.0, 75.0, 135.0]


def test_recovery_clears_the_timer_and_other_parts_are_ignored() -> None:
    r = McuRecovery()
    r.observe(ev.BoardFault(part="audio", ok=False, at=0.0))
    assert resets(r, 30) == []
    r.observe(ev.BoardFault(part="mcu", ok=False, at=31.0))
    r.observe(ev.BoardFault(part="mcu", ok=True, at=35.0))
    assert resets(r, 100, start=35.0) == []
