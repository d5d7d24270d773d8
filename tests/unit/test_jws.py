"""jws.py: a compact JWS is split and decoded strictly (anything else is MalformedToken); HS256 JWTs are
encoded byte for byte as PyJWT encodes them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math

import jwt
import pytest

from worker.jws import MalformedToken, encode_hs256, parse


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_pyjwt_token_splits_into_header_claims_and_signed_bytes() -> None:
    token = jwt.encode({"sub": "u", "n": 1}, "k" * 32, algorithm="HS256", headers={"kid": "d-1"})
    jws = parse(token)
    assert jws.header == {"alg": "HS256", "typ": "JWT", "kid": "d-1"}
    assert jws.claims == {"sub": "u", "n": 1}
    assert jws.signing_input == token.rsplit(".", 1)[0].encode()
    assert _b64(jws.signature) == token.rsplit(".", 1)[1]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        f"{_b64(b'{}')}.{_b64(b'{}')}.a+b/",  # base64, not base64url
        f"{_b64(b'{}')}=.{_b64(b'{}')}.",  # padding
        f"{_b64(b'[1]')}.{_b64(b'{}')}.",  # header not an object
        f"{_b64(b'{}')}.{_b64(b'not json')}.",
        f"{_b64(b'{}')}.{_b64(json.dumps({'x': 1}).encode())}.a",  # a 1-character segment decodes to nothing
        _b64(b"{}") + "." + _b64(bytes([0xFF, 0xFE])) + ".",
        "é.é.é",
    ],
)
def test_anything_else_is_malformed(token: str) -> None:
    with pytest.raises(MalformedToken):
        parse(token)


SECRET = "realtime-secret-0123456789abcdef0123"

#: the claims the gateway signs (worker/realtime_tokens.py), with the subjects and channels it uses
SIGNED_CLAIMS = [
    {"sub": "alice", "iat": 1_700_000_000, "exp": 1_700_000_600},
    {"sub": "$admin", "channel": "notes:*", "iat": 1_700_000_000, "exp": 1_700_000_060},
    {"sub": "user-1", "channel": "notes:abc#user-1", "iat": 0, "exp": 2**40},
    {"sub": "", "channel": "posts:*", "iat": 1, "exp": 2},
    {"sub": "zoë 用户", "channel": "notes:*#zoë 用户", "iat": 1_700_000_000, "exp": 1_700_000_600},
]


@pytest.mark.parametrize("claims", SIGNED_CLAIMS)
@pytest.mark.parametrize("secret", [SECRET, "k", "clé-secrète-é"])
def test_hs256_tokens_are_byte_identical_to_pyjwts(claims: dict[str, object], secret: str) -> None:
    assert encode_hs256(claims, secret) == jwt.encode(claims, secret, algorithm="HS256")


def test_an_hs256_token_is_a_compact_jws_signed_over_its_first_two_segments() -> None:
    claims = SIGNED_CLAIMS[1]
    jws = parse(encode_hs256(claims, SECRET))
    assert jws.header == {"alg": "HS256", "typ": "JWT"}
    assert jws.claims == claims
    assert jws.signature == hmac.new(SECRET.encode(), jws.signing_input, hashlib.sha256).digest()


def test_pyjwt_accepts_our_tokens_with_the_secret_and_only_with_it() -> None:
    token = encode_hs256({"sub": "alice", "channel": "notes:*#alice", "exp": 4_000_000_000}, SECRET)
    assert jwt.decode(token, SECRET, algorithms=["HS256"]) == {
        "sub": "alice", "channel": "notes:*#alice", "exp": 4_000_000_000}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-0123456789abcdef01234", algorithms=["HS256"])
    header, payload, signature = token.split(".")
    forged = encode_hs256({"sub": "mallory", "exp": 4_000_000_000}, SECRET).split(".")[1]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{header}.{forged}.{signature}", SECRET, algorithms=["HS256"])


def test_no_hs256_token_without_a_secret_or_with_claims_that_are_not_json() -> None:
    with pytest.raises(ValueError, match="non-empty secret"):
        encode_hs256({"sub": "alice"}, "")
    with pytest.raises(ValueError, match="JSON"):
        encode_hs256({"sub": "alice", "exp": math.nan}, SECRET)
