"""AES-256-GCM and HKDF-SHA256 from the system's OpenSSL (libcrypto), the one Python's hashlib
and ssl already load.

Why not the `cryptography` package: its wheel carries its own statically linked OpenSSL, 6.9 MB
of resident memory in the daemon (bench/appliance.py; the daemon's budget is 60 MB on a Pi
Zero), and that copy of OpenSSL is only patched when the wheel is upgraded, whereas Debian's
libcrypto.so.3 gets the distribution's security updates with the rest of the system. The
cipher itself is OpenSSL's (EVP_aes_256_gcm); this module only passes buffers, with the
lengths checked here, and HKDF (RFC 5869) is two HMAC steps from the standard library.
`tests/unit/test_aead.py` checks both against NIST and RFC test vectors and, where the
`cryptography` package is installed (the test extra), against it on random inputs.

The interface is the subset of `cryptography`'s that callrec uses: AESGCM(key).encrypt(nonce,
data, aad) -> ciphertext | 16-byte tag; decrypt(...) raises InvalidTag.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import threading
from typing import Any

__all__ = ["AESGCM", "InvalidTag", "hkdf_sha256"]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_MAX_DATA = 1 << 30  # one call never handles more (EVP's lengths are C ints)

_EVP_CTRL_GCM_SET_IVLEN = 0x9
_EVP_CTRL_GCM_GET_TAG = 0x10
_EVP_CTRL_GCM_SET_TAG = 0x11


class InvalidTag(Exception):
    """The ciphertext, nonce, associated data or key do not match: nothing is returned."""


class _LibCrypto:
    """The few libcrypto functions needed, with their C signatures declared."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("crypto") or "libcrypto.so.3"
        lib = ctypes.CDLL(name)
        vp, ip, cp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_char_p
        i = ctypes.c_int
        self.ctx_new = lib.EVP_CIPHER_CTX_new
        self.ctx_new.restype, self.ctx_new.argtypes = vp, []
        self.ctx_free = lib.EVP_CIPHER_CTX_free
        self.ctx_free.restype, self.ctx_free.argtypes = None, [vp]
        self.cipher = lib.EVP_aes_256_gcm
        self.cipher.restype, self.cipher.argtypes = vp, []
        self.ctrl = lib.EVP_CIPHER_CTX_ctrl
        self.ctrl.restype, self.ctrl.argtypes = i, [vp, i, i, vp]
        ops: list[tuple[Any, Any, Any]] = []
        for op in ("Encrypt", "Decrypt"):
            init = getattr(lib, f"EVP_{op}Init_ex")
            init.restype, init.argtypes = i, [vp, vp, vp, cp, cp]
            update = getattr(lib, f"EVP_{op}Update")
            update.restype, update.argtypes = i, [vp, vp, ip, cp, i]
            final = getattr(lib, f"EVP_{op}Final_ex")
            final.restype, final.argtypes = i, [vp, vp, ip]
            ops.append((init, update, final))
        self.encrypt, self.decrypt = ops


_lib: _LibCrypto | None = None
_lib_lock = threading.Lock()


def _crypto() -> _LibCrypto:
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = _LibCrypto()
        return _lib


class AESGCM:
    """AES-256-GCM with a 96-bit nonce and a 128-bit tag."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._key = bytes(key)
        self._c = _crypto()

    def _run(
        self, encrypt: bool, nonce: bytes, data: bytes, aad: bytes | None, tag: bytes | None
    ) -> bytes:
        if len(nonce) != NONCE_BYTES:
            raise ValueError("the nonce must be 12 bytes")
        aad = aad or b""
        if len(data) > _MAX_DATA or len(aad) > _MAX_DATA:
            raise OverflowError("data too large for one AES-GCM call")
        c = self._c
        init, update, final = c.encrypt if encrypt else c.decrypt
        ctx = c.ctx_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        try:
            n = ctypes.c_int(0)
            ok = init(ctx, c.cipher(), None, None, None) == 1
            ok = ok and c.ctrl(ctx, _EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, None) == 1
            ok = ok and init(ctx, None, None, self._key, bytes(nonce)) == 1
            if aad:
                ok = ok and update(ctx, None, ctypes.byref(n), aad, len(aad)) == 1
            out = ctypes.create_string_buffer(len(data) + TAG_BYTES)
            written = 0
            if data:
                ok = ok and update(ctx, out, ctypes.byref(n), bytes(data), len(data)) == 1
                written = n.value
            if not ok:
                raise RuntimeError("libcrypto refused the AES-GCM parameters")
            if tag is not None:
                tag_buf = ctypes.create_string_buffer(bytes(tag), TAG_BYTES)
                if c.ctrl(ctx, _EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag_buf) != 1:
                    raise RuntimeError("libcrypto refused the tag")
            tail = ctypes.create_string_buffer(TAG_BYTES)  # GCM's final step writes no data
            if final(ctx, tail, ctypes.byref(n)) != 1:
                raise InvalidTag()  # decryption: the tag does not authenticate
            extra = tail.raw[: n.value]
            if tag is None:  # encryption: append the tag
                tag_out = ctypes.create_string_buffer(TAG_BYTES)
                if c.ctrl(ctx, _EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag_out) != 1:
                    raise RuntimeError("libcrypto did not give the tag")
                return out.raw[:written] + extra + tag_out.raw
            return out.raw[:written] + extra
        finally:
            c.ctx_free(ctx)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Ciphertext followed by the 16-byte tag."""
        return self._run(True, nonce, data, associated_data, None)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """The plaintext, or InvalidTag if anything was changed (or the key is wrong)."""
        if len(data) < TAG_BYTES:
            raise InvalidTag()
        return self._run(False, nonce, data[:-TAG_BYTES], associated_data, data[-TAG_BYTES:])


def hkdf_sha256(key: bytes, info: bytes, length: int = KEY_BYTES, salt: bytes = b"") -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with `salt` (none: 32 zero bytes), then expand."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF length out of range")
    prk = hmac.new(salt or bytes(32), key, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]
