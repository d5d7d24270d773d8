"""GET /v1/health against real dependencies: ok, down, wrong credentials, a dependency that never answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest

from tests.support.centrifugo import Centrifugo
from tests.support.gateway import Client, GatewayFactory, base_settings
from tests.support.process import silent_url
from tests.support.seaweedfs import SeaweedFS
from worker import jsoncodec
from worker.adapters.httpx_client import HttpxClient

pytestmark = pytest.mark.stack


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A loopback port that accepts TCP connections and never answers: the slow dependency."""
    with silent_url() as url:
        yield url


def env_for(cf: Centrifugo, sw: SeaweedFS, **over: str) -> dict[str, str]:
    return {
        **base_settings(),
        "CENTRIFUGO_API_URL": cf.base_url, "CENTRIFUGO_API_KEY": cf.api_key,
        "CENTRIFUGO_TOKEN_SECRET": cf.token_secret,
        "S3_ENDPOINT": sw.endpoint, "S3_BUCKET": sw.bucket, "S3_ACCESS_KEY_ID": sw.access_key,
        "S3_SECRET_ACCESS_KEY": sw.secret_key,
        **over,
    }


@pytest.fixture
def build(gateways: GatewayFactory) -> Callable[[dict[str, str]], Awaitable[Client]]:
    async def make(env: dict[str, str]) -> Client:
        return Client(await gateways(env, HttpxClient()))

    return make


async def health(client: Client) -> tuple[int, dict]:
    reply = await client.request("GET", "/v1/health", user=None)
    return reply.status, reply.json


async def test_all_dependencies_ok(build, centrifugo: Centrifugo, seaweedfs: SeaweedFS) -> None:
    status, body = await health(await build(env_for(centrifugo, seaweedfs)))
    assert status == 200 and body["status"] == "ok", body
    checks = body["checks"]
    assert {k: v["status"] for k, v in checks.items()} == {
        "db": "ok", "realtime": "ok", "storage": "ok", "auth": "disabled"}


async def test_down_and_refused_dependencies_degrade(build, centrifugo: Centrifugo,
                                                    seaweedfs: SeaweedFS) -> None:
    client = await build(env_for(centrifugo, seaweedfs, CENTRIFUGO_API_KEY="wrong-key",
                                 S3_SECRET_ACCESS_KEY="wrong-secret-000000000000000"))
    status, body = await health(client)
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["realtime"]["status"] == "down" and "API key" in body["checks"]["realtime"]["error"]
    assert body["checks"]["storage"]["status"] == "down" and "403" in body["checks"]["storage"]["error"]
    assert "wrong" not in jsoncodec.dumps(body)  # no secret echoed
    centrifugo.stop()
    client.gateway.health.cached = None  # probe again now, not after the cache window
    status, body = await health(client)
    assert status == 200 and body["checks"]["realtime"]["error"].startswith("centrifugo unreachable")


async def test_a_silent_dependency_is_reported_not_waited_for(build, blackhole: str, centrifugo: Centrifugo,
                                                              seaweedfs: SeaweedFS) -> None:
    client = await build(env_for(centrifugo, seaweedfs, CENTRIFUGO_API_URL=blackhole, S3_ENDPOINT=blackhole,
                                 AUTH_URL=blackhole))
    status, body = await health(client)
    assert status == 200 and body["status"] == "degraded"
    for name in ("realtime", "storage", "auth"):
        assert body["checks"][name]["status"] == "down", body
    assert body["checks"]["db"]["status"] == "ok"


async def test_database_down_is_503(build, centrifugo: Centrifugo, seaweedfs: SeaweedFS) -> None:
    client = await build(env_for(centrifugo, seaweedfs))
    client.gateway.db.close()  # type: ignore[attr-defined]
    status, body = await health(client)
    assert status == 503 and body["status"] == "down" and body["checks"]["db"]["status"] == "down"
