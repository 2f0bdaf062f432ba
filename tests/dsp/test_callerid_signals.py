"""Test signals for the caller-ID tests (shared helpers), and checks of the generators themselves.

Helpers imported by the other caller-ID test modules: `band_noise`, `with_noise`, `decode`,
`embed`, `speech_corpus`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from callrec.dsp.callerid import CallerIdDecoder
from callrec.dsp.callerid_types import CallerIdMessage
from callrec.dsp.fsk import V23
from callrec.dsp.gen_callerid import (
    build_message,
    checksum,
    etsi_message,
    fsk_burst,
    mdmf_message,
    message_bits,
    sdmf_message,
)
from callrec.dsp.signal import RATE, dbm0_to_peak, from_pcm16, rms_to_dbm0
from support import need_tool

BAND = (300.0, 3400.0)  # the telephone band, where S/N is measured


def band_noise(n: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise band-limited to 300-3400 Hz (FFT brick wall), with this RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < BAND[0]) | (freqs > BAND[1])] = 0
    y = np.fft.irfft(spectrum, n)
    return y * (rms / np.sqrt(np.mean(y * y)))


def with_noise(x: np.ndarray, burst: np.ndarray, snr_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """`x` plus band noise whose power is `snr_db` below the FSK burst's (all in band)."""
    signal_power = float(np.mean(np.asarray(burst, dtype=np.float64) ** 2))
    noise_rms = np.sqrt(signal_power / 10 ** (snr_db / 10))
    return (x + band_noise(len(x), noise_rms, rng)).astype(np.float32)


def embed(*parts: np.ndarray | float) -> np.ndarray:
    """Concatenate signals; a float is that many seconds of silence."""
    out = [np.zeros(round(p * RATE), dtype=np.float32) if isinstance(p, float)
           else np.asarray(p, dtype=np.float32) for p in parts]
    return np.concatenate(out)


def decode(x: np.ndarray, chunk: int = 800, standard: str = "auto") -> list[CallerIdMessage]:
    """Feed `x` in chunks the way the daemon does, then flush."""
    dec = CallerIdDecoder(standard)
    out: list[CallerIdMessage] = []
    for a in range(0, len(x), chunk):
        out += dec.feed(x[a : a + chunk])
    return out + dec.flush()


SPEECH_FR = (
    "Bonjour, je vous appelle au sujet de votre commande numéro douze. Pouvez-vous me "
    "rappeler demain matin avant midi ? La réunion de jeudi est reportée à la semaine "
    "prochaine, il faudra prévenir tout le monde. Merci beaucoup, au revoir. "
)
SPEECH_EN = (
    "Hello, this is Mary from the accounting office, I am calling about the invoice we sent "
    "last week. Please call me back when you get a chance, my number is five five five. "
)


def speech_corpus(tmp: Path, voices: Iterable[tuple[str, str, list[str]]]) -> list[np.ndarray]:
    """Synthetic speech (espeak-ng, then sox to 8 kHz 16-bit mono), one array per voice."""
    need_tool("espeak-ng")
    need_tool("sox")
    out = []
    for k, (voice, text, extra) in enumerate(voices):
        wav, line = tmp / f"v{k}.wav", tmp / f"v{k}_8k.raw"
        subprocess.run(["espeak-ng", "-v", voice, *extra, "-w", str(wav), text], check=True,
                       capture_output=True)
        subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed",
                        "-t", "raw", str(line)], check=True)
        out.append(from_pcm16(line.read_bytes()))
    return out


def at_level(x: np.ndarray, level_dbm0: float) -> np.ndarray:
    """Scale speech so that its active part (|x| > 1 % FS) sits at `level_dbm0`."""
    active = x[np.abs(x) > 0.01]
    rms = float(np.sqrt(np.mean(active.astype(np.float64) ** 2)))
    return (x * (dbm0_to_peak(level_dbm0) / np.sqrt(2) / rms)).astype(np.float32)


# --------------------------------------------------------------------- generator checks
def test_checksum_makes_the_message_sum_to_zero() -> None:
    for msg in (etsi_message(number="0612345678", name="DUPONT", datetime="01021230"),
                sdmf_message(number="5551234567", datetime="12251830"),
                mdmf_message(absence="P", name_absence="P")):
        assert sum(msg) % 256 == 0
        assert msg[1] == len(msg) - 3
    bad = etsi_message(number="0612345678", corrupt_checksum=True)
    assert sum(bad) % 256 != 0
    assert checksum(b"\x80\x00") == 0x80
    assert build_message(0x04, b"0101000012")[-1] == checksum(b"\x04\x0a0101000012")


def test_etsi_parameter_layout() -> None:
    msg = etsi_message(number="0612", name="A", datetime="01021230", absence=None)
    assert msg[:2] == bytes([0x80, len(msg) - 3])
    assert msg[2:12] == b"\x01\x0801021230"
    assert msg[12:18] == b"\x02\x040612"
    assert msg[18:21] == b"\x07\x01A"


def test_sdmf_layout() -> None:
    assert sdmf_message(datetime="12251830", absence="P")[:11] == b"\x04\x0912251830P"
    with pytest.raises(ValueError):
        sdmf_message(number="1", datetime="1225")


def test_burst_bits_level_and_phase_continuity() -> None:
    bits = message_bits(b"\x80", seizure_bits=4, mark_bits=3, end_mark_bits=2)
    assert bits == [0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    x = fsk_burst(b"\x80\x00\x80", "etsi-v23", level_dbm0=-20, seizure_bits=0, mark_bits=600)
    mark = x[:4000].astype(np.float64)
    assert abs(rms_to_dbm0(float(np.sqrt(np.mean(mark**2)))) + 20) < 0.05
    spectrum = np.abs(np.fft.rfft(mark))
    assert np.fft.rfftfreq(len(mark), 1 / RATE)[int(np.argmax(spectrum))] == V23.mark_hz
    # Phase continuity: no sample-to-sample step larger than a continuous sine allows.
    full = fsk_burst(etsi_message(number="0612345678"), "etsi-v23", level_dbm0=0)
    peak = dbm0_to_peak(0)
    assert np.max(np.abs(np.diff(full))) <= peak * 2 * np.sin(np.pi * V23.space_hz / RATE) + 1e-4


def test_band_noise_is_in_band_with_the_asked_snr() -> None:
    rng = np.random.default_rng(1)
    burst = fsk_burst(etsi_message(number="0612345678"), "bell202", level_dbm0=-30)
    noisy = with_noise(burst, burst, 15.0, rng).astype(np.float64) - burst
    snr = 10 * np.log10(np.mean(burst.astype(np.float64) ** 2) / np.mean(noisy**2))
    assert abs(snr - 15.0) < 0.1
    spectrum = np.abs(np.fft.rfft(noisy)) ** 2
    freqs = np.fft.rfftfreq(len(noisy), 1 / RATE)
    assert spectrum[(freqs < 290) | (freqs > 3410)].sum() < 1e-6 * spectrum.sum()
