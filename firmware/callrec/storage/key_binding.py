"""The hardware secret that wraps the device key, so that the SD card alone opens nothing.

The device key is on the SD card (`keystore`); stored unwrapped, the card read in another
computer opens every recording. Bound, the file holds the device key sealed under a secret
that is NOT on the card:

- "otp": the Raspberry Pi's OTP customer private key (256 bits in the SoC's one-time
  programmable memory; Pi 4, Pi 400, CM4, Pi 5, CM5), read through the VideoCore firmware
  mailbox (/dev/vcio). The card moved to another computer, or to another Pi, opens nothing.
- "file": a 32-byte secret in a file on another medium than the data directory. On the
  simulated board it stands for the board's OTP: created on first use (0600), kept in the
  simulator's own state folder, never under data_dir.
- "none": the device key is stored unwrapped (the behaviour before binding existed); the
  status says plainly that the SD card alone opens the recordings.
- "auto" (the default): the kind the existing device key file records, if it is wrapped;
  otherwise "otp" when this Pi's OTP key is provisioned, else "none" with the reason in the
  log and the status. Why not "otp" by default: a recorder whose OTP was never provisioned
  (provisioning is irreversible, a technician's decision) must still start and record; and
  a wrapped key is never silently downgraded: once bound, a missing secret stops the daemon.

What remains (ARCHITECTURE.md): whoever takes the whole recorder has card and secret; on the
running Pi, root and members of the video group can read the OTP key.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callrec.config import StorageConfig
from callrec.storage.keystore import (
    KEY_BYTES,
    HardwareSecret,
    HardwareSecretError,
    _mkdir_private,
    _write_new_private,
    bound_kind,
    check_private_fd,
)

__all__ = [
    "FileBinding",
    "OtpBinding",
    "OtpNotProvisioned",
    "OtpUnavailable",
    "binding_for",
    "read_otp_private_key",
]

log = logging.getLogger(__name__)

VCIO = Path("/dev/vcio")

PROVISION_HELP = (
    "a technician can provision it once with `sudo rpi-otp-private-key -w $(openssl rand -hex "
    "32)` (rpi-eeprom tools; IRREVERSIBLE: the OTP can be written only once), or choose "
    'storage.key_binding = "file" (a secret on another medium) or "none" (the SD card alone '
    "then opens the recordings)"
)


class OtpUnavailable(HardwareSecretError):
    """The Pi's OTP customer key cannot be read here (not a Pi 4/5, no access, firmware)."""


class OtpNotProvisioned(HardwareSecretError):
    """The OTP customer key reads as all zeros: it was never programmed."""


# --- the VideoCore mailbox ------------------------------------------------------------------
# Buffer layout from the Raspberry Pi firmware wiki, "Mailbox property interface"
# (https://github.com/raspberrypi/firmware/wiki/Mailbox-property-interface): u32 buffer size in
# bytes, u32 request code (0 = process request; the firmware answers 0x80000000 on success,
# 0x80000001 on a parse error), the tags, a 0 end tag. Each tag: u32 tag id, u32 value buffer
# size, u32 request/response code (bit 31 set in the response, bits 0-30 the response
# length), then the value buffer. Values are in the CPU's byte order.
# The tag and its value: Raspberry Pi documentation, "Industrial use of the Raspberry Pi",
# section on the device-specific private key (raspberrypi/documentation, documentation/
# asciidoc/computers/raspberry-pi/raspberry-pi-industrial.adoc): `vcmailbox 0x00030081 40 40
# 0 8 0 0 0 0 0 0 0 0`, i.e. tag 0x00030081 (get customer private key), a 40-byte value
# buffer, request (offset 0, 8 words) and room for the 8 key words; its example answer is 16
# words, 0x80000000 and tag code 0x80000028 (a 40-byte response). `rpi-otp-private-key` prints
# those 8 words in order, each as 8 hex digits. The request below is that command's buffer
# word for word. The ioctl: IOCTL_MBOX_PROPERTY = _IOWR(100, 0, char *) (vcmailbox's source;
# the kernel's vcio driver), whose size field is the size of a pointer.
# UNTESTED ON HARDWARE: the packing and parsing are tested with a fake ioctl
# (tests/unit/test_keystore.py); no Raspberry Pi was available to this code's author.
TAG_GET_CUSTOMER_PRIVATE_KEY = 0x00030081
_OTP_WORDS = KEY_BYTES // 4
_VALUE_BYTES = 8 + 4 * _OTP_WORDS  # offset, count, then the key words: 40
_MBOX = struct.Struct(f"=7I{_OTP_WORDS}II")  # size, code, tag, value size, tag code, offset,
# count, key words, end tag
_MBOX_REQUEST_OK = 0x80000000
_TAG_RESPONSE = 0x80000000
IOCTL_MBOX_PROPERTY = (3 << 30) | (struct.calcsize("P") << 16) | (100 << 8) | 0

IoctlFunc = Callable[[int, int, Any, bool], Any]


def pack_otp_request() -> bytearray:
    """The mailbox buffer asking for the 8 words of the customer private key from word 0."""
    return bytearray(_MBOX.pack(
        _MBOX.size, 0, TAG_GET_CUSTOMER_PRIVATE_KEY, _VALUE_BYTES, _VALUE_BYTES,
        0, _OTP_WORDS, *([0] * _OTP_WORDS), 0,
    ))


def parse_otp_response(buf: bytes | bytearray) -> bytes:
    """The 32-byte key from the firmware's answer (the bytes `rpi-otp-private-key` prints as
    hex), or OtpUnavailable if the firmware did not answer the tag."""
    if len(buf) != _MBOX.size:
        raise OtpUnavailable(f"mailbox answer of {len(buf)} bytes, {_MBOX.size} expected")
    _size, code, tag, _value_size, tag_code, offset, count, *rest = _MBOX.unpack(buf)
    words = rest[:_OTP_WORDS]
    if code != _MBOX_REQUEST_OK:
        raise OtpUnavailable(f"the VideoCore firmware refused the request (code {code:#010x})")
    if tag != TAG_GET_CUSTOMER_PRIVATE_KEY or not tag_code & _TAG_RESPONSE:
        raise OtpUnavailable(
            "the firmware does not know the customer private key tag (a Raspberry Pi 4, 400, "
            "CM4, 5 or CM5 with up-to-date firmware is needed)"
        )
    if (tag_code & ~_TAG_RESPONSE) < _VALUE_BYTES or offset != 0 or count != _OTP_WORDS:
        raise OtpUnavailable(
            f"unexpected answer to the private key request (length {tag_code & ~_TAG_RESPONSE},"
            f" offset {offset}, words {count})"
        )
    return struct.pack(f">{_OTP_WORDS}I", *words)


def read_otp_private_key(device: Path = VCIO, ioctl: IoctlFunc = fcntl.ioctl) -> bytes:
    """The Pi's 256-bit OTP customer private key through the firmware mailbox (no shell-out:
    this is what `rpi-otp-private-key` does with `vcmailbox`). May be all zeros (unprovisioned).
    Raises OtpUnavailable."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OtpUnavailable(f"no {device}: not a Raspberry Pi (or the device is hidden from "
                             "the service)") from None
    except PermissionError:
        raise OtpUnavailable(f"no permission to open {device}: the service user must be in "
                             "the video group and its unit must allow the device") from None
    except OSError as exc:
        raise OtpUnavailable(f"cannot open {device}: {exc.strerror}") from None
    buf = pack_otp_request()
    try:
        ioctl(fd, IOCTL_MBOX_PROPERTY, buf, True)  # the firmware's answer overwrites buf
    except OSError as exc:
        raise OtpUnavailable(f"mailbox request on {device} failed: {exc.strerror}") from None
    finally:
        os.close(fd)
    return parse_otp_response(buf)


class OtpBinding:
    """The device key wrapped by this Pi's OTP customer private key."""

    kind = "otp"

    def __init__(self, device: Path = VCIO, ioctl: IoctlFunc = fcntl.ioctl) -> None:
        self.device = device
        self._ioctl = ioctl
        self._secret: bytes | None = None

    def describe(self) -> str:
        return "this Raspberry Pi's OTP customer private key"

    def read(self, *, create: bool) -> bytes:
        # `create` does not apply: the OTP is programmed by a technician, never by callrec
        # (it is irreversible, and a key written by software could be written wrongly).
        if self._secret is None:
            secret = read_otp_private_key(self.device, self._ioctl)
            if secret == bytes(KEY_BYTES):
                raise OtpNotProvisioned(
                    "this Raspberry Pi's OTP customer private key is not provisioned (all "
                    f"zeros): {PROVISION_HELP}"
                )
            self._secret = secret
        return self._secret


class FileBinding:
    """The device key wrapped by a 32-byte secret in a file on another medium."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"the binding secret file {self.path}"

    def read(self, *, create: bool) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                raise HardwareSecretError(
                    f"the binding secret file {self.path} does not exist (is its medium "
                    "mounted?)"
                ) from None
            return self._create()
        except OSError as exc:
            raise HardwareSecretError(f"cannot open {self.path}: {exc.strerror}") from None
        try:
            check_private_fd(fd, self.path, "binding secret file", HardwareSecretError)
            secret = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(secret) != KEY_BYTES:
            raise HardwareSecretError(
                f"binding secret file {self.path} is damaged ({len(secret)} bytes, "
                f"{KEY_BYTES} expected)"
            )
        return secret

    def _create(self) -> bytes:
        secret = os.urandom(KEY_BYTES)
        _mkdir_private(self.path.parent)
        try:
            _write_new_private(self.path, secret)
        except FileExistsError:  # made meanwhile by another process: use that one
            return self.read(create=False)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise HardwareSecretError(
                    f"cannot create the binding secret file {self.path}: {exc.strerror}"
                ) from None
            raise
        log.warning("new binding secret created at %s: the device key is wrapped by it",
                    self.path)
        return secret


def binding_for(
    storage: StorageConfig, *, otp: OtpBinding | None = None
) -> tuple[HardwareSecret | None, str]:
    """The binding that `storage.key_binding` asks for, and, when there is none, why (for the
    status). `otp`: the OTP reader to use (tests pass one with a fake ioctl).

    Raises HardwareSecretError only when "auto" meets a key wrapped by a file secret whose
    path is not configured; every other failure surfaces when the key store reads the secret.
    """
    otp = otp or OtpBinding()
    mode = storage.key_binding
    if mode == "none":
        return None, 'storage.key_binding = "none"'
    if mode == "file":
        if not storage.key_binding_file:
            raise HardwareSecretError('storage.key_binding = "file" needs key_binding_file')
        return FileBinding(Path(storage.key_binding_file)), ""
    if mode == "otp":
        return otp, ""
    recorded = bound_kind(storage.device_key_path)
    if recorded == "otp":
        return otp, ""  # bound before: never fall back to "none", a missing OTP is an error
    if recorded is not None:
        raise HardwareSecretError(
            f"device key {storage.device_key_path} is wrapped by a {recorded} secret: set "
            'storage.key_binding = "file" and storage.key_binding_file to that secret'
        )
    # Not logged here (the tools open the keys once per recording read): the daemon logs the
    # store's unbound_warning once at start, and the status carries it.
    try:
        otp.read(create=False)
    except OtpNotProvisioned:
        return None, "auto: this Pi's OTP customer key is not provisioned; " + PROVISION_HELP
    except HardwareSecretError as exc:
        return None, f"auto: no Raspberry Pi OTP customer key: {exc}"
    return otp, ""
