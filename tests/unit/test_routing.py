"""routing.py: path templates, one segment per parameter, and 404 / 405 (with Allow)."""

from __future__ import annotations

import pytest

from worker.http import ApiError, Request, Response
from worker.routing import Route, Router


async def handler(ctx: object) -> Response:
    return Response()


ROUTER = Router([
    Route("GET", "/v1/collections/{collection}/documents/{id}", handler),
    Route("PATCH", "/v1/collections/{collection}/documents/{id}", handler),
    Route("POST", "/v1/batch", handler),
])


def test_parameters_are_one_segment_each() -> None:
    route, params = ROUTER.match(Request("GET", "/v1/collections/notes/documents/a-1"))
    assert route.method == "GET" and params == {"collection": "notes", "id": "a-1"}
    for path in ("/v1/collections/notes/documents/a/b", "/v1/collections//documents/a",
                 "/v1/collections/notes/documents/", "/v1/batch/", "/v1/batchx"):
        with pytest.raises(ApiError) as err:
            ROUTER.match(Request("GET", path))
        assert (err.value.status, err.value.code) == (404, "not_found"), path


def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones() -> None:
    with pytest.raises(ApiError) as err:
        ROUTER.match(Request("DELETE", "/v1/collections/notes/documents/a"))
    assert (err.value.status, err.value.code) == (405, "method_not_allowed")
    assert err.value.headers == {"allow": "GET, PATCH"}


def test_the_first_route_whose_method_matches_wins() -> None:
    route, _ = ROUTER.match(Request("PATCH", "/v1/collections/notes/documents/a"))
    assert route.method == "PATCH"
