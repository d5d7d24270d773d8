"""The one place documents and API payloads are encoded and decoded.

:func:`loads` reads JSON the gateway or its dependencies wrote; :func:`loads_input` reads JSON a
client sent, under the stricter rules both runtimes apply alike (docs/api.md: input limits).
"""

from __future__ import annotations

import json
import math
import re
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


# --- JSON a client sends ------------------------------------------------------------------------
#: deepest nesting of arrays and objects a client may send (Firestore allows 20 levels of maps)
MAX_DEPTH = 32
#: integers beyond IEEE-754's exact range (2**53 - 1, JavaScript's Number.MAX_SAFE_INTEGER) are
#: refused: SQLite's JSON functions, D1 and every JavaScript client would each read them differently
MAX_SAFE_INTEGER = 2**53 - 1
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
#: a \u escape of a surrogate; only then can a decoded string hold a lone one
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: an integer literal of 16 digits or more (outside strings): the only ones that may pass 2**53 - 1;
#: a regex over the text costs a fraction of a parse_int hook called for every integer
_LONG_INTEGER = re.compile(r"(?<![\d.eE+-])-?\d{16,}(?![\d.eE])")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {dup[:64]!r}")
    return value


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:24]} is too large")
    return value


_input_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, object_pairs_hook=_pairs, parse_float=_float
)


def loads_input(data: bytes | str) -> Any:
    """Decode JSON a client sent, refusing (ValueError) what one runtime or store would read otherwise.

    Beyond :func:`loads`: UTF-8 only (no BOM, no other encoding, no encoded surrogates), at most
    :data:`MAX_DEPTH` levels of nesting (checked before parsing, so no input reaches the parser's
    recursion limit), no duplicate object key, no integer outside +-:data:`MAX_SAFE_INTEGER`, no
    number that overflows to infinity, and no lone surrogate in a string (``"\\ud800"``).
    """
    text = data if isinstance(data, str) else bytes(data).decode("utf-8")  # strict: invalid UTF-8 raises
    if text.startswith("\ufeff"):
        raise ValueError("a byte order mark is not allowed")
    outside_strings = _STRING.sub("", text)
    depth = 0
    for bracket in _BRACKET.finditer(outside_strings):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    for literal in _LONG_INTEGER.finditer(outside_strings):
        digits = literal.group().lstrip("-")  # JSON has no leading zeros: 17 digits are past 2**53
        if len(digits) > 16 or int(digits) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {literal.group()[:24]} is outside +-(2**53 - 1)")
    value = _input_decoder.decode(text)
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise ValueError("a string holds a lone surrogate (not Unicode text)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
