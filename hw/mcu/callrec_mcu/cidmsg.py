"""Caller-ID messages from the optional FSK demodulator chip's data output.

The chip (e.g. HT9032D) turns V.23 / Bell 202 FSK into 1200 bit/s async bytes, read by a UART.
This finds SDMF (0x04) and MDMF (0x80) messages in that byte stream, checks their checksum
(a correct message sums to 0 mod 256) and extracts the number and name. Pure, MicroPython subset.
"""

SDMF = 0x04
MDMF = 0x80
_NUMBER = 0x02
_NAME = 0x07
_MAX_BUFFER = 300  # two full messages; older bytes are line noise or a lost message


class CidDecoder:
    """Bytes in, (number, name) out; '' for a field that is absent, private or unavailable."""

    def __init__(self):
        self._buf = bytearray()
        self.bad_checksum = 0

    def feed(self, data):
        """Consume demodulated bytes; return (number, name) for the last valid message or None."""
        self._buf.extend(data)
        if len(self._buf) > _MAX_BUFFER:
            self._buf = self._buf[-_MAX_BUFFER:]
        found = None
        keep = None  # first candidate still waiting for its bytes
        start = 0
        buf = self._buf
        while start < len(buf):
            if buf[start] != SDMF and buf[start] != MDMF:
                start += 1  # channel seizure (0x55), noise
                continue
            end = start + 2 + buf[start + 1] if start + 1 < len(buf) else len(buf)
            if end >= len(buf):
                # Maybe the start of a message still arriving, maybe a noise byte claiming a
                # long length: keep it, but keep looking for a complete message after it.
                if keep is None:
                    keep = start
                start += 1
                continue
            if sum(buf[start : end + 1]) & 0xFF:
                self.bad_checksum += 1
                start += 1  # not a message start after all: rescan from the next byte
                continue
            found = _parse(buf[start], buf[start + 2 : end])
            start = end + 1
            keep = None
        self._buf = buf[start if keep is None else keep :]
        return found


def _parse(kind, body):
    if kind == SDMF:
        # 8 bytes date-time MMDDhhmm, then the number, or 'O' (unavailable) / 'P' (private).
        number = _text(body[8:])
        return ("" if number in ("O", "P") else number), ""
    number = ""
    name = ""
    i = 0
    while i + 1 < len(body):
        param, length = body[i], body[i + 1]
        value = body[i + 2 : i + 2 + length]
        if param == _NUMBER:
            number = _text(value)
        elif param == _NAME:
            name = _text(value)
        i += 2 + length
    return number, name


def _text(data):
    # Printable 7-bit only: exchanges send ASCII and anything else is demodulation noise.
    return "".join(chr(b) for b in data if 0x20 <= b < 0x7F)
