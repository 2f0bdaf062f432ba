"""The product's default storage, end to end: a call on the simulated board is captured as
PCM, transcoded after hang-up to Ogg/Opus (encrypted), and served as such with Range support;
its speech survives (correlation), its length to the sample, and nothing lingers in WAV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audiocheck import best_match, read_wav
from callrec.storage.codec import decode_file_bytes
from recfiles import audio_files, recording_wav, wait_stored_as
from webclient import api, api_token

MIN_SPEECH_CORRELATION = 0.9  # Opus at ~5-8 kbit/s against the far end (measured 0.976)


def test_a_call_is_stored_compact_and_served_as_ogg_opus(
    appliance_factory: Any, media: dict[str, Path], tmp_path: Path
) -> None:
    app = appliance_factory(audio_format="compact")
    app.start()
    app.call(direction="in", number="0612345678", audio=str(media["speech"]), rings=1,
             ring_on_s=0.4, ring_off_s=1.2)
    rec_id = app.wait_idle()["last_recording"]
    meta = wait_stored_as(app, rec_id, "opus")

    # On disk: only the encrypted Opus file and the sidecar; the capture is gone.
    [stored] = audio_files(app)
    assert stored.name == f"{rec_id}.opus.cra"
    assert b"OggS" not in stored.read_bytes()
    assert meta["audio"]["codec"] == "opus" and meta["status"] == "complete"
    pcm_bytes = round(meta["duration_s"] * 16000)

    # The API serves Ogg/Opus, whole and by range.
    token = api_token(app)
    code, headers, body = api(app, token, f"/api/v1/recordings/{rec_id}/audio")
    assert code == 200 and headers["Content-Type"].startswith("audio/ogg")
    assert body[:4] == b"OggS" and len(body) == meta["audio"]["bytes"]
    assert len(body) < pcm_bytes / 5
    code, headers, part = api(app, token, f"/api/v1/recordings/{rec_id}/audio",
                              headers={"Range": "bytes=100-299"})
    assert code == 206 and part == body[100:300]
    assert headers["Content-Range"] == f"bytes 100-299/{len(body)}"

    # It decodes to the captured length, and the far end's speech is in it.
    decoded, rate = decode_file_bytes(body)
    assert rate == 8000 and abs(decoded.size * 2 - pcm_bytes) <= 2
    speech, _ = read_wav(media["speech"])
    recorded, _ = read_wav(recording_wav(app, rec_id, tmp_path))
    assert np.array_equal(recorded, decoded.astype(np.float64))  # tools read the same audio
    r, _ = best_match(speech, recorded)
    assert r >= MIN_SPEECH_CORRELATION, f"speech correlation {r:.3f}"
    print(f"stored {len(body)} bytes for {meta['duration_s']} s "
          f"({len(body) / meta['duration_s'] * 8 / 1000:.1f} kbit/s); speech r={r:.3f}")

    # Erasure takes it.
    assert api(app, token, f"/api/v1/recordings/{rec_id}", method="DELETE")[0] == 200
    assert audio_files(app) == []
