"""A two-channel recording (a SIP call) in the web UI: the detail page says which side is
which, playback and download serve a two-channel WAV (whole and by range, with the right
sizes) and, once transcoded, a two-channel Ogg/Opus file."""

from __future__ import annotations

import io
import wave
from datetime import UTC, datetime
from typing import Any

import numpy as np
from webtest_support import Appliance, add_stereo_recording

RATE = 8000
LEGEND = "2 channels: office (left), remote party (right)"


def add_stereo(app: Appliance, **extra: Any) -> tuple[str, np.ndarray]:
    """A stereo recording and its frames (a ramp left, its negative right)."""
    rec_id = add_stereo_recording(app.store, datetime(2024, 5, 2, 9, 0, tzinfo=UTC), **extra)
    left = (np.arange(RATE // 2) % 20000).astype(np.int16)
    return rec_id, np.stack([left, -left], axis=1)


def test_stereo_wav_is_served_with_two_channels(appliance: Appliance) -> None:
    rec_id, frames = add_stereo(appliance, channel_names=["office", "remote"])
    c = appliance.client()
    c.login("supervisor")
    page = c.get(f"/recordings/{rec_id}").text
    assert LEGEND in page
    resp = c.get(f"/recordings/{rec_id}/audio")
    size = 44 + frames.size * 2
    assert resp.status == 200 and resp.header("Content-Type") == "audio/wav"
    assert resp.header("Content-Length") == str(size) and len(resp.body) == size
    with wave.open(io.BytesIO(resp.body)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, RATE, frames.shape[0])
        back = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(back, frames)
    part = c.get(f"/recordings/{rec_id}/audio", headers={"Range": "bytes=40-1043"})
    assert part.status == 206 and part.header("Content-Length") == "1004"
    assert part.header("Content-Range") == f"bytes 40-1043/{size}"
    assert part.body == resp.body[40:1044]
    download = c.get(f"/recordings/{rec_id}/download")
    assert download.body == resp.body


def test_legend_without_channel_names_and_mono_unchanged(appliance: Appliance) -> None:
    rec_id, _ = add_stereo(appliance)  # no channel_names in the sidecar
    mono = str(appliance.store.page(0, 10)[0][1]["id"])
    c = appliance.client()
    c.login("supervisor")
    assert LEGEND in c.get(f"/recordings/{rec_id}").text
    assert "channels:" not in c.get(f"/recordings/{mono}").text


def test_transcoded_stereo_is_served_as_stereo_opus(appliance: Appliance) -> None:
    from callrec.storage.codec import decode_frames
    from callrec.transcoder import Transcoder

    rec_id, frames = add_stereo(appliance)
    tc = Transcoder(appliance.store, "compact")
    tc.start()
    assert tc.wait_idle(60) and tc.done == 6 and not tc.failed
    tc.stop()
    c = appliance.client()
    c.login("supervisor")
    assert LEGEND in c.get(f"/recordings/{rec_id}").text
    resp = c.get(f"/recordings/{rec_id}/download")
    assert resp.status == 200 and resp.header("Content-Type") == "audio/ogg; codecs=opus"
    assert resp.header("Content-Length") == str(len(resp.body))
    back, rate = decode_frames(resp.body)
    assert rate == RATE and back.shape == frames.shape
    part = c.get(f"/recordings/{rec_id}/audio", headers={"Range": "bytes=10-99"})
    assert part.status == 206 and part.body == resp.body[10:100]
