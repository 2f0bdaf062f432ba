"""Call-progress tones must not be found in speech, DTMF, music or noise (talk-off).

Speech: the shared espeak-ng corpus (French and English voices through a telephone band,
`speech_corpus.py`) plus the alsa-utils human recordings. Music: the shared corpus's
music-like signals (chords and glides in the DTMF band) and, here, music in the register of
the call-progress tones (200-700 Hz): instrument-like notes, chords on tone frequencies
(F4 + A4 is 349 + 440 Hz, the US dial tone's pair), melodies that keep coming back to 440 Hz
in a busy-tone rhythm, and sustained notes held for seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from speech_corpus import build_corpus, have_tools, load_corpus

from callrec.dsp.gen_dtmf import dial
from callrec.dsp.signal import RATE
from callrec.dsp.tones import TONE_PLANS, ToneDetector, ToneEvent
from support import need_tool

Samples = npt.NDArray[np.float32]
CHUNK = 800
TIMBRES = {  # harmonic amplitudes: bright (1/k), hollow (odd), mellow (1/k^2)
    "bright": tuple(1 / k for k in range(1, 9)),
    "hollow": tuple(1 / k if k % 2 else 0.03 for k in range(1, 9)),
    "mellow": tuple(1 / k**2 for k in range(1, 9)),
}
SCALE = 440 * 2 ** (np.arange(-10, 8) / 12)  # B3 (247 Hz) .. E5 (659 Hz)


def note(freq: float, seconds: float, timbre: tuple[float, ...], vibrato: float = 0.0,
         seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    f = freq * (1 + vibrato * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / RATE
    out = sum(a * np.sin(k * phase + rng.uniform(0, 6.3))
              for k, a in enumerate(timbre, 1) if k * freq < 3400)
    env = np.minimum(1.0, t / 0.02) * np.minimum(1.0, (seconds - t) / 0.02)
    return np.asarray(out * env, dtype=np.float32)


def low_register_music(seed: int = 11) -> Samples:
    rng = np.random.default_rng(seed)
    parts: list[Samples] = []
    names = list(TIMBRES)
    for i in range(24):  # sustained notes and chords, 2-4 s, on and around tone frequencies
        tim = TIMBRES[names[i % 3]]
        chord = [[440.0], [349.23, 440.0], [440.0, 493.88], [493.88, 622.25], [425.0],
                 [392.0, 493.88, 587.33], [440.0, 554.37, 659.26], [349.23]][i % 8]
        dur = float(rng.uniform(2.0, 4.0))
        parts.append(sum((note(f, dur, tim, vibrato=0.004 * (i % 2), seed=i) for f in chord),
                         np.zeros(round(dur * RATE), np.float32)))
    for i in range(24):  # melodies returning to A4 every other beat (0.25 s and 0.5 s beats)
        tim, beat = TIMBRES[names[i % 3]], (0.25, 0.5)[i % 2]
        pitches = [440.0 if k % 2 == 0 else float(rng.choice(SCALE)) for k in range(12)]
        parts.append(np.concatenate([note(f, beat, tim, seed=k) for k, f in enumerate(pitches)]))
    for i in range(24):  # random melodies, staccato with short rests
        tim = TIMBRES[names[i % 3]]
        seq: list[Samples] = []
        for k in range(16):
            dur = float(rng.choice([0.125, 0.25, 0.5, 0.75]))
            seq.append(note(float(rng.choice(SCALE)), dur, tim, seed=k))
            seq.append(np.zeros(round(float(rng.choice([0.0, 0.05, 0.25])) * RATE), np.float32))
        parts.append(np.concatenate(seq))
    out = np.concatenate([np.concatenate((p / max(float(np.abs(p).max()), 1e-9) * 0.5,
                                          np.zeros(RATE // 4))) for p in parts])
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Samples]:
    need_tool("espeak-ng")
    need_tool("sox")
    assert have_tools()
    directory: Path = tmp_path_factory.mktemp("tone-talkoff")
    build_corpus(directory)
    signals = load_corpus(directory)
    signals["music-low-register"] = low_register_music()
    keys = "0123456789*#ABCD"
    signals["dtmf"] = np.concatenate([dial(keys * 4, 0.08, 0.08),
                                      dial(keys * 2, 0.5, 0.5, level_dbm0=-5),
                                      dial(keys, 2.0, 0.3, level_dbm0=-20)])
    rng = np.random.default_rng(3)
    white = rng.standard_normal(60 * RATE) * 0.05
    brown = np.cumsum(rng.standard_normal(60 * RATE)) * 0.002
    signals["noise"] = np.concatenate((white, brown - np.convolve(brown, np.ones(400) / 400,
                                                                  "same"))).astype(np.float32)
    return signals


def run(country: str, x: Samples) -> list[ToneEvent]:
    det = ToneDetector(country)
    out: list[ToneEvent] = []
    for i in range(0, x.size, CHUNK):
        out += det.feed(x[i:i + CHUNK])
    return out + det.flush()


def test_corpus_has_minutes_of_speech_and_music(corpus: dict[str, Samples]) -> None:
    speech = sum(x.size for name, x in corpus.items() if name.startswith(("speech", "human")))
    music = sum(x.size for name, x in corpus.items() if name.startswith("music"))
    assert speech / RATE > 10 * 60 and music / RATE > 4 * 60


@pytest.mark.parametrize("country", sorted(TONE_PLANS))
@pytest.mark.parametrize("gain_db", [0.0, -20.0])
def test_no_tone_in_speech_dtmf_music_or_noise(corpus: dict[str, Samples], country: str,
                                               gain_db: float) -> None:
    gain = np.float32(10 ** (gain_db / 20))
    found = {name: events for name, x in corpus.items() if (events := run(country, x * gain))}
    assert found == {}
