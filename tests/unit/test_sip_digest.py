"""Digest authentication, client side (callrec.sip.digest): the RFCs' examples, the choice
among challenges, and malformed challenges (DigestError, never anything else)."""

from __future__ import annotations

import hashlib
import random

import pytest

from callrec.sip.digest import (
    Credentials,
    DigestChallenge,
    DigestError,
    NonceCounter,
    authorization,
    choose,
    parse_challenges,
)
from support import digest_params

# -- the RFCs' examples ------------------------------------------------------------------

def test_rfc2617_example() -> None:
    # RFC 2617 3.5: Mufasa, "Circle Of Life".
    [c] = parse_challenges(['Digest realm="testrealm@host.com", qop="auth,auth-int", '
                            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                            'opaque="5ccc069c403ebaf9f0171e9517f40e41"'])
    assert c == DigestChallenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                                "MD5", ("auth", "auth-int"),
                                "5ccc069c403ebaf9f0171e9517f40e41")
    value = authorization(c, Credentials("Mufasa", "Circle Of Life"), "GET",
                          "/dir/index.html", cnonce="0a4f113b", nc=1)
    assert digest_params(value) == {
        "username": "Mufasa", "realm": "testrealm@host.com",
        "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "uri": "/dir/index.html",
        "qop": "auth", "nc": "00000001", "cnonce": "0a4f113b",
        "response": "6629fae49393a05397450978507c4ef1",
        "opaque": "5ccc069c403ebaf9f0171e9517f40e41", "algorithm": "MD5"}


RFC7616_CHALLENGES = [
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
]
MUFASA = Credentials("Mufasa", "Circle of Life")
CNONCE_7616 = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize("fields", [RFC7616_CHALLENGES, [", ".join(RFC7616_CHALLENGES)]],
                         ids=["two fields", "one field"])
def test_rfc7616_examples(fields: list[str]) -> None:
    # RFC 7616 3.9.1: the same challenge offered with SHA-256 and MD5.
    sha, md5 = parse_challenges(fields)
    assert (sha.algorithm, md5.algorithm) == ("SHA-256", "MD5")
    assert choose([md5, sha]) == [sha]  # the strongest, whatever the order
    for c, expected in ((sha, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
                        (md5, "8ca523f5e9506fed4657c9700eebdbec")):
        p = digest_params(authorization(c, MUFASA, "GET", "/dir/index.html", cnonce=CNONCE_7616))
        assert p["response"] == expected
        assert p["algorithm"] == c.algorithm and p["qop"] == "auth" and p["nc"] == "00000001"
        assert p["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


# -- the other forms, checked against an independent computation ---------------------------

def h(alg: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.new("md5" if alg.startswith("MD5") else "sha256", data).hexdigest()


@pytest.mark.parametrize("alg", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
@pytest.mark.parametrize("qop", ["auth", "auth-int"])
def test_algorithms_and_qops(alg: str, qop: str) -> None:
    [c] = parse_challenges([f'Digest realm="sip.example.net", nonce="n0", algorithm={alg}, '
                            f'qop="{qop}"'])
    body = b"v=0\r\n"
    creds = Credentials("alice", "s3cret")
    p = digest_params(authorization(c, creds, "INVITE", "sip:bob@example.net", cnonce="cn", nc=3,
                             body=body))
    ha1 = h(alg, "alice:sip.example.net:s3cret")
    if alg.endswith("-sess"):
        ha1 = h(alg, f"{ha1}:n0:cn")
    a2 = "INVITE:sip:bob@example.net" + (f":{h(alg, body)}" if qop == "auth-int" else "")
    assert p["response"] == h(alg, f"{ha1}:n0:00000003:cn:{qop}:{h(alg, a2)}")
    assert p["qop"] == qop and p["nc"] == "00000003" and "opaque" not in p


def test_no_qop_is_rfc2069() -> None:
    [c] = parse_challenges(['Digest realm="x", nonce="abc"'])
    assert c.qop == () and c.algorithm == "MD5"
    p = digest_params(authorization(c, Credentials("u", "p"), "BYE", "sip:a@b", cnonce="ignored"))
    ha1, ha2 = h("MD5", "u:x:p"), h("MD5", "BYE:sip:a@b")
    assert p["response"] == h("MD5", f"{ha1}:abc:{ha2}")
    assert "cnonce" not in p and "nc" not in p and "qop" not in p


def test_userhash_stale_quoting_and_case() -> None:
    [c] = parse_challenges(['digest REALM="a \\"b\\"", Nonce=xyz/9==, algorithm=sha-256, '
                            'QOP="AUTH", stale=TRUE, userhash=true, domain="sip:x"'])
    assert c.realm == 'a "b"' and c.nonce == "xyz/9==" and c.algorithm == "SHA-256"
    assert c.stale and c.userhash and c.qop == ("auth",)
    value = authorization(c, Credentials("bob", "pw"), "INVITE", "sip:x", cnonce="c")
    p = digest_params(value)
    assert 'realm="a \\"b\\""' in value
    assert p["username"] == h("SHA-256", 'bob:a "b"') and p["userhash"] == "true"


def test_choice_among_challenges() -> None:
    cs = parse_challenges([
        'Basic realm="x"',
        'Digest realm="one", nonce="1", algorithm=MD5, Negotiate abc==, '
        'Digest realm="one", nonce="2", algorithm=SHA-256-sess, qop=auth',
        'Digest realm="two", nonce="3", algorithm=AKAv1-MD5',  # skipped: unsupported
        'Digest realm="two", nonce="4", qop=auth, Digest realm="one", nonce="5", '
        'algorithm=SHA-256, qop=auth'])
    assert [c.nonce for c in cs] == ["1", "2", "4", "5"]
    assert [c.nonce for c in choose(cs)] == ["2", "4"]  # one per realm, first of the best
    assert [c.nonce for c in choose(cs, "two")] == ["4"]
    assert choose(cs, "three") == []


def test_nonce_counter() -> None:
    n = NonceCounter(limit=2)
    assert [n.next("a"), n.next("a"), n.next("b"), n.next("a")] == [1, 2, 1, 3]
    n.next("c")  # "b" is the oldest: forgotten
    assert n.next("b") == 1 and len(n.counts) == 2


def test_credentials_repr_hides_the_password() -> None:
    creds = Credentials("office", "hunter2-secret", realm="sip.example.net")
    assert "hunter2" not in repr(creds) and "office" in repr(creds)


# -- malformed ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "",
    'Digest nonce="n"',                          # no realm
    'Digest realm="r"',                          # no nonce
    'Digest realm="r", nonce=""',                # empty nonce
    'Digest realm="r", nonce="n", realm="s"',    # repeated parameter
    'Digest realm="r, nonce="n"',                # unterminated quote
    'Digest realm="r" nonce="n"',                # missing comma
    'realm="r", nonce="n"',                      # no scheme
    'Digest realm=, nonce="n"',                  # empty value
    'Digest realm=a"b, nonce="n"',               # quote in a bare value
    'Digest realm="r\\',                         # quoted-pair at the end
    'Digest realm="r", nonce="n", algorithm=SHA-512-256',  # nothing supported
    'Digest realm="r", nonce="n", qop="auth-conf"',
    'Digest realm="r", nonce="n", algorithm=MD5-sess',      # -sess without qop
    'Basic realm="r"',                           # no Digest at all
    "Digest,realm=\"r\",nonce=\"n\"\x00@",
    "(Digest) realm=r, nonce=n",
])
def test_malformed_challenges(value: str) -> None:
    with pytest.raises(DigestError):
        parse_challenges([value])


def test_bad_answer_inputs() -> None:
    [c] = parse_challenges(['Digest realm="r", nonce="n", qop=auth'])
    with pytest.raises(DigestError):
        authorization(c, Credentials("u", "p"), "INVITE", "sip:x", cnonce="")
    with pytest.raises(DigestError):
        authorization(c, Credentials("u", "p"), "INVITE", "sip:x", cnonce="c", nc=0)


def test_fuzz_only_digest_error() -> None:
    rng = random.Random(7616)
    seeds = [*RFC7616_CHALLENGES, 'Digest realm="x", nonce="y", qop="auth", stale=true']
    alphabet = 'Digest realm="nonce,=\\ \t;qop' + "".join(chr(c) for c in range(0x20, 0x7f))
    for n in range(3000):
        if n % 3 == 0:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
            text = raw.decode("utf-8", "surrogateescape")
        elif n % 3 == 1:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(120)))
        else:
            chars = list(rng.choice(seeds))
            for _ in range(rng.randrange(1, 6)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            text = "".join(chars)
        try:
            for c in parse_challenges([text]):
                authorization(c, MUFASA, "INVITE", "sip:x", cnonce="c", body=b"x")
        except DigestError:
            pass
