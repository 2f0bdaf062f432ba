"""Line state from raw line-voltage samples: ring, hook, polarity and loop voltage.

Pure state machines fed one signed sample (volts) per tick, no clock of their own: time is the
sample count, so tests replay waveforms exactly. MicroPython subset; `feed()` returns a shared
empty tuple on the (usual) quiet sample so that the 1 kHz loop does not allocate.
"""

SAMPLE_MS = 1
HOOK_THRESHOLD_V = 21.0  # |loop| below this: an office phone is off-hook (recorder practice)
NO_BATTERY_V = 3.0  # |loop| below this: no battery at all; hook and polarity are undefined
DEBOUNCE_MS = 64  # hook and polarity must hold this long (telephony.md)
# Ringing is judged on 40 ms blocks: one full period at 25 Hz, two at 50 Hz, 0.8 at 20 Hz, so a
# block always sees most of a swing. 75 V RMS ringing is ~210 V peak-to-peak; a hook change is
# <= 40 V and a reversal ~96 V but only in the one or two blocks that straddle the step, which
# RING_ON_BLOCKS rejects.
RING_BLOCK_MS = 40
RING_PP_THRESHOLD_V = 60.0
RING_ON_BLOCKS = 3  # 120 ms of swing before RING,1
RING_OFF_BLOCKS = 6  # 240 ms quiet before RING,0: bridges the 200 ms gap of UK double rings
VOLT_DELTA_V = 2.0
VOLT_PERIOD_MS = 10000

_QUIET = ()


class Debouncer:
    """A value accepted only after `hold` consecutive agreeing samples; None samples are skipped."""

    def __init__(self, hold, state=None):
        self.hold = hold
        self.state = state
        self._pending = state
        self._count = 0

    def update(self, candidate):
        """Feed one candidate value; True when the debounced state changed."""
        if candidate is None:
            return False
        if candidate == self.state:
            self._pending = candidate
            self._count = 0
            return False
        if candidate != self._pending:
            self._pending = candidate
            self._count = 0
        self._count += 1
        if self._count >= self.hold:
            self.state = candidate
            self._count = 0
            return True
        return False

    def restart(self):
        """Forget a change in progress (the signal is not trustworthy right now)."""
        self._pending = self.state
        self._count = 0


class RingDetector:
    """Ringing from the peak-to-peak swing of fixed blocks, debounced in blocks."""

    def __init__(self, sample_ms=SAMPLE_MS):
        self.block = RING_BLOCK_MS // sample_ms
        self.on = False
        self._n = 0
        self._lo = 0.0
        self._hi = 0.0
        self._sum = 0.0
        self._streak = 0  # consecutive blocks disagreeing with `on`
        self.block_mean = None  # DC of the last complete block (ringing averages out)
        self.swinging = False  # last block looked like ringing

    @property
    def busy(self):
        """Ringing, or two blocks of swing in a row: hook and polarity must not be judged.

        One swinging block alone is most likely a reversal or hook step, which must not delay
        its own detection; ringing is caught anyway, as it never holds a level for 64 ms.
        """
        return self.on or self._streak >= 2

    def feed(self, volts):
        """One sample; returns True at the end of a block (block_mean is then fresh)."""
        if self._n == 0:
            self._lo = self._hi = volts
            self._sum = 0.0
        elif volts < self._lo:
            self._lo = volts
        elif volts > self._hi:
            self._hi = volts
        self._sum += volts
        self._n += 1
        if self._n < self.block:
            return False
        self._n = 0
        self.block_mean = self._sum / self.block
        self.swinging = self._hi - self._lo > RING_PP_THRESHOLD_V
        if self.swinging != self.on:
            self._streak += 1
            if self._streak >= (RING_OFF_BLOCKS if self.on else RING_ON_BLOCKS):
                self.on = self.swinging
                self._streak = 0
        else:
            self._streak = 0
        return True


def hook_candidate(volts):
    """True off-hook, False on-hook, None when there is no battery to judge by."""
    magnitude = abs(volts)
    if magnitude <= NO_BATTERY_V:
        return None
    return magnitude < HOOK_THRESHOLD_V


def polarity_candidate(volts):
    """+1 or -1 from the sign of the loop voltage; None when there is no battery."""
    if abs(volts) <= NO_BATTERY_V:
        return None
    return 1 if volts > 0 else -1


class LineSense:
    """All detectors on one sample stream; feed() returns event tuples.

    Events: ("RING", bool), ("HOOK", bool off_hook), ("POL", +1|-1), ("VOLT", float).
    HOOK is also reported when it first settles after start-up; POL only on a reversal (the
    first polarity is not a reversal; it is in `polarity` for the STATE snapshot).
    """

    def __init__(self, sample_ms=SAMPLE_MS):
        self.sample_ms = sample_ms
        hold = DEBOUNCE_MS // sample_ms
        self.ring = RingDetector(sample_ms)
        self._hook = Debouncer(hold)
        self._pol = Debouncer(hold)
        self.volts = None  # last reported loop voltage
        self._prev_mean = None
        self._since_report_ms = 0

    @property
    def off_hook(self):
        return self._hook.state

    @property
    def polarity(self):
        return self._pol.state

    def feed(self, volts):
        """Process one sample; return a tuple/list of events (usually empty)."""
        events = _QUIET
        was_ringing = self.ring.on
        block_done = self.ring.feed(volts)
        if self.ring.on != was_ringing:
            events = [("RING", self.ring.on)]
        if self.ring.busy:
            # The AC swing crosses every threshold many times a second: judge nothing now.
            self._hook.restart()
            self._pol.restart()
        else:
            if self._hook.update(hook_candidate(volts)):
                events = _add(events, ("HOOK", self._hook.state))
            first_polarity = self._pol.state is None
            if self._pol.update(polarity_candidate(volts)) and not first_polarity:
                events = _add(events, ("POL", self._pol.state))
        self._since_report_ms += self.sample_ms
        if block_done:
            report = self._volt_report()
            if report is not None:
                events = _add(events, ("VOLT", report))
        return events

    def _volt_report(self):
        mean = self.ring.block_mean
        previous, self._prev_mean = self._prev_mean, mean
        # Report a change only once two blocks agree, so a step is not reported half-way.
        settled = previous is not None and abs(mean - previous) < VOLT_DELTA_V
        changed = self.volts is None or abs(mean - self.volts) > VOLT_DELTA_V
        due = self._since_report_ms >= VOLT_PERIOD_MS
        if due or (settled and changed and not self.ring.busy):
            self.volts = round(mean, 1)
            self._since_report_ms = 0
            return self.volts
        return None


def _add(events, event):
    if events is _QUIET:
        return [event]
    events.append(event)
    return events
