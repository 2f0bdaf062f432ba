"""The simulator's dialler: each key is exactly its two Q.23 frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from callrec.sim.dtmf_tones import dial, frequencies


@pytest.mark.parametrize(("key", "pair"), [("1", (697, 1209)), ("0", (941, 1336)),
                                           ("#", (941, 1477)), ("D", (941, 1633))])
def test_key_frequencies(key: str, pair: tuple[int, int]) -> None:
    assert frequencies(key) == pair


def test_dialled_key_spectrum_has_its_two_tones_and_a_pause() -> None:
    pcm = np.frombuffer(dial("5", tone_ms=100, gap_ms=50), dtype="<i2").astype(float)
    assert len(pcm) == 8000 * 150 // 1000
    tone, gap = pcm[:800], pcm[800:]
    spectrum = np.abs(np.fft.rfft(tone))
    freqs = np.fft.rfftfreq(len(tone), 1 / 8000)
    peaks = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert peaks == [770.0, 1340.0] or peaks == [770.0, 1330.0]  # 10 Hz bins around 1336 Hz
    assert not gap.any()


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a DTMF key"):
        dial("5X")
