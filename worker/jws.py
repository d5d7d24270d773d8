"""The compact JWS serialization (RFC 7515 section 7.1): decoding any token, encoding HS256 JWTs.

Decoding is strict: exactly three base64url segments without padding or stray characters, and
a header and payload that are JSON objects; nothing is verified here. What a token must say, and
whose signature it must carry, is :mod:`worker.auth`'s business.

Encoding signs with the standard library's HMAC-SHA256 (Centrifugo's tokens): no JWT package has to
travel in the Worker bundle. The bytes are PyJWT 2.x's for the same claims (header keys sorted,
compact separators, non-ASCII escaped), so a token does not change with the library that signed it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")

#: JSON as PyJWT writes it (compact, ASCII-escaped); NaN/Infinity are not JSON, so refused
_CLAIMS_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: the JOSE header of every token :func:`encode_hs256` signs, keys sorted
_HS256_HEADER = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode({"alg": "HS256", "typ": "JWT"})


class MalformedToken(ValueError):
    """Not a compact JWS with JSON-object header and payload."""


@dataclass(frozen=True, slots=True)
class CompactJws:
    header: dict[str, Any]
    claims: dict[str, Any]
    #: ``BASE64URL(header) "." BASE64URL(payload)``: the bytes the signature covers
    signing_input: bytes
    signature: bytes


def parse(token: str) -> CompactJws:
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts):
        raise MalformedToken("not three base64url segments")
    header_b64, payload_b64, signature_b64 = parts
    return CompactJws(
        header=_json_object(header_b64),
        claims=_json_object(payload_b64),
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=_decode(signature_b64),
    )


def encode_hs256(claims: dict[str, Any], secret: str) -> str:
    """``claims`` as a compact JWT signed with HMAC-SHA256 keyed by ``secret`` (UTF-8)."""
    if not secret:  # an empty HMAC key signs tokens anyone can forge
        raise ValueError("an HS256 token needs a non-empty secret")
    signing_input = f"{_encode(_HS256_HEADER.encode())}.{_encode(_CLAIMS_JSON.encode(claims).encode())}"
    signature = hmac.digest(secret.encode(), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{_encode(signature)}"


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(segment: str) -> bytes:
    if len(segment) % 4 == 1:  # no base64 text has this length
        raise MalformedToken("truncated base64url segment")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:  # binascii.Error
        raise MalformedToken("invalid base64url segment") from None


def _json_object(segment: str) -> dict[str, Any]:
    raw = _decode(segment)
    try:
        value = jsoncodec.loads_input(raw)  # a client's text: nesting bounded before parsing
    except ValueError:  # also UnicodeDecodeError
        raise MalformedToken("a segment is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken("a segment is not a JSON object")
    return value
