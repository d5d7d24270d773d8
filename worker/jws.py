"""A compact JWS (RFC 7515 section 7.1) split into its parts and decoded; nothing is verified here.

Decoding is strict: exactly three base64url segments without padding or stray characters, and
a header and payload that are JSON objects. What a token must say, and whose signature it must
carry, is :mod:`worker.auth`'s business.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


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
        value = jsoncodec.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        raise MalformedToken("a segment is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken("a segment is not a JSON object")
    return value
