"""The local environment's ``allowed_origins`` enforced by the real servers a browser talks to.

Centrifugo runs the ``config.json`` the stack renders (:func:`infra.services.centrifugo`) and the
gateway runs as a uvicorn process with the binding the stack sets (``TELESTACK_CORS_ALLOWED_ORIGINS``
from :func:`infra.gateway_bindings.gateway_bindings`). An allowed origin gets the WebSocket upgrade
(``101``) and the preflight answer; any other origin gets ``403`` from Centrifugo and no CORS header
from the gateway. The bucket's side is tests/integration/test_local_bucket_rules.py.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
from collections.abc import Iterator

import httpx
import pytest

from infra import services
from infra.endpoints import local_endpoints
from infra.gateway_bindings import gateway_bindings
from infra.settings import StackSettings
from tests.support.centrifugo import Centrifugo
from tests.support.gateway import base_settings, serve
from tests.support.paths import free_port
from tests.support.process import stop_process
from tests.support.stack_settings import stack_settings

pytestmark = pytest.mark.stack

REFUSED = ("https://evil.example.net", "http://localhost:3001", "null")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> StackSettings:
    s = stack_settings({}, state=tmp_path_factory.mktemp("state"))
    realtime = dataclasses.replace(s.environment.realtime, port=free_port())
    return dataclasses.replace(s, environment=dataclasses.replace(s.environment, realtime=realtime))


@pytest.fixture(scope="module")
def centrifugo(local: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centrifugo]:
    workdir = tmp_path_factory.mktemp("centrifugo")
    config = workdir / "config.json"
    config.write_text(services.centrifugo(local).files["config.json"].replace("${host}", "127.0.0.1"))
    server = Centrifugo(port=local.environment.realtime.port, api_key=secrets.token_urlsafe(24),
                        token_secret=secrets.token_urlsafe(32), workdir=workdir, config_file=config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway_url(local: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("gateway")
    plain = gateway_bindings(local.environment, local.secrets, local_endpoints(local.environment)).plain
    env = {"TELESTACK_DB_PATH": str(workdir / "g.sqlite3"),
           "TELESTACK_CORS_ALLOWED_ORIGINS": plain["CORS_ALLOWED_ORIGINS"],
           **{f"TELESTACK_{k}": v for k, v in base_settings().items()}}
    process, url = serve(workdir, env)
    try:
        yield url
    finally:
        stop_process(process)


def _upgrade_status(port: int, origin: str) -> int:
    """The status of a browser's WebSocket handshake (RFC 6455) sent with ``origin``."""
    request = (f"GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_centrifugo_upgrades_only_the_allowed_origins(local: StackSettings, centrifugo: Centrifugo) -> None:
    assert local.environment.allowed_origins
    for origin in local.environment.allowed_origins:
        assert _upgrade_status(centrifugo.port, origin) == 101, origin
    for origin in REFUSED:
        assert _upgrade_status(centrifugo.port, origin) == 403, origin


def test_the_gateway_answers_the_allowed_origins_preflight(local: StackSettings, gateway_url: str) -> None:
    url = f"{gateway_url}/v1/collections/notes/query"
    for origin in local.environment.allowed_origins:
        r = httpx.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "authorization,content-type"},
                          trust_env=False, timeout=10)
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == origin, r.headers
        assert r.headers["access-control-allow-methods"] == "POST"
        refused_body = httpx.post(url, json={}, headers={"Origin": origin}, trust_env=False, timeout=10)
        assert refused_body.status_code == 401  # no token: the error still names the origin
        assert refused_body.headers["access-control-allow-origin"] == origin
    for origin in REFUSED:
        r = httpx.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                          trust_env=False, timeout=10)
        assert r.status_code == 405 and r.headers["allow"] == "POST", origin
        assert not [h for h in r.headers if h.startswith("access-control-")], (origin, r.headers)


def test_every_cors_header_reaches_the_client_over_http(local: StackSettings, gateway_url: str) -> None:
    origin = local.environment.allowed_origins[0]
    r = httpx.get(f"{gateway_url}/v1/health", headers={"Origin": origin}, trust_env=False, timeout=10)
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"etag", "location", "x-telestack-bookmark", "x-request-id"}
    assert "Origin" in r.headers["vary"]


def test_refused_origins_are_not_listed(local: StackSettings) -> None:
    assert not set(REFUSED) & set(local.environment.allowed_origins)
