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
