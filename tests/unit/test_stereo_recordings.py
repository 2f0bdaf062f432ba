"""Two-channel recordings (SIP calls: channel 0 the office side, 1 the remote party) through
the whole storage pipeline: the recorder, the sidecar and index, recovery after a crash, the
transcoder (compact and lossless) and reading the audio back. Mono is covered elsewhere and
must not change."""

from __future__ import annotations

import io
import os
import struct
import threading
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from callrec.config import Config, StorageConfig
from callrec.recorder import Recorder
from callrec.storage import codec
from callrec.storage.open_store import open_store, read_recording_wav
from callrec.storage.recordings import RecordingStore, new_recording_id
from callrec.transcoder import Transcoder
from speechcall import speech_call

RATE = 8000
MIN_CORRELATION = 0.9  # compact vs. input on each channel's speech (measured ~0.975)


def tone(freq: float, seconds: float, start: float = 0.0, amp: float = 0.3) -> np.ndarray:
    t = start + np.arange(int(seconds * RATE)) / RATE
    return np.round(amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def interleave(left: np.ndarray, right: np.ndarray) -> bytes:
    return np.stack([left, right], axis=1).astype("<i2").tobytes()


def wav_frames(data: bytes) -> tuple[np.ndarray, int, int]:
    """(frames (n, channels), channels, rate) of WAV bytes."""
    with wave.open(io.BytesIO(data)) as w:
        channels, rate = w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").reshape(-1, channels), channels, rate


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x.astype(np.float64), y.astype(np.float64))[0, 1])


def config_for(tmp_path: Path, encrypt: bool = True) -> Config:
    return Config(storage=StorageConfig(data_dir=str(tmp_path), encrypt=encrypt))


def stored_audio(store: RecordingStore, rec_id: str) -> tuple[bytes, str]:
    source = store.open_audio(rec_id)
    try:
        return source.read_range(0, source.size()), source.content_type
    finally:
        source.close()


# -- the recorder --------------------------------------------------------------------------
def test_recorder_writes_two_channels(tmp_path: Path) -> None:
    """Held audio, streamed audio and the drained tail, all whole interleaved frames; the
    metadata says two channels and the duration per channel; each channel plays back as it
    was fed (bit-exact: a capture is PCM)."""
    config = config_for(tmp_path)
    store = open_store(config)
    rec = Recorder(store, RATE, channels=2)
    rec.start()
    rec_id = new_recording_id()
    office, remote = tone(440, 3.0), tone(1000, 3.0, amp=0.2)
    chunks = [interleave(office[i : i + 800], remote[i : i + 800])  # 100 ms each
              for i in range(0, office.size, 800)]
    done = threading.Event()
    result: list[dict[str, Any] | None] = []
    rec.feed(interleave(tone(300, 0.1), tone(300, 0.1)))  # before the call: dropped
    rec.begin(rec_id)
    for c in chunks[:5]:  # during the announcement: held
        rec.feed(c)
    rec.commit({"id": rec_id, "status": "recording", "channel_names": ["office", "remote"],
                "audio": {"sample_rate": RATE, "channels": 2}})
    for c in chunks[5:25]:
        rec.feed(c)
    # 0.025 s of tail = exactly 200 frames (800 bytes), cut inside a 100 ms chunk.
    rec.finish({"id": rec_id, "channel_names": ["office", "remote"]},
               lambda meta: (result.append(meta), done.set()), tail_s=0.025)
    for c in chunks[25:]:
        rec.feed(c)
    assert done.wait(5)
    rec.stop()

    frames = 25 * 800 + 200
    meta = result[0]
    assert meta is not None and meta["status"] == "complete"
    assert meta["audio"]["channels"] == 2 and meta["audio"]["sample_rate"] == RATE
    assert meta["audio"]["bytes"] == frames * 4
    assert meta["duration_s"] == round(frames / RATE, 3) == 2.525
    indexed, sidecar = store.get(rec_id), store.load_sidecar(rec_id)
    assert indexed is not None and sidecar is not None
    for doc in (indexed, sidecar):
        assert doc["audio"]["channels"] == 2 and doc["duration_s"] == 2.525
        assert doc["channel_names"] == ["office", "remote"]

    data, content_type = stored_audio(store, rec_id)  # decrypted, as the web UI serves it
    assert content_type == "audio/wav" and len(data) == 44 + frames * 4
    back, channels, rate = wav_frames(data)
    assert (channels, rate, back.shape) == (2, RATE, (frames, 2))
    assert np.array_equal(back[:, 0], office[:frames])
    assert np.array_equal(back[:, 1], remote[:frames])
    assert correlation(back[:, 0], office[:frames]) > 0.999
    assert abs(correlation(back[:, 0], back[:, 1])) < 0.05  # not mixed
    assert read_recording_wav(config, rec_id) == data  # tools read the same WAV
    store.close()


def test_recorder_caps_held_audio_by_channels(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path)
    rec = Recorder(store, RATE, channels=2)
    with pytest.raises(ValueError):
        Recorder(store, RATE, channels=3)
    rec._rec_id = "x"  # the cap is a byte count: twice mono's for two channels
    second = interleave(tone(440, 1.0), tone(440, 1.0))
    for _ in range(130):
        rec._frame(second)
    assert rec._held_bytes == 120 * RATE * 4
    store.close()


# -- recovery after a crash ----------------------------------------------------------------
@pytest.mark.parametrize("encrypt", [True, False])
def test_an_interrupted_stereo_recording_is_recovered(tmp_path: Path, encrypt: bool) -> None:
    """The process dies during the call (no finish, no close): at the next start recover()
    takes the channel count from the sidecar for the duration and the audio info."""
    config = config_for(tmp_path, encrypt)
    store = open_store(config)
    rec_id = new_recording_id(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    office, remote = tone(440, 2.5), tone(700, 2.5)
    sidecar = {"id": rec_id, "status": "recording", "started_at": "2026-11-29T10:00:00+00:00",
               "audio": {"sample_rate": RATE, "channels": 2}}
    writer = store.open_writer(sidecar, RATE, channels=2)
    writer.write(interleave(office, remote))
    writer.sync()
    os.close(writer._fd)  # type: ignore[attr-defined]  # the crash: no final chunk or header
    writer._fd = -1  # type: ignore[attr-defined]
    store.close()

    store = open_store(config)
    assert store.recover() == [rec_id]
    meta = store.get(rec_id)
    assert meta is not None and meta["status"] == "interrupted"
    assert meta["duration_s"] == 2.5  # 20000 frames, not 40000 samples
    assert meta["audio"]["channels"] == 2 and meta["audio"]["bytes"] == 20000 * 4
    data, _ = stored_audio(store, rec_id)
    back, channels, _ = wav_frames(data)
    assert channels == 2 and back.shape == (20000, 2)
    assert np.array_equal(back[:, 0], office) and np.array_equal(back[:, 1], remote)
    store.close()


# -- transcoding ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conversation() -> np.ndarray:
    """Two parties taking turns: each channel real speech with pauses of line noise, the
    remote party's phrases where the office side pauses. Shape (samples, 2)."""
    office = speech_call(1.5)
    remote = np.roll(speech_call(1.5), int(1.4 * RATE))
    return np.stack([office, remote], axis=1)


def record_stereo(store: RecordingStore, frames: np.ndarray) -> str:
    rec_id = new_recording_id(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    meta: dict[str, Any] = {"id": rec_id, "direction": "in",
                            "started_at": "2026-11-29T10:00:00+00:00", "status": "recording"}
    writer = store.open_writer(meta, RATE, channels=2)
    writer.write(frames.astype("<i2").tobytes())
    writer.close()
    store.add({**meta, "status": "complete", "duration_s": frames.shape[0] / RATE,
               "audio": store.audio_info(writer, RATE, 2)})
    return rec_id


def transcode(store: RecordingStore, fmt: str) -> Transcoder:
    tc = Transcoder(store, fmt)
    tc.start()
    assert tc.wait_idle(120)
    tc.stop()
    assert tc.done == 1 and not tc.failed
    return tc


def speech_correlation(src: np.ndarray, back: np.ndarray) -> float:
    speech = codec.speech_mask(src) & (src != 0)
    return correlation(src[speech], back[: src.size][speech])


def test_compact_stereo_keeps_both_channels(tmp_path: Path, conversation: np.ndarray) -> None:
    config = config_for(tmp_path)
    store = open_store(config)
    rec_id = record_stereo(store, conversation)
    transcode(store, "compact")
    meta = store.get(rec_id)
    assert meta is not None and meta["audio"]["format"] == "opus"
    assert meta["audio"]["channels"] == 2
    data, content_type = stored_audio(store, rec_id)
    assert content_type == "audio/ogg; codecs=opus" and data[:4] == b"OggS"
    assert len(data) < conversation.nbytes / 10  # far smaller than the PCM
    back, rate = codec.decode_frames(data)
    assert rate == RATE and back.shape == conversation.shape  # no sample lost
    for ch in (0, 1):
        assert speech_correlation(conversation[:, ch], back[:, ch]) > MIN_CORRELATION
    # Not mixed: each decoded channel resembles its own source, not the other one.
    assert abs(correlation(back[:, 0], conversation[:, 1])) < 0.3
    assert abs(correlation(back[:, 1], conversation[:, 0])) < 0.3
    wav = read_recording_wav(config, rec_id)
    assert wav_frames(wav)[0].shape == conversation.shape
    store.close()


def test_lossless_stereo_is_bit_exact(tmp_path: Path, conversation: np.ndarray) -> None:
    store = open_store(config_for(tmp_path))
    rec_id = record_stereo(store, conversation)
    transcode(store, "lossless")
    data, content_type = stored_audio(store, rec_id)
    assert content_type == "audio/flac" and data[:4] == b"fLaC"
    back, rate = codec.decode_frames(data)
    assert rate == RATE and np.array_equal(back, conversation)
    store.close()


# -- the codec -----------------------------------------------------------------------------
def split_multistream(packet: bytes) -> tuple[bytes, bytes]:
    """A two-stream packet's code-0 packets: the first self-delimited (TOC, length, frame)."""
    n, skip = packet[1], 1
    if n >= 252:
        n, skip = n + 4 * packet[2], 2
    end = 1 + skip + n
    return bytes([packet[0]]) + packet[1 + skip : end], packet[end:]


def test_stereo_opus_is_two_mono_streams_each_with_its_own_dtx(conversation: np.ndarray) -> None:
    """Family 1, two uncoupled streams; a pause on one side is DTX on that side only."""
    data = codec.encode_bytes(conversation.reshape(-1), "compact", channels=2)
    packets, _, _ = codec.ogg_packets(data)
    head = packets[0]
    assert head[:8] == b"OpusHead" and head[9] == 2 and head[18] == 1
    assert head[19:] == bytes([2, 0, 0, 1])  # 2 streams, 0 coupled, channel i -> stream i
    split = [split_multistream(p) for p in packets[2:]]
    dtx0 = {i for i, (first, _) in enumerate(split) if len(first) == 1}
    dtx1 = {i for i, (_, second) in enumerate(split) if len(second) == 1}
    assert len(dtx0) > 20 and len(dtx1) > 20
    assert len(dtx0 & dtx1) < min(len(dtx0), len(dtx1)) / 2  # the sides pause at other times
    # A DTX packet keeps its TOC's configuration (and stereo flag): only the code bits go.
    assert all(split[i][0][0] & 0xFC == split[i][0][0] for i in dtx0)
    back, _ = codec.decode_frames(data)
    assert back.shape == conversation.shape


def test_self_delimited_framing() -> None:
    frame = bytes(range(7)) * 50  # 350 bytes: a two-byte length
    code0 = codec._self_delimited(bytes([0x08]) + frame)
    assert code0[0] == 0x08 and code0[1] + 4 * code0[2] == 350 and code0[3:] == frame
    code1 = codec._self_delimited(bytes([0x09]) + b"ab" * 3)
    assert code1 == bytes([0x09, 3]) + b"ab" * 3
    code2 = codec._self_delimited(bytes([0x0A, 2]) + b"xy" + b"zzzz")
    assert code2 == bytes([0x0A, 2, 4]) + b"xyzzzz"
    with pytest.raises(ValueError):
        codec._self_delimited(bytes([0x0B, 1]))


def test_plain_stereo_wav_header(tmp_path: Path) -> None:
    """Without encryption the capture is a two-channel WAV as it is written."""
    store = open_store(config_for(tmp_path, encrypt=False))
    rec_id = new_recording_id()
    writer = store.open_writer({"id": rec_id, "status": "recording"}, RATE, channels=2)
    writer.write(interleave(tone(440, 0.5), tone(880, 0.5)))
    writer.sync()
    head = writer.path.read_bytes()[:44]
    assert struct.unpack("<HHIIHH", head[20:36]) == (1, 2, RATE, RATE * 4, 4, 16)
    writer.close()
    info, _ = sf.read(writer.path, dtype="int16", always_2d=True)
    assert info.shape == (4000, 2)
    store.close()
