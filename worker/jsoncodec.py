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


def loads(data: str | bytes) -> Any:
    """Strict decode: NaN/Infinity are refused so every stored document is valid JSON."""
    return json.loads(data, parse_constant=_reject_constant)
