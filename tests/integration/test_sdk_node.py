"""The Web SDK in Node against the real stack: a gateway process (``worker.asgi``), a real Centrifugo,
SeaweedFS and the auth core stand-in. The assertions are in sdk/web/test/integration/*.test.mjs
(``node --test``); this test starts the services, builds the SDK's bundle and runs them with
``TELESTACK_GATEWAY_URL``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT, free_port
from tests.support.process import answers, start_process, stop_process

pytestmark = pytest.mark.stack

SDK = ROOT / "sdk" / "web"


@pytest.fixture
def gateway_url(tmp_path: Path, standin: Any, centrifugo: Any, seaweedfs: Any) -> Iterator[str]:
    """A gateway process wired to the ``standin``, ``centrifugo`` and ``seaweedfs`` fixtures."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELESTACK_")}
    env.update({
        "TELESTACK_HOST": "127.0.0.1",
        "TELESTACK_PORT": str(port),
        "TELESTACK_ADMIN_KEY": "sdk-test-admin-key-0123456789",
        "TELESTACK_DB_PATH": str(tmp_path / "gateway.sqlite3"),
        "TELESTACK_AUTH_URL": standin.url,
        "TELESTACK_AUTH_API_KEY": standin.api_key,
        # short-lived access tokens: the SDK must renew them mid-test without the app noticing
        "TELESTACK_AUTH_ACCESS_TOKEN_VALIDITY": "4",
        "TELESTACK_CENTRIFUGO_API_URL": centrifugo.api_url,
        "TELESTACK_CENTRIFUGO_API_KEY": centrifugo.api_key,
        "TELESTACK_CENTRIFUGO_TOKEN_SECRET": centrifugo.token_secret,
        "TELESTACK_CENTRIFUGO_WS_URL": centrifugo.ws_url,
        "TELESTACK_S3_ENDPOINT": seaweedfs.endpoint,
        "TELESTACK_S3_BUCKET": seaweedfs.bucket,
        "TELESTACK_S3_REGION": "us-east-1",
        "TELESTACK_S3_ACCESS_KEY_ID": seaweedfs.access_key,
        "TELESTACK_S3_SECRET_ACCESS_KEY": seaweedfs.secret_key,
    })
    url = f"http://127.0.0.1:{port}"
    # any answer on /v1/health means it serves (503 while a dependency is down is still an answer)
    proc = start_process([sys.executable, "-m", "worker.asgi"], log=tmp_path / "gateway.log",
                         ready=lambda: answers(f"{url}/v1/health", status=None), what="gateway",
                         env=env, cwd=ROOT)
    try:
        yield url
    finally:
        stop_process(proc)


def test_sdk_against_the_stack(gateway_url: str) -> None:
    if not (SDK / "node_modules").is_dir():
        pytest.fail("sdk/web has no node_modules: run sdk/web/scripts/check.sh (make test does)")
    subprocess.run(["node", "scripts/build.mjs"], cwd=SDK, check=True, timeout=120)
    tests = sorted(str(p.relative_to(SDK)) for p in (SDK / "test" / "integration").glob("*.test.mjs"))
    assert tests, "no integration tests found"
    run = subprocess.run(
        ["node", "--test", "--test-timeout=60000", *tests],
        cwd=SDK,
        env={**os.environ, "TELESTACK_GATEWAY_URL": gateway_url},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-4000:]
    declared = sum((SDK / t).read_text(encoding="utf-8").count("\ntest(") for t in tests)
    assert f"# pass {declared}\n" in run.stdout, run.stdout[-4000:]
