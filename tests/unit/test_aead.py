"""AES-256-GCM and HKDF-SHA256 over the system's libcrypto: published vectors, tampering, and
agreement with the `cryptography` package on random inputs."""

from __future__ import annotations

import os

import pytest

from callrec.storage.aead import AESGCM, InvalidTag, hkdf_sha256

# The GCM specification's AES-256 test cases (McGrew and Viega), 13, 14 and 16.
GCM_CASES = [
    ("00" * 32, "00" * 12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
    ("00" * 32, "00" * 12, "00" * 16, "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"),
    ("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"),
]


@pytest.mark.parametrize(("key", "iv", "plain", "aad", "cipher", "tag"), GCM_CASES)
def test_gcm_specification_vectors(key: str, iv: str, plain: str, aad: str, cipher: str,
                                   tag: str) -> None:
    k, n, p, a = (bytes.fromhex(x) for x in (key, iv, plain, aad))
    sealed = AESGCM(k).encrypt(n, p, a or None)
    assert sealed.hex() == cipher + tag
    assert AESGCM(k).decrypt(n, sealed, a or None) == p


def test_any_change_is_refused() -> None:
    key, nonce, data, aad = os.urandom(32), os.urandom(12), os.urandom(100), b"rec-id"
    sealed = AESGCM(key).encrypt(nonce, data, aad)
    for bad in (
        lambda: AESGCM(key).decrypt(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), aad),
        lambda: AESGCM(key).decrypt(nonce, bytes([sealed[0] ^ 0x80]) + sealed[1:], aad),
        lambda: AESGCM(key).decrypt(nonce, sealed, b"other-id"),
        lambda: AESGCM(key).decrypt(os.urandom(12), sealed, aad),
        lambda: AESGCM(os.urandom(32)).decrypt(nonce, sealed, aad),
        lambda: AESGCM(key).decrypt(nonce, sealed[:10], aad),
    ):
        with pytest.raises(InvalidTag):
            bad()


def test_wrong_sizes_are_errors_not_crashes() -> None:
    with pytest.raises(ValueError):
        AESGCM(b"short")
    with pytest.raises(ValueError):
        AESGCM(bytes(32)).encrypt(b"123", b"data", None)


# RFC 5869, test cases 1 and 3 (SHA-256).
def test_hkdf_rfc5869_vectors() -> None:
    okm = hkdf_sha256(b"\x0b" * 22, bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42,
                      salt=bytes(range(13)))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")
    assert hkdf_sha256(b"\x0b" * 22, b"", 42).hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        "9d201395faa4b61a96c8")


def test_agrees_with_the_cryptography_package_on_random_inputs() -> None:
    ref = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead",
                              reason="the test extra installs cryptography as a reference")
    hkdf = pytest.importorskip("cryptography.hazmat.primitives.kdf.hkdf")
    hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
    for size in (0, 1, 15, 16, 17, 255, 16000, 16017):
        key, nonce = os.urandom(32), os.urandom(12)
        data, aad = os.urandom(size), os.urandom(size % 41)
        ours = AESGCM(key).encrypt(nonce, data, aad)
        assert ours == ref.AESGCM(key).encrypt(nonce, data, aad)
        assert ref.AESGCM(key).decrypt(nonce, ours, aad) == data
        info = os.urandom(size % 20)
        expected = hkdf.HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
        assert hkdf_sha256(key, info) == expected.derive(key)
