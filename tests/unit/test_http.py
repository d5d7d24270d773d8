"""http.py: the one way request bodies are read and checked, and the error shape clients see."""

from __future__ import annotations

import pytest

from worker import jsoncodec
from worker.http import JSON, ApiError, Request, Response, check_object, read_json, read_object


def req(body: bytes, content_type: str | None = JSON) -> Request:
    return Request("POST", "/x", headers={"content-type": content_type} if content_type else {}, body=body)


def test_read_json_decodes_and_ignores_content_type_parameters() -> None:
    assert read_json(req(b'{"a": [1]}')) == {"a": [1]}
    assert read_json(req(b"[]", "Application/JSON; charset=utf-8")) == []


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/merge-patch+json"])
def test_read_json_refuses_other_content_types(content_type: str | None) -> None:
    with pytest.raises(ApiError) as err:
        read_json(req(b"{}", content_type))
    assert (err.value.status, err.value.code) == (415, "unsupported_media_type")
    assert err.value.message == "Content-Type must be application/json"


def test_read_json_accepts_the_content_types_it_is_given() -> None:
    patch = "application/merge-patch+json"
    assert read_json(req(b'{"a": null}', patch), content_types=(JSON, patch)) == {"a": None}
    with pytest.raises(ApiError) as err:
        read_json(req(b"{}", "text/plain"), content_types=(JSON, patch))
    assert err.value.message == f"Content-Type must be {JSON} or {patch}"


@pytest.mark.parametrize("body", [b"{not json", b"", b"NaN", b'"\xc3"', b"[1,]"])
def test_read_json_refuses_malformed_input_with_400(body: bytes) -> None:
    with pytest.raises(ApiError) as err:
        read_json(req(body))
    assert (err.value.status, err.value.code) == (400, "invalid_json")


def test_read_json_refuses_a_body_over_its_limit_before_decoding() -> None:
    with pytest.raises(ApiError) as err:
        read_json(req(b"[" + b"1," * 10 + b"1]"), max_bytes=10)
    assert (err.value.status, err.value.code) == (413, "payload_too_large")
    assert read_json(req(b"[1]"), max_bytes=3) == [1]


def test_check_object_is_the_one_rule_for_request_bodies() -> None:
    assert check_object({"a": 1}, {"a", "b"}, ("a",)) == {"a": 1}
    for body, code in (([], "invalid_request"), ({"c": 1}, "unknown_field"), ({"b": 1}, "missing_field")):
        with pytest.raises(ApiError) as err:
            check_object(body, {"a", "b"}, ("a",))
        assert (err.value.status, err.value.code) == (400, code)
    assert read_object(req(b'{"a": 2}'), {"a"}, required=("a",)) == {"a": 2}


def test_errors_and_json_responses_have_one_shape() -> None:
    r = ApiError(409, "already_exists", "taken", headers={"etag": '"3"'}).to_response()
    assert r.status == 409 and r.headers == {"content-type": JSON, "etag": '"3"'}
    assert jsoncodec.loads(r.body) == {"error": {"code": "already_exists", "message": "taken"}}
    ok = Response.json({"é": 1}, status=201)
    assert (ok.status, ok.body, ok.headers) == (201, '{"é":1}'.encode(), {"content-type": JSON})
    assert Request("GET", "/", headers={"if-match": '"1"'}).header("If-Match") == '"1"'
