"""Talk-off corpus for the DTMF tests: speech and music-like signals that contain no DTMF.

- synthetic speech: espeak-ng reading long French and English texts with several voices,
  speeds and pitches, resampled to 8 kHz through a telephone band (sox `sinc 300-3400`) and
  peak-normalised to −1 dBFS (loud speech is the harder case for talk-off);
- real human speech: /usr/share/sounds/alsa/*.wav (alsa-utils), same treatment;
- music-like signals (numpy, seeded): chords, parallel glides and vibrato notes with
  instrument-like harmonic spectra, their notes on the equal-tempered scale or gliding
  through the DTMF band, passing close to DTMF pairs or held on them with strong harmonics.

`build_corpus(directory)` writes the audio files once (a session fixture caches them);
`load_corpus(directory)` returns name → float32 samples at 8 kHz.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 8000
Samples = npt.NDArray[np.float32]

TEXT_EN = (
    "Good morning, and thank you for calling the customer service line. My name is Daniel, "
    "and I will be looking after your request today. Before we begin, may I ask for your "
    "account number and the postcode of the address where the equipment was delivered? "
    "Thank you. I can see that the order was placed on the fourteenth of March, and that "
    "the parcel left our warehouse two days later. The tracking record shows a first "
    "delivery attempt on Friday afternoon, but nobody was at home, so the driver left a "
    "card and took the parcel back to the depot. It has been waiting there since then. "
    "You have three options. We can arrange a second delivery on a day that suits you, you "
    "can collect it yourself from the depot, which is open from eight in the morning until "
    "six in the evening, or we can send it to a pick-up point near your home or office. "
    "Most people find the pick-up point the easiest, because there is no need to wait in. "
    "If you choose a new delivery, please remember that someone over eighteen will need to "
    "sign for it. The phone number we have on file is oh one two three, four five six, "
    "seven eight nine, and the extension is forty two. Is that still correct? Wonderful. "
    "While I have you on the line, I should also mention that the warranty on the washing "
    "machine starts on the day it is delivered, not on the day it was ordered, so you lose "
    "nothing by waiting. The installation service can be booked separately, and the "
    "engineer will remove the packaging and your old appliance if you ask them to. Would "
    "you like me to book that as well? Very good. I have made a note on the account, and "
    "you will receive a text message and an email confirming the new arrangements within "
    "the hour. Is there anything else I can help you with this morning? Then thank you "
    "again for your patience, and have a lovely rest of the day. Goodbye."
)

TEXT_FR = (
    "Bonjour madame, je vous appelle au sujet du rendez-vous que nous avions fixé pour "
    "mardi prochain. Malheureusement, le technicien qui devait passer chez vous est tombé "
    "malade, et nous devons déplacer l'intervention. Je peux vous proposer jeudi matin, "
    "entre huit heures et midi, ou bien vendredi après-midi, entre quatorze heures et dix-"
    "huit heures. Qu'est-ce qui vous arrange le mieux ? Très bien, je note jeudi matin. "
    "Le technicien vous appellera une demi-heure avant d'arriver, sur le numéro que vous "
    "nous avez donné, le zéro six, douze, trente-quatre, cinquante-six, soixante-dix-huit. "
    "Pensez à dégager l'accès au compteur, qui se trouve d'après notre dossier dans le "
    "garage, à gauche de la porte. L'intervention dure en général une heure et demie, mais "
    "elle peut se prolonger si l'installation est ancienne ou si des pièces doivent être "
    "remplacées. Dans ce cas, le technicien vous expliquera les travaux nécessaires et "
    "vous remettra un devis avant de commencer quoi que ce soit. Rien ne sera facturé sans "
    "votre accord. Je vous rappelle aussi que la facture de l'année dernière comportait "
    "une erreur sur le relevé de janvier ; elle a été corrigée, et un avoir de quarante-"
    "deux euros et quinze centimes sera déduit de votre prochaine échéance. Si vous avez "
    "la moindre question d'ici là, vous pouvez joindre notre service client du lundi au "
    "samedi, de neuf heures à dix-neuf heures, ou laisser un message sur notre site. Nous "
    "vous répondrons dans les quarante-huit heures. Je vous remercie de votre compréhension "
    "et je vous souhaite une excellente fin de journée. Au revoir, madame."
)

# (name, espeak-ng voice, words per minute, pitch 0-99, text)
VOICES: tuple[tuple[str, str, int, int, str], ...] = (
    ("en-gb-m", "en", 165, 50, TEXT_EN),
    ("en-us-m", "en-us", 190, 40, TEXT_EN),
    ("en-m3-slow", "en+m3", 140, 35, TEXT_EN),
    ("en-f2-high", "en-us+f2", 175, 70, TEXT_EN),
    ("fr-m", "fr", 165, 50, TEXT_FR),
    ("fr-f2", "fr+f2", 170, 65, TEXT_FR),
    ("fr-m3-fast", "fr+m3", 210, 30, TEXT_FR),
    ("fr-f4-slow", "fr+f4", 135, 80, TEXT_FR),
)

ALSA_SOUNDS = Path("/usr/share/sounds/alsa")


def have_tools() -> bool:
    """espeak-ng and sox are both installed."""
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def _phone_band(src: Path, dst: Path) -> None:
    """Mono 8 kHz 16-bit through a 300-3400 Hz band, peak at −1 dBFS."""
    subprocess.run(
        ["sox", str(src), "-r", str(RATE), "-c", "1", "-b", "16", str(dst),
         "sinc", "300-3400", "gain", "-n", "-1"],
        check=True, capture_output=True,
    )


def _speak(directory: Path, spec: tuple[str, str, int, int, str]) -> Path:
    name, voice, wpm, pitch, text = spec
    raw = directory / f"{name}.raw.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(raw), text],
        check=True, capture_output=True,
    )
    out = directory / f"speech-{name}.wav"
    _phone_band(raw, out)
    raw.unlink()
    return out


def build_corpus(directory: Path) -> list[Path]:
    """Write every corpus file into `directory` (2 processes at a time); return them."""
    directory.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        files = list(pool.map(lambda spec: _speak(directory, spec), VOICES))
    for wav in sorted(ALSA_SOUNDS.glob("*.wav")):
        out = directory / f"human-{wav.stem}.wav"
        _phone_band(wav, out)
        files.append(out)
    music = directory / "music.wav"
    write_wav(music, music_like())
    files.append(music)
    return files


def write_wav(path: Path, samples: Samples) -> None:
    """16-bit mono WAV at 8 kHz."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def read_wav(path: Path) -> Samples:
    """16-bit mono WAV → float32 samples (full scale ±1)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != RATE:
            raise ValueError(f"{path}: expected 16-bit mono {RATE} Hz")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32768).astype(np.float32)


def load_corpus(directory: Path) -> dict[str, Samples]:
    """name → samples for every WAV in `directory`."""
    return {p.stem: read_wav(p) for p in sorted(directory.glob("*.wav"))}


# -- music-like signals ------------------------------------------------------------------


def _note(
    freq: npt.ArrayLike,
    duration_s: float,
    harmonics: tuple[float, ...],
    rng: np.random.Generator,
) -> Samples:
    """A note with the given harmonic amplitudes (1st = fundamental) and an attack/decay
    envelope; `freq` may be an array (instantaneous frequency per sample, for glides and
    vibrato). Harmonics above 3400 Hz are dropped (telephone band)."""
    n = round(duration_s * RATE)
    f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / RATE
    out = np.zeros(n)
    for k, amp in enumerate(harmonics, start=1):
        audible = k * f < 3400
        out += amp * audible * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    t = np.arange(n) / RATE
    env = np.minimum(1.0, t / 0.03) * np.exp(-t / max(duration_s, 0.1) * rng.uniform(0.3, 1.5))
    return (out * env).astype(np.float32)


def _normalise(x: npt.NDArray[np.float64], peak: float = 0.7) -> Samples:
    return (x * (peak / max(float(np.abs(x).max()), 1e-9))).astype(np.float32)


# Instrument-like spectra: bright (sawtooth, 1/k), hollow (odd harmonics), mellow (1/k²).
TIMBRES: dict[str, tuple[float, ...]] = {
    "bright": tuple(1 / k for k in range(1, 9)),
    "hollow": tuple(1 / k if k % 2 else 0.05 for k in range(1, 9)),
    "mellow": tuple(1 / k**2 for k in range(1, 9)),
}


def music_like(seed: int = 7) -> Samples:
    """About 2.7 minutes of music-like signals around the DTMF band (module docstring).

    1. chords of 3-4 equal-tempered notes between 600 and 1700 Hz, every timbre;
    2. portamento: two voices each gliding between random notes (500-2000 Hz) at their own
       rate, crossing the DTMF band and passing close to DTMF pairs without holding one;
    3. fast parallel glides (3-5 octaves/s) at common intervals;
    4. vibrato dyads (±2-4 %, 5-7 Hz) whose pitch never comes within 3.5 % of a DTMF pair
       (Q.24's must-reject distance) while brushing past it every cycle;
    5. bright and hollow dyads sustained within 1 % of a DTMF pair: an instrument on a
       musical coincidence (F5 = 698.5 Hz is 697 Hz, F#6 = 1480 Hz is 1477 Hz), whose
       harmonics carry over a quarter of its power where a DTMF generator's carry < 1 %.
    """
    rng = np.random.default_rng(seed)
    parts: list[Samples] = []

    def timbre(*names: str) -> tuple[float, ...]:
        return TIMBRES[str(rng.choice(list(names or TIMBRES)))]

    def seconds(d: float) -> npt.NDArray[np.float64]:
        return np.arange(round(d * RATE)) / RATE

    semis = 440 * 2 ** (np.arange(3, 21) / 12)  # C5 (523 Hz) .. G#6 (1661 Hz)
    for _ in range(40):
        tim = timbre()
        notes = rng.choice(semis[(semis > 600) & (semis < 1700)], rng.integers(3, 5), False)
        dur = float(rng.uniform(0.4, 1.2))
        parts.append(_normalise(sum(_note(f, dur, tim, rng) for f in notes)))
    for _ in range(40):
        tim, dur = timbre(), float(rng.uniform(0.4, 1.2))
        t = seconds(dur)
        voices = []
        for _v in range(2):
            f0, f1 = rng.uniform(500, 2000, 2)
            voices.append(_note(f0 * (f1 / f0) ** (t / dur), dur, tim, rng))
        parts.append(_normalise(voices[0] + voices[1]))
    for _ in range(30):
        tim, dur = timbre(), 1.0
        ratio = float(rng.choice([1.5, 1.682, 2.0, 1.335, 2.52]))
        octaves = float(rng.uniform(3.0, 5.0))
        f0 = np.clip(450 * 2 ** (octaves * seconds(dur)), 450, 2000)
        parts.append(_normalise(_note(f0, dur, tim, rng) + _note(f0 * ratio, dur, tim, rng)))
    rows, cols = (697.0, 770.0, 852.0, 941.0), (1209.0, 1336.0, 1477.0, 1633.0)
    for _ in range(30):
        tim, dur = timbre(), 1.0
        depth, speed = rng.uniform(0.02, 0.04), rng.uniform(5, 7)
        vib = 1 + depth * np.sin(2 * np.pi * speed * seconds(dur))
        pair = []
        for group in (rows, cols):
            away = (depth + rng.uniform(0.036, 0.05)) * rng.choice([-1, 1])
            pair.append(_note(rng.choice(group) * (1 + away) * vib, dur, tim, rng))
        parts.append(_normalise(pair[0] + pair[1]))
    for _ in range(30):
        tim, dur = timbre("bright", "hollow"), float(rng.uniform(0.3, 1.0))
        row = rng.choice(rows) * (1 + rng.uniform(-0.01, 0.01))
        col = rng.choice(cols) * (1 + rng.uniform(-0.01, 0.01))
        parts.append(_normalise(_note(row, dur, tim, rng) + _note(col, dur, tim, rng)))
    gap = np.zeros(RATE // 10, dtype=np.float32)
    return np.concatenate([np.concatenate((p, gap)) for p in parts]).astype(np.float32)
