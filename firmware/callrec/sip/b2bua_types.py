"""The B2BUA's vocabulary: its configuration, the events it takes and the actions it returns.

Split from b2bua.py (the state machine) so that the relay, the daemon's wiring and the tests
can speak it without the call logic; b2bua.py re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callrec import events as ev
from callrec.callflow import Action, CallInfo
from callrec.sip.digest import Credentials
from callrec.sip.message import Request, Response

Side = Literal["lan", "trunk"]
Addr = tuple[str, int]
OTHER: dict[Side, Side] = {"lan": "trunk", "trunk": "lan"}


# -- configuration -----------------------------------------------------------------------
@dataclass(frozen=True)
class B2buaConfig:
    lan: Addr  # the box's address as the office side reaches it (Via, Contact, SDP)
    trunk: Addr  # the box's address as the provider reaches it
    pbx_peer: Addr  # incoming calls go there; only it is served on the LAN side
    trunk_peer: Addr  # outgoing calls go there; only it is served on the trunk side
    rtp_ports: tuple[int, int] = (20000, 20999)  # relay ports, RTP on even, RTCP on odd
    line: str = "sip"
    announce_to_office: bool = True  # the prompt also into the office side, as on analog
    record_incoming: bool = True
    record_outgoing: bool = True
    never_record: bool = False
    # The box's account at the provider: its 401/407 to what the box sends on the trunk
    # side are answered with it (sip/trunk_auth.py). None: challenges go to the office UA.
    trunk_credentials: Credentials | None = None
    # OPTIONS to trunk_peer every so many seconds (sip/keepalive.py): keeps a NAT's pinhole
    # open and tells whether the provider answers (TrunkState). 0: none.
    trunk_keepalive_s: float = 30.0

    def address(self, side: Side) -> Addr:
        return self.lan if side == "lan" else self.trunk

    def peer(self, side: Side) -> Addr:
        return self.pbx_peer if side == "lan" else self.trunk_peer


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimerKey:
    call: str  # the call's id, or "" for none
    kind: str  # A B E F G H (RFC 3261 timers), "commit", "linger"
    ref: str = ""  # the transaction's branch


@dataclass(frozen=True)
class SipReceived(ev.Event):
    side: Side
    source: Addr
    message: Request | Response


@dataclass(frozen=True)
class TimerFired(ev.Event):
    key: TimerKey


@dataclass(frozen=True)
class MediaTimeout(ev.Event):
    """The relay received no media from `leg`'s peer for the configured time."""

    call: str
    leg: Side


@dataclass(frozen=True)
class AnnouncementFinished(ev.Event):
    call: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class KeyPressed(ev.Event):
    """A telephone-event key (RFC 4733) from `leg`'s peer."""

    call: str
    leg: Side
    key: str


# -- actions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Send(Action):
    side: Side
    to: Addr
    message: Request | Response


@dataclass(frozen=True)
class RelayLeg:
    """One side of a call's media: the box's port facing that peer and what the peer's SDP
    said (where it receives, its payload types, its direction). `remote` is None until known."""

    side: Side
    local_port: int
    remote: Addr | None = None
    codecs: tuple[tuple[int, str], ...] = ()
    telephone_event_pt: int | None = None
    direction: str = "sendrecv"
    on_hold: bool = False


@dataclass(frozen=True)
class StartRelay(Action):
    call: str
    lan: RelayLeg
    trunk: RelayLeg


@dataclass(frozen=True)
class UpdateRelay(Action):
    call: str
    lan: RelayLeg
    trunk: RelayLeg


@dataclass(frozen=True)
class StopRelay(Action):
    call: str


@dataclass(frozen=True)
class StartTimer(Action):
    key: TimerKey
    after_s: float


@dataclass(frozen=True)
class StopTimer(Action):
    key: TimerKey


@dataclass(frozen=True)
class StartAnnouncement(Action):
    call: str
    legs: tuple[Side, ...]  # played to these peers (the trunk side is the remote party)


@dataclass(frozen=True)
class StopAnnouncement(Action):
    call: str


@dataclass(frozen=True)
class StartRecording(Action):
    """Hold both directions' audio in memory from now (the answer, the prompt's start)."""

    call: str
    info: CallInfo


@dataclass(frozen=True)
class CommitRecording(Action):
    """The prompt completed: write the held audio and keep writing."""

    call: str


@dataclass(frozen=True)
class DiscardRecording(Action):
    call: str
    reason: str


@dataclass(frozen=True)
class StopRecording(Action):
    """The call ended: close and index the recording."""

    call: str
    reason: str


@dataclass(frozen=True)
class TrunkState(Action):
    """The provider answers the box's keep-alive OPTIONS again (reachable) or stopped
    answering them (`since`: the event time, monotonic, of the first one unanswered)."""

    reachable: bool
    detail: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class CallFinished(Action):
    """`outcome`: recorded, not_recorded, ended_during_announcement, cancelled, busy,
    rejected, unanswered, failed, not_recordable."""

    call: str
    outcome: str
    direction: str
