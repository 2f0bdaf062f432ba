"""Talk-off for caller ID: over ten minutes of speech, noise, silence and tones, no message."""

from __future__ import annotations

import numpy as np
import pytest
from test_callerid_signals import (
    SPEECH_EN,
    SPEECH_FR,
    at_level,
    band_noise,
    decode,
    speech_corpus,
)

from callrec.dsp.signal import RATE, dbm0_to_peak

VOICES = [
    ("fr", SPEECH_FR * 2, []),
    ("fr+f3", SPEECH_FR * 2, ["-p", "70"]),
    ("fr+whisper", SPEECH_FR * 2, []),
    ("en-us", SPEECH_EN * 3, ["-s", "190"]),
    ("en+f2", SPEECH_EN * 3, ["-p", "80"]),
    ("de", "Guten Tag, ich rufe wegen der Rechnung vom letzten Monat an. Bitte rufen Sie "
     "mich zurück, sobald Sie Zeit haben. Vielen Dank und auf Wiederhören. " * 3, []),
]


def tone(freqs: tuple[float, ...], seconds: float, level: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return sum((dbm0_to_peak(level) * np.sin(2 * np.pi * f * t) for f in freqs),
               np.zeros_like(t))


def dtmf_sequence(rng: np.random.Generator, seconds: float) -> np.ndarray:
    rows, cols = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    parts = []
    while sum(len(p) for p in parts) < seconds * RATE:
        parts.append(tone((rng.choice(rows), rng.choice(cols)), 0.08, -10))
        parts.append(np.zeros(int(0.06 * RATE)))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(2024)
    floor = dbm0_to_peak(-65) / np.sqrt(2)
    out: list[tuple[str, np.ndarray]] = []
    voices = speech_corpus(tmp_path_factory.mktemp("talkoff"), VOICES)
    for (name, _, _), speech in zip(VOICES, voices, strict=True):
        for level in (-8.0, -20.0, -35.0):
            y = at_level(speech, level) + band_noise(len(speech), floor, rng)
            out.append((f"{name}@{level}", np.clip(y, -1, 1)))
        # The same speech in line noise 15 dB down.
        y = at_level(speech, -15.0)
        y = y + band_noise(len(y), dbm0_to_peak(-30) / np.sqrt(2), rng)
        out.append((f"{name}+noise", y))
    for level in (-15.0, -25.0, -35.0, -45.0):
        out.append((f"band noise {level}", band_noise(20 * RATE, dbm0_to_peak(level) / 1.41, rng)))
        out.append((f"white noise {level}",
                    rng.standard_normal(10 * RATE) * dbm0_to_peak(level) / 1.41))
    out.append(("silence", band_noise(30 * RATE, floor, rng)))
    for freqs in ((440.0,), (350.0, 440.0), (1300.0,), (2100.0,), (1200.0,), (2200.0,),
                  (1300.0, 2100.0), (1200.0, 2200.0)):
        out.append((f"tone {freqs}", tone(freqs, 5.0, -15.0)))
    # Mark then space, steady: the start of an FSK burst without its data.
    steady = [tone((f,), 0.3, -15.0) for f in (1300.0, 2100.0, 1200.0, 2200.0)]
    out.append(("mark-space", np.concatenate(steady)))
    out.append(("dtmf", dtmf_sequence(rng, 20.0)))
    return [(name, np.asarray(x, dtype=np.float32)) for name, x in out]


def test_corpus_is_over_ten_minutes(corpus: list[tuple[str, np.ndarray]]) -> None:
    assert sum(len(x) for _, x in corpus) / RATE > 600


def test_no_message_from_speech_noise_silence_or_tones(
    corpus: list[tuple[str, np.ndarray]],
) -> None:
    found = {name: decode(x) for name, x in corpus}
    assert {name: msgs for name, msgs in found.items() if msgs} == {}
