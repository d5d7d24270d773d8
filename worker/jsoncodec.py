"""The one place documents and API payloads are encoded and decoded."""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    return _encoder.encode(value)


def dumps_bytes(value: Any) -> bytes:
    return _encoder.encode(value).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: built once: ``json.loads(..., parse_constant=...)`` would construct a new decoder on every call
_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def loads(data: str | bytes) -> Any:
    """Strict decode: NaN/Infinity are refused so every stored document is valid JSON.

    Same input rules as ``json.loads`` (bytes in UTF-8/16/32, a leading BOM is an error).
    """
    if isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    elif not isinstance(data, str):
        raise TypeError(f"JSON input must be str or bytes, not {type(data).__name__}")
    elif data.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    return _decoder.decode(data)
