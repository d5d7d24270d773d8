"""Secret rotation on a real local stack: `rotate-secrets`, the overlap window, `rotate-secrets --finish`.

One bring-up (tests/support/local_stack.py ``running_stack``: a temp copy on free ports).
Before the rotation a user signs up, a realtime client connects and subscribes
with a token the gateway signed, the gateway presigns a download and the admin
key and the auth API key are used. Then ``python -m scripts.ops rotate-secrets``
(the runbook, through `pulumi up`) rotates every secret with a short window:

- during the window every old credential still works (the realtime client
  reconnects with its old token after Centrifugo's restart and receives the
  event of a write made through the restarted gateway) and every new one works;
- once the deadline has passed, the old admin key and the old connection token
  are refused at once (both components know the deadline);
- after ``--finish`` the old S3 pair and the old auth API key are refused too
  (SeaweedFS and SuperTokens cannot expire a key by themselves), new ones work.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.smoke.realtime import Subscriber
from tests.support.local_stack import Stack, running_stack

pytestmark = pytest.mark.stack

#: seconds the old values stay valid: long enough for the rotation's `pulumi up` (every service
#: restarts) and the checks made inside the window, short enough to wait out in the test
OVERLAP_S = 45
ROTATED = ("admin_key", "centrifugo_token_secret", "s3_access_key_id", "s3_secret_access_key", "auth_api_key")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory) as s:
        yield s


def _ops(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The runbook command as an operator runs it, from the stack's copy of the repository."""
    return stack.exec([str(stack.root / ".venv/bin/python"), "-m", "scripts.ops", *args], timeout=900)


def _outputs(stack: Stack) -> dict[str, Any]:
    proc = stack.run("pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "local")
    return dict(json.loads(proc.stdout))


def _s3(out: dict[str, Any], key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=out["s3_endpoint"],
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=out["s3_region"],
        config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}, proxies={}),
    )


class Probe:
    """Each credential as its real client uses it; True = accepted."""

    def __init__(self, http: httpx.AsyncClient, out: dict[str, Any]) -> None:
        self.http, self.out = http, out

    async def admin(self, key: str) -> bool:
        r = await self.http.get(
            f"{self.out['gateway_url']}/v1/auth/me", headers={"authorization": f"Bearer {key}"}
        )
        assert r.status_code in (200, 401, 403), r.text
        return r.status_code == 200 and r.json()["is_admin"] is True

    async def auth_api(self, key: str) -> bool:
        r = await self.http.get(
            f"{self.out['auth_url']}/recipe/user/metadata",
            params={"userId": "nobody"},
            headers={"api-key": key},
        )
        assert r.status_code in (200, 401, 403), r.text
        return r.status_code == 200

    async def url(self, presigned: str) -> bool:
        r = await self.http.get(presigned)
        assert r.status_code in (200, 401, 403), r.text
        return r.status_code == 200

    async def realtime(self, token: str) -> bool:
        """A fresh WebSocket connection with ``token``."""
        sub = Subscriber(self.out["centrifugo_ws_url"], token)
        try:
            await sub.connect(seconds=10)
            return True
        except Exception:
            return False
        finally:
            await sub.close()


async def _wait(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def test_old_credentials_work_through_the_window_and_are_refused_after(stack: Stack) -> None:
    old = dict(stack.outputs)
    email, password = f"rot-{uuid.uuid4().hex[:10]}@rotation.telestack.test", uuid.uuid4().hex
    # the cleanup stack closes the live client when a check fails midway: left connected, its
    # tasks outlive this test's loop and fail a later test with "Event loop is closed"
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http, AsyncExitStack() as cleanup:
        probe = Probe(http, old)
        gw = old["gateway_url"]

        # --- before: a user, a realtime client connected and subscribed, a presigned URL -----------
        r = await http.post(f"{gw}/v1/auth/signup", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        user_id, access = r.json()["user"]["id"], r.json()["access_token"]
        bearer = {"authorization": f"Bearer {access}"}
        r = await http.post(f"{gw}/v1/realtime/token", headers=bearer)
        assert r.status_code == 200, r.text
        grant = r.json()
        old_rt_token = grant["token"]
        (channel,) = [g for g in grant["channels"] if g["collection"] == "notes"]
        live = Subscriber(grant["url"] or old["centrifugo_ws_url"], old_rt_token)
        cleanup.push_async_callback(live.close)
        await live.connect()
        inbox = await live.subscribe(channel["channel"], channel.get("token"))
        assert inbox.subscribed.is_set(), f"subscription refused ({inbox.refused})"
        connects = 0

        async def on_connected(_ctx: Any) -> None:
            nonlocal connects
            connects += 1

        live.client.events.on_connected = on_connected  # type: ignore[method-assign]

        key = f"users/{user_id}/rotation.txt"
        _s3(old, old["s3_access_key_id"], old["s3_secret_access_key"]).put_object(
            Bucket=old["s3_bucket"], Key=key, Body=b"before rotation"
        )
        r = await http.post(
            f"{gw}/v1/storage/download-url", headers=bearer, json={"key": key, "expires_in": 3600}
        )
        assert r.status_code == 200, r.text
        old_url = r.json()["url"]
        assert old["s3_access_key_id"] in old_url, "the gateway signs with the stack's S3 pair"
        assert await probe.url(old_url)
        assert await probe.admin(old["admin_key"]) and await probe.auth_api(old["auth_api_key"])

        # --- rotate (the client's loop keeps running: it sees Centrifugo restart and reconnects) -------
        proc = await asyncio.to_thread(
            _ops, stack, "rotate-secrets", "--stack", "local", "--overlap", str(OVERLAP_S)
        )
        new = await asyncio.to_thread(_outputs, stack)
        until = int(
            stack.run("pulumi", "config", "get", "--stack", "local", "adminKeyPreviousValidUntil").stdout
        )
        for name in ROTATED:
            assert new[name] != old[name], f"{name} was not rotated"
            for value in (old[name], new[name]):
                assert value not in proc.stdout + proc.stderr, f"rotate-secrets printed {name}"

        # --- during the window: old and new credentials both work ---------------------------------------
        assert await probe.admin(old["admin_key"]) and await probe.admin(new["admin_key"])
        assert await probe.url(old_url), "a URL presigned with the old S3 pair before the rotation"
        r = await http.post(
            f"{gw}/v1/storage/download-url", headers=bearer, json={"key": key, "expires_in": 600}
        )
        assert r.status_code == 200 and new["s3_access_key_id"] in r.json()["url"], r.text
        assert await probe.url(r.json()["url"])
        assert await probe.auth_api(old["auth_api_key"]) and await probe.auth_api(new["auth_api_key"])
        r = await http.get(f"{gw}/v1/auth/me", headers=bearer)  # the gateway reaches auth with the new key
        assert r.status_code == 200 and r.json()["user"]["id"] == user_id, r.text

        assert await _wait(
            lambda: connects >= 1 and inbox.subscribed.is_set(), 30
        ), "the client connected before the rotation did not reconnect with its old token"
        r = await http.post(
            f"{gw}/v1/collections/notes/documents", headers=bearer, json={"data": {"title": "rot"}}
        )
        assert r.status_code == 201, r.text
        doc_id = r.json()["id"]
        assert await inbox.wait_until(
            lambda: inbox.has("notes", doc_id), 20
        ), f"the pre-rotation client got no event during the window: {inbox.events[-3:]}"
        assert await probe.realtime(old_rt_token), "a connection token signed before the rotation"
        r = await http.post(f"{gw}/v1/realtime/token", headers=bearer)
        new_rt_token = r.json()["token"]
        assert new_rt_token != old_rt_token and await probe.realtime(new_rt_token)
        assert time.time() < until, f"the checks outlasted the {OVERLAP_S} s window: raise OVERLAP_S"

        # --- the deadline passes: the gateway and Centrifugo refuse the old values on their own ----------
        await asyncio.sleep(max(0.0, until + 1.5 - time.time()))
        assert not await probe.admin(old["admin_key"]) and await probe.admin(new["admin_key"])
        assert not await probe.realtime(old_rt_token) and await probe.realtime(new_rt_token)

        # --- finish: previous values removed everywhere -------------------------------------------------
        await live.close()
        await asyncio.to_thread(_ops, stack, "rotate-secrets", "--stack", "local", "--finish")
        assert not await probe.admin(old["admin_key"]) and await probe.admin(new["admin_key"])
        assert not await probe.url(old_url), "the old S3 pair's presigned URL after --finish"
        with pytest.raises(ClientError, match="InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|403"):
            _s3(new, old["s3_access_key_id"], old["s3_secret_access_key"]).get_object(
                Bucket=new["s3_bucket"], Key=key
            )
        fresh = _s3(new, new["s3_access_key_id"], new["s3_secret_access_key"])
        assert fresh.get_object(Bucket=new["s3_bucket"], Key=key)["Body"].read() == b"before rotation"
        assert not await probe.auth_api(old["auth_api_key"]) and await probe.auth_api(new["auth_api_key"])
        assert not await probe.realtime(old_rt_token) and await probe.realtime(new_rt_token)
        r = await http.post(f"{gw}/v1/storage/download-url", headers=bearer, json={"key": key})
        assert r.status_code == 200 and await probe.url(r.json()["url"])

    # no value of either generation in plain text: stack config, Pulumi state, config files, logs
    files = [*stack.root.glob("Pulumi.*.yaml"), *(stack.root / ".telestack").rglob("*")]
    texts = [f.read_bytes() for f in files if f.is_file() and f.stat().st_size < 20_000_000]
    for name in ROTATED:
        for label, value in (("old", old[name]), ("new", new[name])):
            if (label, name) == ("old", "s3_access_key_id"):
                continue  # SeaweedFS logs the id of a refused key (our post-finish probe); no secret
            assert not any(
                value.encode() in t for t in texts
            ), f"{label} {name} in plain text under the stack"
