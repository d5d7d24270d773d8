"""worker/cors.py through app.handle: preflights from the route table; allowed origins marked, others not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gateway import Client, GatewayFactory, asgi_call, base_settings, lifespan
from tests.support.paths import CONFIG
from worker import app, cors, jsoncodec
from worker.asgi import create_app
from worker.settings import from_mapping

APP = "http://localhost:3000"
OTHER_APP = "https://app.example.com"
EVIL = "https://evil.example.net"
QUERY = "/v1/collections/notes/query"
DOC = "/v1/collections/notes/documents/n1"


@pytest.fixture
async def cors_client(gateways: GatewayFactory) -> Client:
    return Client(await gateways({**base_settings(), "CORS_ALLOWED_ORIGINS": f"{APP}, {OTHER_APP}"}))


def _preflight(origin: str | None, method: str = "POST") -> dict[str, str]:
    headers = {"access-control-request-method": method,
               "access-control-request-headers": "authorization,content-type"}
    if origin is not None:
        headers["origin"] = origin
    return headers


def _cors_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


def test_the_binding_is_comma_separated() -> None:
    settings = from_mapping({**base_settings(), "CORS_ALLOWED_ORIGINS": f" {APP} ,{OTHER_APP},, "})
    assert settings.cors_allowed_origins == (APP, OTHER_APP)
    assert from_mapping(base_settings()).cors_allowed_origins == ()


async def test_a_preflight_from_an_allowed_origin_is_answered(cors_client: Client) -> None:
    r = await cors_client.request("OPTIONS", QUERY, user=None, headers=_preflight(APP))
    assert r.status == 204 and r.body == b""
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert allowed == {"authorization", "content-type", "if-match", "x-telestack-bookmark", "x-request-id"}
    assert int(r.headers["access-control-max-age"]) > 0
    assert r.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in r.headers  # bearer tokens, never cookies


async def test_preflight_methods_are_the_route_tables_for_that_path(cors_client: Client) -> None:
    r = await cors_client.request("OPTIONS", DOC, user=None, headers=_preflight(OTHER_APP, "PATCH"))
    assert r.status == 204 and r.headers["access-control-allow-origin"] == OTHER_APP
    expected = {route.method for route in app.ROUTES if route.regex.match(DOC)}
    assert expected == {"GET", "PUT", "PATCH", "DELETE"}
    assert set(r.headers["access-control-allow-methods"].split(", ")) == expected


async def test_a_preflight_for_a_method_the_route_lacks_does_not_list_it(cors_client: Client) -> None:
    """The browser refuses the request itself: the answer lists only what the path has."""
    r = await cors_client.request("OPTIONS", QUERY, user=None, headers=_preflight(APP, "DELETE"))
    assert r.status == 204
    assert "DELETE" not in r.headers["access-control-allow-methods"].split(", ")


async def test_a_preflight_for_an_unknown_route_is_a_404(cors_client: Client) -> None:
    r = await cors_client.request("OPTIONS", "/v1/nowhere", user=None, headers=_preflight(APP))
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    assert "access-control-allow-methods" not in r.headers


async def test_a_refused_origin_gets_no_cors_header_and_the_same_answer(cors_client: Client) -> None:
    refused = await cors_client.request("OPTIONS", QUERY, user=None, headers=_preflight(EVIL))
    without_origin = await cors_client.request("OPTIONS", QUERY, user=None, headers=_preflight(None))
    assert refused.status == without_origin.status == 405
    # each answer has its own request id (header and error body); everything else is the same
    assert refused.headers.pop("x-request-id") != without_origin.headers.pop("x-request-id")
    bodies = [refused.json, without_origin.json]
    assert bodies[0]["error"].pop("request_id") != bodies[1]["error"].pop("request_id")
    assert refused.headers == without_origin.headers and bodies[0] == bodies[1]
    assert refused.headers["allow"] == "POST" and not _cors_headers(refused.headers)
    # a near miss is no match: another scheme, port or a trailing slash is another origin
    for near in ("https://localhost:3000", "http://localhost:3001", f"{APP}/", "null"):
        r = await cors_client.request("OPTIONS", QUERY, user=None, headers=_preflight(near))
        assert r.status == 405 and not _cors_headers(r.headers), near
    write = await cors_client.request("POST", "/v1/collections/notes/documents",
                                      json={"data": {"title": "x"}}, headers={"origin": EVIL})
    assert write.status == 201 and not _cors_headers(write.headers)


async def test_options_that_is_not_a_preflight_keeps_the_405(cors_client: Client) -> None:
    r = await cors_client.request("OPTIONS", QUERY, user=None, headers={"origin": APP})
    assert r.status == 405 and r.headers["allow"] == "POST"
    assert r.headers["access-control-allow-origin"] == APP  # an actual response, marked as every one


async def test_actual_responses_and_errors_carry_the_allowed_origin(cors_client: Client) -> None:
    created = await cors_client.request("POST", "/v1/collections/notes/documents",
                                        json={"data": {"title": "x"}, "id": "n1"}, headers={"origin": APP})
    assert created.status == 201 and created.headers["access-control-allow-origin"] == APP
    exposed = {h.strip() for h in created.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "location", "x-telestack-bookmark"} <= exposed
    assert "origin" in created.headers["vary"].lower()
    errors = [("GET", DOC, None, 401), ("GET", "/v1/collections/notes/documents/zz", "alice", 404),
              ("DELETE", QUERY, "alice", 405)]
    for method, path, user, status in errors:
        r = await cors_client.request(method, path, user=user, headers={"origin": OTHER_APP})
        assert r.status == status and r.headers["access-control-allow-origin"] == OTHER_APP, (method, path)
        assert "access-control-allow-credentials" not in r.headers


async def test_without_origins_configured_nothing_changes(client: Client) -> None:
    r = await client.request("OPTIONS", QUERY, user=None, headers=_preflight(APP))
    assert r.status == 405 and not _cors_headers(r.headers) and "vary" not in r.headers
    got = await client.request("GET", DOC, headers={"origin": APP})
    assert got.status == 404 and not _cors_headers(got.headers) and "vary" not in got.headers


async def test_any_origin_echoes_the_callers_origin(gateways: GatewayFactory) -> None:
    c = Client(await gateways({**base_settings(), "CORS_ALLOWED_ORIGINS": cors.ANY_ORIGIN}))
    r = await c.request("OPTIONS", QUERY, user=None, headers=_preflight(EVIL))
    assert r.status == 204 and r.headers["access-control-allow-origin"] == EVIL


def test_vary_is_extended_not_replaced() -> None:
    from worker.http import Request, Response

    response = Response(headers={"vary": "Accept-Encoding"})
    cors.CorsPolicy([APP]).mark(Request("GET", "/v1/health", headers={"origin": APP}), response)
    assert response.headers["vary"] == "Accept-Encoding, Origin"
    cors.CorsPolicy([APP]).mark(Request("GET", "/v1/health", headers={"origin": APP}), response)
    assert response.headers["vary"] == "Accept-Encoding, Origin"


async def test_the_asgi_entry_answers_a_real_preflight(tmp_path: Path) -> None:
    """The CPython runtime: raw ASGI scope in (headers as bytes), the same CORS answer out."""
    env = {"TELESTACK_DB_PATH": str(tmp_path / "g.sqlite3"), "TELESTACK_ADMIN_KEY": "k" * 32,
           "TELESTACK_CONFIG_DIR": str(CONFIG), "TELESTACK_CORS_ALLOWED_ORIGINS": APP}
    asgi = create_app(env)
    async with lifespan(asgi):
        status, headers, _ = await asgi_call(asgi, "OPTIONS", QUERY, headers=_preflight(APP))
        assert status == 204 and headers["access-control-allow-origin"] == APP
        status, headers, body = await asgi_call(asgi, "GET", "/v1/health", headers={"origin": APP})
        assert headers["access-control-allow-origin"] == APP and jsoncodec.loads(body)
        status, headers, _ = await asgi_call(asgi, "OPTIONS", QUERY, headers=_preflight(EVIL))
        assert status == 405 and not _cors_headers(headers)
