"""health.py: how probe outcomes become the report, its cache, and its bounds (peers scripted, SQLite real).

The same report against real Centrifugo, SeaweedFS and a silent port: tests/integration/test_health.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.support.gateway import GatewayFactory, base_settings
from tests.support.scripted_http import HANG, ScriptedHttp
from worker import health
from worker.context import Gateway
from worker.outbound import HttpError, HttpResponse

ALL_CONFIGURED = {
    "CENTRIFUGO_API_URL": "http://cf.invalid", "CENTRIFUGO_API_KEY": "k",
    "S3_ENDPOINT": "http://s3.invalid", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "a",
    "S3_SECRET_ACCESS_KEY": "s",
    "AUTH_URL": "http://auth.invalid",
}


@pytest.fixture
def build(gateways: GatewayFactory) -> Callable[..., Awaitable[Gateway]]:
    async def make(http: ScriptedHttp, **settings: str) -> Gateway:
        return await gateways({**base_settings(), **settings}, http)

    return make


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in body["checks"].items()}


async def test_unconfigured_dependencies_are_disabled_not_down(build: Any) -> None:
    status, body = await (await build(ScriptedHttp(HttpError("never called")))).health.report()
    assert (status, body["status"]) == (200, "ok")
    assert statuses(body) == {"db": "ok", "realtime": "disabled", "storage": "disabled", "auth": "disabled"}


async def test_every_dependency_answering_is_ok(build: Any) -> None:
    gw = await build(ScriptedHttp({"result": {}}), **ALL_CONFIGURED)
    status, body = await gw.health.report()
    assert (status, body["status"]) == (200, "ok") and set(statuses(body).values()) == {"ok"}
    assert all(isinstance(c["latency_ms"], float) for c in body["checks"].values())


async def test_failed_outbox_rows_make_realtime_degraded(build: Any) -> None:
    gw = await build(ScriptedHttp({"result": {}}), CENTRIFUGO_API_URL="http://cf.invalid",
                     CENTRIFUGO_API_KEY="k")
    await gw.db.execute("INSERT INTO outbox (collection, doc_id, version, op, payload, created_at, attempts) "
                        "VALUES ('notes', 'n1', 1, 'created', '{}', 0, 2)")
    status, body = await gw.health.report()
    assert (status, body["status"]) == (200, "degraded")
    assert body["checks"]["realtime"] == {"status": "degraded",
                                          "error": "1 outbox events failed to publish and are pending"}


@pytest.mark.parametrize(("answer", "errors"), [
    (HttpResponse(403), {"storage": "storage refused the gateway's credentials (403)",
                         "auth": "auth core answered HTTP 403"}),
    (HttpResponse(404), {"storage": "bucket does not exist (404)", "auth": "auth core answered HTTP 404"}),
    (HttpError("refused"), {"storage": "unreachable: HttpError", "auth": "unreachable: HttpError",
                            "realtime": "centrifugo unreachable: HttpError"}),
])
async def test_a_refusing_dependency_is_down_with_its_reason(build: Any, answer: object,
                                                            errors: dict[str, str]) -> None:
    status, body = await (await build(ScriptedHttp(answer), **ALL_CONFIGURED)).health.report()
    assert (status, body["status"]) == (200, "degraded")  # only the database takes the whole report down
    for name, error in errors.items():
        assert body["checks"][name] == {"status": "down", "error": error}


async def test_a_silent_dependency_is_cut_off_at_the_probe_timeout(build: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "PROBE_TIMEOUT", 0.05)
    status, body = await (await build(ScriptedHttp(HANG), **ALL_CONFIGURED)).health.report()
    assert status == 200 and body["checks"]["db"]["status"] == "ok"
    for name in ("realtime", "storage", "auth"):
        assert body["checks"][name] == {"status": "down", "error": "no answer within 0.05s"}


async def test_an_unusable_database_is_503(build: Any) -> None:
    gw = await build(ScriptedHttp({"result": {}}))
    gw.db.close()  # type: ignore[attr-defined]
    status, body = await gw.health.report()
    assert (status, body["status"]) == (503, "down") and body["checks"]["db"]["status"] == "down"
    assert body["checks"]["db"]["error"] == "DatabaseError"  # the exception's type, never its text


async def test_the_report_is_cached_for_a_moment(build: Any) -> None:
    http = ScriptedHttp({"result": {}})
    gw = await build(http, **ALL_CONFIGURED)
    first = await gw.health.report()
    calls = len(http.requests)
    assert await gw.health.report() == first and len(http.requests) == calls  # no probe ran again
    gw.health.cached = None
    await gw.health.report()
    assert len(http.requests) == 2 * calls
