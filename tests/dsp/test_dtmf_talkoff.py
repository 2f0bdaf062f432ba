"""DTMF talk-off: no key may be detected in speech or music (see `speech_corpus.py`).

The corpus is generated once per session in a tmp directory: ~13 minutes of synthetic French
and English speech (8 espeak-ng voices and speeds), the alsa-utils human recordings, and
~2.5 minutes of music-like signals that pass close to DTMF pairs. The figures (minutes,
false keys) go to `dtmf-talkoff.json` in the tmp directory and are printed (pytest -s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from speech_corpus import build_corpus, have_tools, load_corpus

from callrec.dsp.dtmf import DtmfDetector, DtmfEvent
from callrec.dsp.gen_dtmf import DIGITS, dtmf_tone, silence
from callrec.dsp.signal import RATE, Samples, dbm0_to_peak

CHUNK = 800


@pytest.fixture(scope="session")
def talkoff_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Samples]:
    if not have_tools():
        # The test install provides both: a missing tool is a broken set-up, not a skip.
        pytest.fail("espeak-ng and sox are needed to build the speech corpus: "
                    "run ./install.sh --dev --with-tests")
    directory: Path = tmp_path_factory.mktemp("dtmf-talkoff")
    build_corpus(directory)
    return load_corpus(directory)


def detect(x: Samples) -> list[DtmfEvent]:
    det = DtmfDetector()
    events: list[DtmfEvent] = []
    for i in range(0, len(x), CHUNK):
        events += det.feed(x[i : i + CHUNK])
    return events + det.flush()


def minutes(x: Samples) -> float:
    return len(x) / RATE / 60


def test_corpus_holds_over_5_minutes_of_speech(talkoff_corpus: dict[str, Samples]) -> None:
    speech = sum(minutes(x) for name, x in talkoff_corpus.items() if name.startswith("speech"))
    human = [name for name in talkoff_corpus if name.startswith("human")]
    assert speech >= 5.0
    assert minutes(talkoff_corpus["music"]) >= 2.0
    assert len(human) >= 5 or not any(Path("/usr/share/sounds/alsa").glob("*.wav"))


def test_no_key_in_speech_or_music(talkoff_corpus: dict[str, Samples],
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    false_keys = {name: [(e.digit, round(e.start_s, 3)) for e in detect(x)]
                  for name, x in talkoff_corpus.items()}
    summary = {
        "speech_minutes": round(sum(minutes(x) for n, x in talkoff_corpus.items()
                                    if not n.startswith("music")), 2),
        "music_minutes": round(minutes(talkoff_corpus["music"]), 2),
        "false_keys": sum(len(v) for v in false_keys.values()),
        "by_signal": {n: {"minutes": round(minutes(talkoff_corpus[n]), 2), "false_keys": v}
                      for n, v in false_keys.items()},
    }
    path = tmp_path_factory.mktemp("dtmf-report") / "dtmf-talkoff.json"
    path.write_text(json.dumps(summary, indent=1))
    print(f"\nDTMF talk-off ({path}): {summary['false_keys']} false keys in "
          f"{summary['speech_minutes']} min of speech and {summary['music_minutes']} min "
          "of music")
    assert {n: v for n, v in false_keys.items() if v} == {}


def found(expected: str, got: str) -> int:
    """Longest common subsequence: expected keys found in order."""
    row = [0] * (len(got) + 1)
    for e in expected:
        prev_diag = 0
        for j, g in enumerate(got, start=1):
            prev_diag, row[j] = row[j], (prev_diag + 1 if e == g else max(row[j], row[j - 1]))
    return row[-1]


@pytest.mark.parametrize(("speech_dbm0", "min_rate"), [(-25.0, 0.98), (-20.0, 0.9)])
def test_keys_over_speech_are_still_detected(talkoff_corpus: dict[str, Samples],
                                             speech_dbm0: float, min_rate: float) -> None:
    """The other side of talk-off: keys pressed while someone talks (a caller interrupting
    the announcement). Tones at −10 dBm0 each (−7 dBm0 together), speech at −25 dBm0 (18 dB
    below, mostly found) and −20 dBm0 (13 dB, measured); never a wrong key."""
    keys = DIGITS * 10
    x = np.concatenate([np.concatenate((dtmf_tone(k, 0.08, -10), silence(0.3)))
                        for k in keys])
    speech = np.concatenate([v for n, v in sorted(talkoff_corpus.items())
                             if n.startswith("speech")])[: len(x)]
    speech = speech / np.sqrt(np.mean(speech**2)) * dbm0_to_peak(speech_dbm0) / np.sqrt(2)
    got = "".join(e.digit for e in detect((x + speech).astype(np.float32)))
    hit = found(keys, got)
    print(f"\nkeys over speech at {speech_dbm0:g} dBm0: {hit}/{len(keys)} found, "
          f"{len(got) - hit} extra")
    assert hit >= min_rate * len(keys)
    assert len(got) == hit
