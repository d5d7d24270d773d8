"""jws.py: a compact JWS is split and decoded strictly; anything else is MalformedToken."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from worker.jws import MalformedToken, parse


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
