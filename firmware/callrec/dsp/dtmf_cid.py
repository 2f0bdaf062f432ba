"""DTMF caller ID (calling-line identity sent as DTMF keys before the first ring).

DTMF-based CLIP, used in the Netherlands, the Nordic countries, Belgium, India, Brazil,
Taiwan... A message is a sequence of *fields*, each opened by a start key and followed by
decimal digits, the whole closed by `C` (or `#` on some networks):
  - `A<digits>`: the calling number;
  - `D<digits>`: the calling number where `D` is the start key (Denmark, Brazil), or, after an
    `A` field, the redirecting number; `D` with 1-2 digits is an information code (below);
  - `B<digits>`: an information code, the reason the number is absent.
Information codes (the project's telephony notes; Danish one-digit forms as Asterisk reads them):
  `00` (and Danish `2`, `3`) → absence "O", number unavailable;
  `10` (and Danish `1`) → absence "P", presentation restricted (private);
  any other code → "O" (no number, reason not understood).
Examples: `A0201234567C` → number 0201234567; `D10C` or `B10C` → private; `B00C` → "O";
`A0612345678D0298765432C` → number 0612345678 (redirected from 0298765432).

There is no checksum: a well-formed message has checksum_ok=True. A malformed one (no end
key within `gap_timeout_s` of the last key, a non-decimal key inside a field, a repeated
field, more than MAX_KEYS keys) is still reported, with checksum_ok=False and number None,
so a damaged caller ID is visible and never taken for a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy.typing as npt

from callrec.dsp.callerid_types import STANDARD_DTMF_CID, CallerIdMessage
from callrec.dsp.dtmf import DtmfDetector, DtmfEvent

START_KEYS = "ABD"
END_KEYS = "C#"
MAX_KEYS = 40  # a 20-digit number and a 20-digit redirecting number at most
GAP_TIMEOUT_S = 1.0  # networks send ~7-10 keys/s; a second of silence ends a message

_ABSENCE_CODES = {"00": "O", "2": "O", "3": "O", "10": "P", "1": "P"}


@dataclass(frozen=True)
class DtmfCallerId:
    """The content of one DTMF caller-ID key sequence (see the module docstring)."""

    well_formed: bool
    number: str | None = None
    absence: str | None = None  # "P" private, "O" unavailable
    redirecting: str | None = None
    info_code: str | None = None  # the B/D information code as sent


def parse_dtmf_cid(keys: str) -> DtmfCallerId:
    """Decode a complete message, start key to end key inclusive (e.g. "A0201234567C")."""
    if len(keys) < 2 or keys[0] not in START_KEYS or keys[-1] not in END_KEYS:
        return DtmfCallerId(False)
    fields: dict[str, str] = {}
    key, digits = keys[0], ""
    for k in keys[1:]:
        if k in START_KEYS or k in END_KEYS:
            if key in fields or (key != "A" and not digits):
                return DtmfCallerId(False)  # a field twice, or an empty B/D code
            fields[key] = digits
            key, digits = k, ""
        elif k.isdigit():
            digits += k
        else:
            return DtmfCallerId(False)  # '*' inside a field
    if any(k in END_KEYS for k in keys[:-1]):
        return DtmfCallerId(False)  # an end key before the end
    number = fields.get("A") or None
    d_field = fields.get("D")
    redirecting = info = None
    if d_field is not None:
        if len(d_field) <= 2:
            info = d_field
        elif number is None:
            number = d_field  # D as the start key of the calling number
        else:
            redirecting = d_field
    if "B" in fields:
        info = fields["B"]
    if number is None and info is None:
        return DtmfCallerId(False)  # "AC", "DC": nothing was sent
    absence = None if number is not None else _ABSENCE_CODES.get(info or "", "O")
    return DtmfCallerId(True, number, absence, redirecting, info)


class DtmfCidAssembler:
    """Groups key presses into caller-ID messages, from any DtmfDetector's events.

    `push(event)` for each key in order, `advance(settled_s)` to let the gap timeout expire,
    with the detector's `settled_s` (the time before which it has reported every key: the
    stream time fed would expire a message whose next key is still being analysed), and
    `flush()` at the end of the input. Keys outside a message (an ordinary digit dialled
    during a call) are ignored.
    """

    def __init__(self, gap_timeout_s: float = GAP_TIMEOUT_S) -> None:
        self.gap_timeout_s = gap_timeout_s
        self._keys: list[DtmfEvent] = []

    def push(self, event: DtmfEvent) -> list[CallerIdMessage]:
        """One more key; returns the message it completes, or a timed-out one it follows."""
        out = self.advance(event.start_s)
        if not self._keys:
            if event.digit in START_KEYS:
                self._keys.append(event)
            return out
        self._keys.append(event)
        if event.digit in END_KEYS:
            out.append(self._finish(well_formed_possible=True))
        elif len(self._keys) > MAX_KEYS:
            out.append(self._finish(well_formed_possible=False))
        return out

    def advance(self, settled_s: float) -> list[CallerIdMessage]:
        """Report a message whose last key ended more than gap_timeout_s before `settled_s`."""
        if self._keys and settled_s - self._keys[-1].end_s > self.gap_timeout_s:
            return [self._finish(well_formed_possible=False)]
        return []

    def flush(self) -> list[CallerIdMessage]:
        """End of input: a message still open has no end key, so it is malformed."""
        return [self._finish(well_formed_possible=False)] if self._keys else []

    def _finish(self, well_formed_possible: bool) -> CallerIdMessage:
        keys, self._keys = self._keys, []
        parsed = parse_dtmf_cid("".join(k.digit for k in keys))
        ok = well_formed_possible and parsed.well_formed
        return CallerIdMessage(
            standard=STANDARD_DTMF_CID,
            number=parsed.number if ok else None,
            name=None,
            datetime=None,
            absence=parsed.absence if ok else None,
            checksum_ok=ok,
            start_s=keys[0].start_s,
            end_s=keys[-1].end_s,
        )


class DtmfCallerIdDecoder:
    """Streaming DTMF caller-ID decoder on line audio: `feed(samples)` → messages,
    `flush()` at the end. Samples as everywhere in `callrec.dsp` (float32, 8 kHz, ±1).

    It runs its own DtmfDetector; a chain that already runs one can pass its key events
    to `feed_events` instead of audio.
    """

    def __init__(
        self, detector: DtmfDetector | None = None, gap_timeout_s: float = GAP_TIMEOUT_S
    ) -> None:
        self.detector = detector or DtmfDetector()
        self.assembler = DtmfCidAssembler(gap_timeout_s)

    def feed(self, samples: npt.ArrayLike) -> list[CallerIdMessage]:
        """Analyse more audio; return the caller-ID messages completed (or timed out)."""
        return self.feed_events(self.detector.feed(samples), self.detector.settled_s)

    def feed_events(
        self, events: Iterable[DtmfEvent], settled_s: float
    ) -> list[CallerIdMessage]:
        """Key events from a DtmfDetector, and then its `settled_s` → messages."""
        out: list[CallerIdMessage] = []
        for event in events:
            out += self.assembler.push(event)
        return out + self.assembler.advance(settled_s)

    def flush(self) -> list[CallerIdMessage]:
        """End of input: the detector's last key, then any message left open."""
        out: list[CallerIdMessage] = []
        for event in self.detector.flush():
            out += self.assembler.push(event)
        return out + self.assembler.flush()
