"""Frames of the HAT serial protocol (hw/PROTOCOL.md): `$<payload>*<CRC16 hex>\\n`.

Pure functions and one byte-at-a-time decoder, shared by the MCU firmware (MicroPython) and
the Pi (CPython), so both ends cannot disagree on the framing. MicroPython subset only: no
typing, no dataclasses, no f-string conversions.
"""

PROTOCOL_VERSION = 1
MAX_FRAME = 128  # bytes from '$' to '\n' inclusive
# '$' + payload + '*' + 4 hex digits + '\n'
MAX_PAYLOAD = MAX_FRAME - 7

_DOLLAR = 0x24
_STAR = 0x2A
_CR = 0x0D
_LF = 0x0A
_HEX = b"0123456789ABCDEFabcdef"
# Bytes that must not appear literally inside a field: the frame delimiters, the field
# separator, the escape character itself, and the backslash (terminal programs treat it specially).
_ESCAPED = b",*$\\%"


def crc16_ccitt(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection); b'123456789' -> 0x29B1."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            if crc & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
    return crc


def escape_field(text):
    """Make any text safe as one field: %XX for separators, '%', '\\\\' and non-ASCII (UTF-8)."""
    out = []
    for byte in text.encode("utf-8"):
        if byte < 0x20 or byte > 0x7E or byte in _ESCAPED:
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def unescape_field(text):
    """Reverse escape_field; a malformed %-sequence is kept literally rather than rejected."""
    raw = bytearray()
    data = text.encode("utf-8")
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x25 and i + 2 < len(data) and _is_hex(data[i + 1]) and _is_hex(data[i + 2]):
            raw.append(int(data[i + 1 : i + 3].decode(), 16))
            i += 3
        else:
            raw.append(byte)
            i += 1
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeError:
        # Not UTF-8 (a CID chip may deliver 8-bit characters): read it as Latin-1.
        return "".join(chr(b) for b in raw)


def _is_hex(byte):
    return byte in _HEX


def encode_frame(fields):
    """Frame a list of already-escaped fields; ValueError if a field is unsafe or too long."""
    payload = ",".join(fields)
    data = payload.encode("utf-8")
    if not data or len(data) > MAX_PAYLOAD:
        raise ValueError("payload length out of range")
    for byte in data:
        if byte < 0x20 or byte > 0x7E or byte == _STAR or byte == _DOLLAR:
            raise ValueError("payload holds a byte that must be escaped")
    return b"$" + data + b"*" + (f"{crc16_ccitt(data):04X}\n").encode()


class FrameDecoder:
    """Bytes in, lists of (still escaped) fields out; never raises on bad input.

    On garbage, an oversize line, a malformed frame or a bad CRC it drops everything up to the
    next '$' or newline and counts the error, so one corrupted byte costs at most one frame.
    """

    def __init__(self, max_frame=MAX_FRAME):
        self._max_body = max_frame - 2  # the buffer holds neither '$' nor '\n'
        self._buf = None  # None: hunting for '$'
        self.frames = 0
        self.garbage_bytes = 0
        self.bad_crc = 0
        self.oversize = 0
        self.malformed = 0
        self.truncated = 0

    def feed(self, data):
        """Consume bytes; return the field lists of every complete, valid frame."""
        out = []
        for byte in data:
            if byte == _DOLLAR:
                if self._buf is not None:
                    self.truncated += 1  # a new frame started before this one ended
                self._buf = bytearray()
            elif self._buf is None:
                if byte != _LF and byte != _CR:
                    self.garbage_bytes += 1
            elif byte == _LF:
                fields = self._finish(self._buf)
                self._buf = None
                if fields is not None:
                    out.append(fields)
            elif len(self._buf) >= self._max_body:
                self.oversize += 1
                self._buf = None
            else:
                self._buf.append(byte)
        return out

    def reset(self):
        """Forget a partly received frame (the stream was interrupted, e.g. port re-opened)."""
        if self._buf is not None:
            self.truncated += 1
        self._buf = None

    def _finish(self, body):
        if body and body[-1] == _CR:  # tolerate CRLF from a technician's terminal
            body = body[:-1]
        if len(body) < 6 or body[-5] != _STAR:
            self.malformed += 1
            return None
        payload = bytes(body[:-5])
        for byte in body[-4:]:
            if byte not in _HEX:
                self.malformed += 1
                return None
        for byte in payload:
            if byte < 0x20 or byte > 0x7E or byte == _STAR:
                self.malformed += 1
                return None
        if int(bytes(body[-4:]).decode(), 16) != crc16_ccitt(payload):
            self.bad_crc += 1
            return None
        self.frames += 1
        return payload.decode().split(",")

    def stats(self):
        """Error and frame counters as a dict."""
        return {
            "frames": self.frames,
            "garbage_bytes": self.garbage_bytes,
            "bad_crc": self.bad_crc,
            "oversize": self.oversize,
            "malformed": self.malformed,
            "truncated": self.truncated,
        }
