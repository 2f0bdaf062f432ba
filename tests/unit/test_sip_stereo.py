"""The two directions of a SIP call into one 2-channel stream (sip/stereo.py), and the SIP
line's timer heap (sip/line.py): pure pieces, tested without sockets."""

from __future__ import annotations

import numpy as np

from callrec.sip.b2bua import TimerKey
from callrec.sip.line import _Timers
from callrec.sip.stereo import StereoAssembler


def pcm(values: list[int] | np.ndarray) -> bytes:
    return np.asarray(values, dtype="<i2").tobytes()


def frames(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").reshape(-1, 2)


def test_frames_come_out_when_both_channels_have_them() -> None:
    a = StereoAssembler()
    assert a.feed("lan", 0, pcm([1, 2, 3, 4])) == b""  # the remote side has nothing yet
    out = frames(a.feed("trunk", 0, pcm([10, 20])))
    assert out.tolist() == [[1, 10], [2, 20]]
    out = frames(a.feed("trunk", 2, pcm([30, 40, 50])))
    assert out.tolist() == [[3, 30], [4, 40]]
    assert frames(a.flush()).tolist() == [[0, 50]]  # the office side completed with silence


def test_placement_by_timeline_not_by_arrival_order() -> None:
    """A gap on the timeline is silence; the channels never slide against each other."""
    rng = np.random.default_rng(1)
    left = rng.integers(-3000, 3000, 800)
    right = rng.integers(-3000, 3000, 800)
    a = StereoAssembler()
    out = b""
    # The office side in 160-sample pieces, the remote side in 240-sample pieces with a hole
    # (a lost stretch the receiver did not fill) at 240..480.
    for start in range(0, 800, 160):
        out += a.feed("lan", start, pcm(left[start:start + 160]))
    for start in (0, 480):
        out += a.feed("trunk", start, pcm(right[start:start + 240]))
    out += a.feed("trunk", 720, pcm(right[720:800]))
    out += a.flush()
    got = frames(out)
    assert len(got) == 800
    assert (got[:, 0] == left).all()
    expected = right.copy()
    expected[240:480] = 0
    assert (got[:, 1] == expected).all()


def test_overlap_is_not_written_twice() -> None:
    a = StereoAssembler()
    a.feed("lan", 0, pcm([1, 2, 3]))
    a.feed("lan", 1, pcm([9, 9, 4]))  # samples 1 and 2 were placed already
    out = frames(a.feed("trunk", 0, pcm([5, 6, 7, 8])))
    assert out.tolist() == [[1, 5], [2, 6], [3, 7], [4, 8]]


def test_a_side_that_stops_delivering_is_filled_with_silence() -> None:
    """Memory stays bounded: audio is not held for a side that never catches up."""
    a = StereoAssembler(max_lag_s=0.5)
    out = b""
    for start in range(0, 8000, 160):  # one second from the office side only
        out += a.feed("lan", start, pcm(np.full(160, 7)))
    got = frames(out)
    assert len(got) == 8000 - 4000  # everything but the last max_lag
    assert (got[:, 0] == 7).all() and (got[:, 1] == 0).all()
    later = a.feed("trunk", 8000, pcm([3])) + a.flush()  # back, later on the timeline
    whole = np.concatenate((got, frames(later)))
    assert len(whole) == 8001
    assert (whole[:8000, 0] == 7).all() and whole[8000].tolist() == [0, 3]
    assert not whole[:8000, 1].any()


def test_timers_fire_in_order_and_stopped_or_restarted_ones_do_not() -> None:
    t = _Timers()
    a, b, c = TimerKey("c1", "A", "x"), TimerKey("c1", "B", "x"), TimerKey("c2", "linger")
    t.start(a, 1.0)
    t.start(b, 2.0)
    t.start(c, 0.5)
    t.stop(c)
    t.start(a, 3.0)  # restarted: its old deadline no longer fires
    assert t.next_at() == 2.0
    assert t.due(1.5) == []
    assert t.due(2.5) == [b]
    assert t.due(10.0) == [a]
    assert t.next_at() is None and t.due(99.0) == []
