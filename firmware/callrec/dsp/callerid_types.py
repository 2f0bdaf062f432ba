"""Caller-ID result type shared by the FSK (V.23 / Bell 202) and DTMF caller-ID decoders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Values of `CallerIdMessage.standard`.
STANDARD_ETSI_V23 = "etsi-v23"
STANDARD_BELL202 = "bell202"
STANDARD_DTMF_CID = "dtmf-cid"

# Presentation message types (ETSI EN 300 659-3 / Telcordia GR-30-CORE).
MSG_SDMF = 0x04  # Telcordia single data message format: MMDDhhmm + number
MSG_CALL_SETUP = 0x80  # MDMF / ETSI call set-up
MSG_MWI = 0x82  # message waiting indicator
MSG_SDMF_MWI = 0x06  # Telcordia SDMF message waiting


@dataclass(frozen=True)
class CallerIdMessage:
    """One caller-ID message as received on the line.

    Fields are exactly as transmitted (no normalisation). When `checksum_ok` is False the
    message is reported only as "bad": `number` and `name` are None.
    """

    standard: str  # "etsi-v23" | "bell202" | "dtmf-cid"
    number: str | None
    name: str | None
    datetime: str | None  # "MMDDhhmm" as sent
    absence: str | None  # "P" private, "O" unavailable (number absent); as sent
    checksum_ok: bool
    start_s: float
    end_s: float
    name_absence: str | None = None
    message_type: int | None = None  # 0x04 SDMF, 0x80 MDMF/ETSI call set-up, 0x82 MWI...

    def as_json(self) -> dict[str, Any]:
        """The CLI's JSON object: standard, number, name, datetime, absence, checksum_ok."""
        return {
            "standard": self.standard,
            "number": self.number,
            "name": self.name,
            "datetime": self.datetime,
            "absence": self.absence,
            "checksum_ok": self.checksum_ok,
        }
