"""jsoncodec.py: the shared decoder accepts and refuses what ``json.loads`` does, minus NaN and Infinity."""

from __future__ import annotations

import json

import pytest

from worker import jsoncodec


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":[1,2.5,"x"],"b":null}',
        '{"a":1}',
        '"\u00e9\u4e2d"'.encode("utf-16"),  # json.loads detects UTF-16/32 from bytes
        '"\u00e9"'.encode("utf-32-le"),
        b'\xef\xbb\xbf{"bom":true}',  # UTF-8 BOM in bytes: accepted, as json.loads does
    ],
)
def test_loads_accepts_what_json_loads_accepts(data: str | bytes) -> None:
    assert jsoncodec.loads(data) == json.loads(data)


@pytest.mark.parametrize("data", [b"NaN", b"[Infinity]", "-Infinity", '{"x": NaN}'])
def test_loads_still_refuses_non_finite_constants(data: str | bytes) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        jsoncodec.loads(data)


@pytest.mark.parametrize("data", ["\ufeff{}", b"{", b'"\xc3"', b"", "[1,]"])
def test_loads_refuses_malformed_input_like_json_loads(data: str | bytes) -> None:
    with pytest.raises(ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        jsoncodec.loads(data)
    with pytest.raises(ValueError):
        json.loads(data)


def test_loads_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        jsoncodec.loads(12)  # type: ignore[arg-type]


def test_dumps_is_compact_utf8_and_refuses_non_finite_numbers() -> None:
    assert jsoncodec.dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'
    assert jsoncodec.dumps_bytes({"é": 1}) == '{"é":1}'.encode()
    with pytest.raises(ValueError):
        jsoncodec.dumps(float("nan"))


# --- loads_input: JSON a client sent ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"[" * 33 + b"]" * 33, "nested deeper than 32"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper than 32"),
        (b"[" * 200_000, "nested deeper than 32"),  # past CPython's recursion limit: refused before parsing
        (b'{"a":1,"a":2}', "duplicate key 'a'"),
        (b'{"x":{"b":1,"b":1}}', "duplicate key 'b'"),
        (b"9007199254740992", "outside"),
        (b"[-9007199254740992]", "outside"),
        (b"1" * 5000, "outside"),  # not Python's own int-digits ValueError message: ours first
        (b"1e999", "too large"),
        (b"[-1e400]", "too large"),
        (b"NaN", "not valid JSON"),
        (b'{"x":Infinity}', "not valid JSON"),
        (b'"\\ud800"', "lone surrogate"),
        (b'{"\\udfff":1}', "lone surrogate"),
        (b'["ok", ["\\ud83d"]]', "lone surrogate"),
        (b'"\xff"', "utf-8"),
        (b'"\xed\xa0\x80"', "utf-8"),  # a surrogate encoded in UTF-8 (CESU): not UTF-8
        ('"é"'.encode("utf-16"), "utf-8"),
        (b'\xef\xbb\xbf{}', "byte order mark"),
    ],
    ids=lambda v: v[:24].decode("latin-1") if isinstance(v, bytes) else str(v)[:24],
)
def test_loads_input_refuses_what_a_runtime_or_store_would_read_otherwise(data: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        jsoncodec.loads_input(data)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 32 + b"]" * 32,
        b'{"k":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',  # brackets inside strings do not nest
        b'{"k\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[":"\\\\"}',
        b"9007199254740991",
        b"-9007199254740991",
        b"12345678901234567890.5",  # a float: a double in every runtime
        b"1.7976931348623157e308",
        b'"12345678901234567890"',
        b'"\\ud83d\\ude00"',  # an escaped surrogate pair is one character
        '{"é":"☃"}'.encode(),
        b'{"a":1,"A":1}',
    ],
)
def test_loads_input_accepts_ordinary_json(data: bytes) -> None:
    assert jsoncodec.loads_input(data) == json.loads(data)
