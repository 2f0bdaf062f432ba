"""The box's keep-alive to the provider: OPTIONS every `trunk_keepalive_s`. Pure.

Without it the box sends nothing to the provider between calls, so a NAT in front of it may
close the pinhole incoming calls come through, and nobody notices a provider that stopped
answering until a call fails. Every interval (the first at start) the box sends OPTIONS to
`trunk_peer` (one Call-ID for the box's life, CSeq increasing, a new branch each time: a
client transaction of its own, `client_tx`, retransmitted on timer E). Any response, even
404, 405 or 501, means the provider is there. It is declared unreachable when one OPTIONS
stays unanswered through timer F (64*T1 = 32 s), or earlier when FAILURES rounds in a row
found the previous one still unanswered (a short interval); while one is unanswered no
other is sent. Each change is a `TrunkState` action: the line turns "unreachable" into the
status fault "sip" and "reachable" clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callrec.callflow import Action
from callrec.sip import headers as h
from callrec.sip.b2bua_types import B2buaConfig, StartTimer, TimerKey, TrunkState
from callrec.sip.client_tx import MAGIC, ClientTx, via
from callrec.sip.message import Headers, Request, Response

__all__ = ["FAILURES", "TIMERS", "KeepAlive"]

TIMERS = "keepalive"  # TimerKey.call of its timers (call ids are "c<n>")
FAILURES = 3


def _hostport(addr: tuple[str, int]) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


@dataclass
class KeepAlive:
    config: B2buaConfig
    token: Callable[[], str]
    call_id: str = ""
    tag: str = ""
    cseq: int = 0
    pending: ClientTx | None = None
    failures: int = 0  # rounds in a row that found the last OPTIONS unanswered
    reachable: bool | None = None  # None: not known yet
    silent_since: float | None = None  # when the first unanswered OPTIONS was sent
    sent: int = 0
    answered: int = 0

    @property
    def interval(self) -> float:
        return self.config.trunk_keepalive_s

    def start(self, now: float) -> list[Action]:
        if self.interval <= 0 or self.call_id:
            return []
        self.call_id = f"{self.token()}{self.token()}@callrec"
        self.tag = self.token()
        return self._round(now)

    def _round(self, now: float) -> list[Action]:
        out: list[Action] = [StartTimer(TimerKey(TIMERS, "round"), self.interval)]
        if self.pending is not None:
            self.failures += 1
            return out + (self._unreachable() if self.failures >= FAILURES else [])
        self.cseq += 1
        self.sent += 1
        host = _hostport(self.config.trunk)
        hd = Headers()
        hd.add("Via", via(self.config.trunk, MAGIC + self.token()))
        hd.add("Max-Forwards", "70")
        hd.add("From", f"<sip:callrec@{host}>;tag={self.tag}")
        hd.add("To", f"<sip:{_hostport(self.config.trunk_peer)}>")
        hd.add("Call-ID", self.call_id)
        hd.add("CSeq", f"{self.cseq} OPTIONS")
        hd.add("Accept", "application/sdp")
        req = Request("SIP/2.0", hd, b"", "OPTIONS", f"sip:{_hostport(self.config.trunk_peer)}")
        self.pending = ClientTx(TIMERS, "trunk", self.config.trunk_peer, req)
        if self.silent_since is None:
            self.silent_since = now
        return out + self.pending.start()

    def _unreachable(self) -> list[Action]:
        if self.reachable is False:
            return []
        self.reachable = False
        return [TrunkState(False, "the SIP provider does not answer OPTIONS at "
                                  f"{_hostport(self.config.trunk_peer)}",
                           since=self.silent_since or 0.0)]

    def response(self, resp: Response, now: float) -> list[Action]:
        """Any response to the keep-alive's Call-ID, late ones included: it is there."""
        if not self.call_id or resp.call_id != self.call_id:
            return []
        out: list[Action] = []
        tx = self.pending
        try:
            mine = tx is not None and resp.vias[0].branch == tx.branch
        except (IndexError, h.HeaderError):
            mine = False
        if tx is not None and mine:
            if resp.status < 200:
                tx.provisional()
            else:
                out += tx.stop(resp.status)
                self.pending = None
        self.answered += 1
        self.failures = 0
        if self.pending is None:
            self.silent_since = None
        if self.reachable is not True:
            self.reachable = True
            out.append(TrunkState(True, f"the SIP provider answers at "
                                        f"{_hostport(self.config.trunk_peer)}", since=now))
        return out

    def timer(self, key: TimerKey, now: float) -> list[Action]:
        if key.kind == "round":
            return self._round(now)
        tx = self.pending
        if tx is None or key.ref != tx.branch:
            return []
        if key.kind == "E":
            return tx.retransmit()
        if key.kind != "F":
            return []
        out = tx.stop(408)
        self.pending = None
        return out + self._unreachable()
