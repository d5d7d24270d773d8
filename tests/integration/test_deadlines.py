"""A hung dependency never holds a gateway request past its documented deadline (docs/api.md "Deadlines").

Each dependency is a real process frozen with SIGSTOP: its port still accepts connections (the
kernel queues them) and nothing ever answers, the way a wedged server looks from outside. The
gateway is a real ``python -m worker.asgi`` process and each request is timed from this side.
Timings carry generous slack: they check that a deadline exists and holds, not how fast anything is.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.centrifugo import Centrifugo
from tests.support.gateway import base_settings, serve
from tests.support.process import Process, paused, stop_process
from tests.support.seaweedfs import SeaweedFS, private_seaweedfs
from tests.support.standin import Standin
from worker import centrifugo, health, supertokens

pytestmark = pytest.mark.stack

#: added to every deadline: a loaded 2-core machine, process start-up of the first request
SLACK = 5.0
#: GET /v1/health: every probe runs at once, each bounded (health.py's wait_for adds 0.5 s)
HEALTH_DEADLINE = health.PROBE_TIMEOUT + 0.5


def gateway_env(tmp: Path, **bindings: str) -> dict[str, str]:
    settings = {**base_settings(), "DB_PATH": str(tmp / "gateway.sqlite3"), **bindings}
    return {f"TELESTACK_{k}": v for k, v in settings.items()}


@pytest.fixture
def gateway_with(tmp_path: Path) -> Iterator[Any]:
    """``gateway_with(**bindings)`` -> (base URL, SQLite path) of a real gateway process."""
    started: list[Process] = []

    def start(**bindings: str) -> tuple[str, Path]:
        proc, url = serve(tmp_path, gateway_env(tmp_path, **bindings))
        started.append(proc)
        return url, tmp_path / "gateway.sqlite3"

    yield start
    for proc in started:
        stop_process(proc)


def timed(method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    # the client's own timeout is far past every deadline: the gateway must be the one that gives up
    r = httpx.request(method, url, timeout=60, trust_env=False, **kwargs)
    return r, time.monotonic() - started


def check(name: str, url: str) -> dict[str, Any]:
    r, elapsed = timed("GET", f"{url}/v1/health")
    assert elapsed < HEALTH_DEADLINE + SLACK, f"health took {elapsed:.1f}s"
    return r.json()["checks"][name]


def wait_for(predicate: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_hung_auth_core_is_a_503_within_the_call_deadline(gateway_with: Any, standin: Standin) -> None:
    url, _ = gateway_with(AUTH_URL=standin.url, AUTH_API_KEY=standin.api_key)
    creds = {"email": "deadline@example.com", "password": "correct horse battery"}
    r, _ = timed("POST", f"{url}/v1/auth/signup", json=creds)
    assert r.status_code == 201, r.text
    token = r.json()["access_token"]  # never verified yet: the gateway has no JWKS cached

    with paused(standin.process):
        r, elapsed = timed("POST", f"{url}/v1/auth/signin", json=creds)
        assert (r.status_code, r.json()["error"]["code"]) == (503, "auth_unavailable"), r.text
        assert elapsed < supertokens.CALL_TIMEOUT_SECONDS + SLACK, f"signin took {elapsed:.1f}s"

        # verifying a token needs the core's keys: the JWKS fetch has the same deadline
        r, elapsed = timed("GET", f"{url}/v1/auth/me", headers={"authorization": f"Bearer {token}"})
        assert (r.status_code, r.json()["error"]["code"]) == (503, "auth_unavailable"), r.text
        assert elapsed < supertokens.CALL_TIMEOUT_SECONDS + SLACK, f"me took {elapsed:.1f}s"

        assert check("auth", url)["status"] == "down"

    # recovery: the same requests work once the core answers again
    assert wait_for(lambda: timed("POST", f"{url}/v1/auth/signin", json=creds)[0].status_code == 200)
    assert wait_for(lambda: timed("GET", f"{url}/v1/auth/me",
                                  headers={"authorization": f"Bearer {token}"})[0].status_code == 200)


def test_a_hung_centrifugo_never_holds_a_write_and_the_outbox_delivers_after(
    gateway_with: Any, centrifugo: Centrifugo
) -> None:
    url, db_path = gateway_with(CENTRIFUGO_API_URL=centrifugo.base_url, CENTRIFUGO_API_KEY=centrifugo.api_key,
                                CENTRIFUGO_TOKEN_SECRET=centrifugo.token_secret)
    admin = {"authorization": f"Bearer {base_settings()['ADMIN_KEY']}"}
    doc = {"id": "held-1", "owner_id": "u-deadline", "data": {"title": "written while hung"}}

    def outbox_row() -> tuple[Any, int]:
        with sqlite3.connect(db_path) as db:
            return db.execute("SELECT sent_at, attempts FROM outbox WHERE doc_id = ?", ("held-1",)).fetchone()

    with paused(centrifugo.process):
        r, _ = timed("POST", f"{url}/v1/collections/notes/documents", json=doc, headers=admin)
        assert r.status_code == 201, r.text
        # answered before the publish gave up: the event is committed and still pending ...
        sent_at, _ = outbox_row()
        assert sent_at is None
        # ... and the publish after the response is itself bounded: its attempt is recorded as failed
        assert wait_for(lambda: outbox_row()[1] >= 1, centrifugo_deadline())
        assert outbox_row()[0] is None
        assert check("realtime", url)["status"] == "down"

    # the sweep retries the pending event once Centrifugo answers
    assert wait_for(lambda: outbox_row()[0] is not None), outbox_row()
    assert wait_for(lambda: check("realtime", url)["status"] == "ok")


def centrifugo_deadline() -> float:
    return centrifugo.API_TIMEOUT_SECONDS + SLACK


@pytest.fixture(scope="module")
def own_seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """Paused by the test, so not the session's shared one."""
    with private_seaweedfs(tmp_path_factory, "deadlines") as server:
        yield server


def test_a_hung_storage_costs_only_the_health_probe(gateway_with: Any, own_seaweedfs: SeaweedFS) -> None:
    sw = own_seaweedfs
    url, _ = gateway_with(S3_ENDPOINT=sw.endpoint, S3_BUCKET=sw.bucket, S3_ACCESS_KEY_ID=sw.access_key,
                          S3_SECRET_ACCESS_KEY=sw.secret_key)
    admin = {"authorization": f"Bearer {base_settings()['ADMIN_KEY']}"}
    assert check("storage", url)["status"] == "ok"
    with paused(sw.process):
        # presigning is local: no request waits for the object store
        r, _ = timed("POST", f"{url}/v1/storage/upload-url", headers=admin,
                           json={"key": "users/u-1/a.txt", "size": 3})
        assert r.status_code == 200, r.text
        time.sleep(health.CACHE_SECONDS)  # past the cached report
        assert check("storage", url)["status"] == "down"
    assert wait_for(lambda: check("storage", url)["status"] == "ok")
