"""A non-INVITE client transaction of the box's own outside any call (RFC 3261 17.1.2). Pure.

The REGISTER relay and the keep-alive send requests that belong to no call, so the B2BUA's
per-call transactions (`B2bua._client`, keyed and timed by a call's id) do not fit them; this
is the same timer logic for one request: sent, retransmitted on timer E (T1, doubling, capped
at T2; T2 at once after a provisional response), given up on timer F (64*T1). Timers are
actions, as everywhere in the B2BUA: `TimerKey(owner, "E"|"F", branch)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrec.callflow import Action
from callrec.sip.b2bua_types import Addr, Send, Side, StartTimer, StopTimer, TimerKey
from callrec.sip.message import Request

# RFC 3261 17.1.1.1, as in b2bua.py.
T1 = 0.5
T2 = 4.0
TX_TIMEOUT = 64 * T1
MAGIC = "z9hG4bK"


def via(address: Addr, branch: str) -> str:
    host, port = address
    host = f"[{host}]" if ":" in host else host
    return f"SIP/2.0/UDP {host}:{port};branch={branch};rport"


@dataclass
class ClientTx:
    owner: str  # TimerKey.call of its timers
    side: Side
    to: Addr
    request: Request
    interval: float = T1
    answered: bool = False  # a provisional response arrived
    final: int = 0  # the final response's status (408: timer F)

    @property
    def branch(self) -> str:
        return self.request.vias[0].branch or ""

    def key(self, kind: str) -> TimerKey:
        return TimerKey(self.owner, kind, self.branch)

    def start(self) -> list[Action]:
        return [Send(self.side, self.to, self.request), StartTimer(self.key("E"), T1),
                StartTimer(self.key("F"), TX_TIMEOUT)]

    def provisional(self) -> None:
        self.answered = True
        self.interval = T2

    def retransmit(self) -> list[Action]:
        """Timer E fired."""
        if self.final:
            return []
        self.interval = T2 if self.answered else min(self.interval * 2, T2)
        return [Send(self.side, self.to, self.request), StartTimer(self.key("E"), self.interval)]

    def stop(self, status: int) -> list[Action]:
        """A final response (or timer F: 408): no more retransmissions."""
        self.final = status
        return [StopTimer(self.key("E")), StopTimer(self.key("F"))]
