"""Telephone signal processing in software: G.711, DTMF, caller ID, call-progress tones.

Conventions shared by every module here:
- samples are numpy float32 arrays, mono, 8000 Hz, full scale = ±1.0 (see `signal.py`);
- levels are given in dBm0, the telephone reference: a 0 dBm0 sine has a peak 3.14 dB below
  full scale (G.711's full-scale sine is +3.14 dBm0);
- detectors are streaming objects: `feed(samples) -> list[event]` any number of times with
  chunks of any size, then `flush() -> list[event]` at the end of the input; times in events
  are seconds from the first sample fed. The same objects run live (fed by the daemon) and
  offline (fed from a file by `callrec dsp`), so there is one implementation of each.
- pure code: no I/O, no threads, no clock.
"""
