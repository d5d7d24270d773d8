"""Secret rotation with an overlap window, against real Centrifugo and SeaweedFS processes.

The stack config values come from ``rotate.start`` / ``rotate.finish`` (the
runbook's own code, on an in-memory config store instead of ``pulumi config``)
and reach each component through the code ``pulumi up`` runs: the stack's
secrets (``infra.settings.stack_secrets``), the service specs
(``infra.services``) and the gateway's bindings (``infra.gateway_bindings``).
A service "apply" is a restart, as the local renderer does when a service's
env changes.

What must hold: a client connected before the rotation keeps working through
the window; new credentials work at once; once the window is over (finished,
or its deadline passed) the old credentials are refused.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from centrifuge import Client, ClientEventHandler, DisconnectedContext

from infra import services
from infra.endpoints import local_endpoints
from infra.gateway_bindings import gateway_bindings
from scripts.ops import rotate
from scripts.ops.console import Console
from tests.support.centrifugo import Centrifugo, start_centrifugo
from tests.support.ops import MemoryConfig
from tests.support.realtime_client import Inbox
from tests.support.seaweedfs import SeaweedFS, identities_config, start_seaweedfs
from tests.support.stack_settings import resolve, resolve_async, stack_settings

pytestmark = pytest.mark.stack


def _console() -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO())


def _token(secret: str, sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, secret, algorithm="HS256")


class _Events(ClientEventHandler):
    def __init__(self) -> None:
        self.disconnects: list[int] = []

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.disconnects.append(ctx.code)


class _Rotating(Centrifugo):
    """The fixture's Centrifugo, but its keys come from the stack's Centrifugo spec for the config."""

    extra_env: dict[str, str]

    def env(self) -> dict[str, str]:
        base = super().env()
        base.update(self.extra_env)
        return base

    def apply(self, config: MemoryConfig) -> None:
        env = resolve(lambda: dict(services.centrifugo(stack_settings(config.values)).secret_env))
        self.api_key = env["CENTRIFUGO_HTTP_API_KEY"]
        self.token_secret = env["CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY"]
        self.extra_env = {k: v for k, v in env.items() if "PREVIOUS" in k}
        self.stop()
        self.start()


async def _connect(url: str, token: str) -> tuple[Client, _Events]:
    events = _Events()
    client = Client(url, events, token=token, timeout=5.0, max_reconnect_delay=0.5, proxy=None)
    await client.connect()
    return client, events


async def _accepted(url: str, token: str) -> bool:
    """A fresh connection with ``token``: True when Centrifugo accepts it."""
    client, _ = await _connect(url, token)
    try:
        await client.ready(timeout=5)
        return True
    except Exception:
        return False
    finally:
        await client.disconnect()
        await _settle()


async def _settle() -> None:
    """Let the client's background close/keepalive tasks finish before the loop ends."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=2)


@pytest.fixture
def centrifugo(tmp_path: Path) -> Iterator[_Rotating]:
    server = start_centrifugo(tmp_path / "centrifugo")
    server.__class__ = _Rotating
    server.extra_env = {}
    try:
        yield server  # type: ignore[misc]
    finally:
        server.stop()


async def test_centrifugo_token_key_overlap(centrifugo: _Rotating) -> None:
    config = MemoryConfig(
        {"centrifugoTokenSecret": centrifugo.token_secret, "centrifugoApiKey": centrifugo.api_key}
    )

    # a client connected (and subscribed) before the rotation; closed even when a check fails, else
    # its tasks outlive this test's loop and fail a later test with "Event loop is closed"
    live, live_events = await _connect(centrifugo.ws_url, _token(centrifugo.token_secret, "u1"))
    try:
        await _rotate_while_connected(centrifugo, config, live, live_events)
    finally:
        await live.disconnect()
        await _settle()


async def _rotate_while_connected(
    centrifugo: _Rotating, config: MemoryConfig, live: Client, live_events: _Events
) -> None:
    old_key = centrifugo.token_secret
    url, channel = centrifugo.ws_url, "notes:rot#u1"
    await live.ready(timeout=10)
    inbox = Inbox()
    sub = live.new_subscription(channel, inbox)
    await sub.subscribe()
    assert await inbox.wait_until(lambda: inbox.subscribed.is_set(), 10)

    outcomes = rotate.start(config, [rotate.BY_NAME["centrifugo-token"]], 3600, _console())
    assert [o.action for o in outcomes] == ["rotated"] and config.applied == 1
    new_key = config.values["centrifugoTokenSecret"]
    assert new_key != old_key and config.values["centrifugoTokenSecretPrevious"] == old_key
    await asyncio.to_thread(centrifugo.apply, config)  # the restart drops every connection

    # during the window: the old client reconnects with its old token and still receives events
    status, _ = centrifugo.api("publish", {"channel": channel, "data": {"n": 1}})
    deadline = time.monotonic() + 15
    while not inbox.events and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        centrifugo.api("publish", {"channel": channel, "data": {"n": 1}})
    assert (
        inbox.events
    ), f"client connected before rotation got nothing (disconnects {live_events.disconnects})"
    assert await _accepted(url, _token(new_key, "u2"))
    assert await _accepted(url, _token(old_key, "u3"))  # a token issued before rotation, still in its window

    # the window's deadline passing is enough to refuse the old key (no restart, no --finish needed)
    config.values["centrifugoTokenSecretPreviousValidUntil"] = str(int(time.time()) - 1)
    await asyncio.to_thread(centrifugo.apply, config)
    assert not await _accepted(url, _token(old_key, "u4"))
    assert await _accepted(url, _token(new_key, "u5"))

    # --finish: the previous key is gone from config and from Centrifugo
    rotate.finish(config, [rotate.BY_NAME["centrifugo-token"]], _console())
    assert "centrifugoTokenSecretPrevious" not in config.values
    await asyncio.to_thread(centrifugo.apply, config)
    assert not await _accepted(url, _token(old_key, "u6"))
    assert await _accepted(url, _token(new_key, "u7"))
    assert status == 200


# --------------------------------------------------------------------------- S3 credentials


def _restart_seaweedfs(server: SeaweedFS, credentials: list[tuple[str, str]]) -> None:
    doc = identities_config(*credentials[0])
    doc["identities"][0]["credentials"] = [  # type: ignore[index]
        {"accessKey": ak, "secretKey": sk} for ak, sk in credentials
    ]
    config_file = next(Path(a.split("=", 1)[1]) for a in server.argv if a.startswith("-s3.config="))
    config_file.write_text(json.dumps(doc))
    server.stop()
    server.start(access_key=credentials[0][0], secret_key=credentials[0][1])


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[SeaweedFS]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # earlier async tests' loop sockets (notes)
        server = start_seaweedfs(tmp_path, bucket="rotation")
        gc.collect()
    try:
        yield server
    finally:
        server.stop()


def _s3_pairs(config: MemoryConfig) -> list[tuple[str, str]]:
    """The credential pairs the stack's SeaweedFS spec accepts for the config: current first."""
    env = resolve(lambda: dict(services.seaweedfs(stack_settings(config.values)).secret_env))
    pairs = [(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])]
    previous_id, previous_secret = services.S3_PREVIOUS_ENV
    if previous_id in env:
        pairs.append((env[previous_id], env[previous_secret]))
    return pairs


def _status(url: str) -> int:
    return httpx.get(url, timeout=10).status_code


def test_s3_keys_overlap(s3: SeaweedFS) -> None:
    config = MemoryConfig({"s3AccessKeyId": s3.access_key, "s3SecretAccessKey": s3.secret_key})
    old = s3.client()
    old.put_object(Bucket=s3.bucket, Key="users/u1/a.txt", Body=b"before")
    # a presigned URL handed to a client before the rotation
    old_url = old.generate_presigned_url(
        "get_object", Params={"Bucket": s3.bucket, "Key": "users/u1/a.txt"}, ExpiresIn=3600
    )
    assert _status(old_url) == 200

    rotate.start(config, [rotate.BY_NAME["s3"]], 3600, _console())
    pairs: list[Any] = _s3_pairs(config)
    assert pairs[1] == (s3.access_key, s3.secret_key) and pairs[0][0] != s3.access_key
    _restart_seaweedfs(s3, pairs)

    assert _status(old_url) == 200  # the old URL keeps working during the window
    new = s3.client(access_key=pairs[0][0], secret_key=pairs[0][1])
    new.put_object(Bucket=s3.bucket, Key="users/u1/b.txt", Body=b"after")
    assert new.get_object(Bucket=s3.bucket, Key="users/u1/a.txt")["Body"].read() == b"before"

    rotate.finish(config, [rotate.BY_NAME["s3"]], _console(), force=True)
    pairs = _s3_pairs(config)
    assert len(pairs) == 1
    _restart_seaweedfs(s3, pairs)

    assert _status(old_url) == 403  # old credentials refused after the window
    with pytest.raises(Exception, match="InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|403"):
        old.get_object(Bucket=s3.bucket, Key="users/u1/b.txt")
    assert new.get_object(Bucket=s3.bucket, Key="users/u1/b.txt")["Body"].read() == b"after"


# --------------------------------------------------------------------------- admin key


async def test_admin_key_overlap() -> None:
    """The gateway honours the previous admin key until the window's deadline (bindings from the rotation)."""
    from worker.http import ApiError, Request
    from worker.settings import from_mapping

    config = MemoryConfig({"adminKey": "old-admin-key-0123456789"})
    rotate.start(config, [rotate.BY_NAME["admin"]], 3600, _console())
    new_key = config.values["adminKey"]

    async def gateway_for(config: MemoryConfig) -> Any:
        from worker.context import Gateway

        def bindings() -> dict[str, Any]:
            s = stack_settings(config.values)
            mapped = gateway_bindings(s.environment, s.secrets, local_endpoints(s.environment))
            return {**mapped.plain, **mapped.secret}

        values = await resolve_async(bindings)
        return Gateway(
            settings=from_mapping({**values, "COLLECTIONS": '{"collections": {}}'}),
            db=None,  # type: ignore[arg-type]
            http=None,
        )  # type: ignore[arg-type]

    async def admin(gateway: Any, key: str) -> bool:
        req = Request("GET", "/v1/auth/me", headers={"authorization": f"Bearer {key}"})
        try:
            return (await gateway.authenticator.authenticate(req)).is_admin
        except ApiError:
            return False

    during = await gateway_for(config)
    assert await admin(during, "old-admin-key-0123456789") and await admin(during, new_key)

    config.values["adminKeyPreviousValidUntil"] = str(int(time.time()) - 1)
    expired = await gateway_for(config)
    assert not await admin(expired, "old-admin-key-0123456789") and await admin(expired, new_key)

    rotate.finish(config, [rotate.BY_NAME["admin"]], _console())
    after = await gateway_for(config)
    assert not await admin(after, "old-admin-key-0123456789") and await admin(after, new_key)


# --------------------------------------------------------------------------- real `pulumi config`


def test_rotate_cli_writes_only_encrypted_values_to_stack_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rotate-secrets` through the real Pulumi CLI (file backend): ciphertext only, nothing printed."""
    import os

    from scripts.ops.cli import main
    from scripts.ops.stack import Pulumi
    from tests.support.paths import binary

    pulumi_bin = binary("pulumi")
    (tmp_path / "Pulumi.yaml").write_text("name: telestack\nruntime: python\n")
    (tmp_path / ".telestack" / "state").mkdir(parents=True)
    (tmp_path / ".telestack" / "passphrase").write_text("test-passphrase\n")
    for key in list(os.environ):
        if key.startswith(("TELESTACK_", "PULUMI_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TELESTACK_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", f"{Path(pulumi_bin).parent}{os.pathsep}{os.environ['PATH']}")
    cli = Pulumi()
    cli.run("stack", "init", "rot")
    old = {
        "adminKey": "old-admin-value-1",
        "centrifugoTokenSecret": "old-token-value-2",
        "s3AccessKeyId": "AKOLDVALUE3",
        "s3SecretAccessKey": "old-s3-secret-4",
        "centrifugoApiKey": "old-api-5",
        "authApiKey": "0123456789abcdef0123456789",
    }
    for key, value in old.items():
        cli.set_secret("rot", key, value)

    console = _console()
    assert main(["rotate-secrets", "--stack", "rot", "--no-apply", "--overlap", "600"], console) == 0
    text = console.stdout.getvalue() + console.stderr.getvalue()  # type: ignore[attr-defined]
    stack_file = (tmp_path / "Pulumi.rot.yaml").read_text()
    values = rotate.PulumiConfig(cli, "rot")._all()  # one `pulumi config --json --show-secrets`
    new = {k: values[k] for k in old}
    assert all(new[k] != old[k] for k in old)
    assert values["adminKeyPrevious"] == old["adminKey"]
    assert values["s3SecretAccessKeyPrevious"] == old["s3SecretAccessKey"]
    assert "centrifugoApiKeyPrevious" not in values  # cut-over
    for value in [*old.values(), *new.values()]:
        assert value not in stack_file and value not in text

    console = _console()  # a second start inside the window is refused, config unchanged
    assert main(["rotate-secrets", "--stack", "rot", "--no-apply"], console) == 1
    assert "already in progress" in console.stderr.getvalue()  # type: ignore[attr-defined]
    assert cli.get("rot", "adminKey") == new["adminKey"]

    console = _console()
    assert (
        main(["rotate-secrets", "--stack", "rot", "--no-apply", "--finish", "--force", "--json"], console)
        == 0
    )
    assert {o["action"] for o in json.loads(console.stdout.getvalue())["outcomes"]} == {"finished"}  # type: ignore[attr-defined]
    values = rotate.PulumiConfig(cli, "rot")._all()
    assert "adminKeyPrevious" not in values and values["adminKey"] == new["adminKey"]


# --------------------------------------------------------------------------- auth API key


def test_auth_api_key_overlap(tmp_path: Path) -> None:
    """The stand-in (like SuperTokens Core) takes a key list: new + old during the window, new only after."""
    from tests.support.standin import start_standin

    config = MemoryConfig({"authApiKey": "0" * 24 + "old"})
    rotate.start(config, [rotate.BY_NAME["auth-api"]], 3600, _console())
    old, new = "0" * 24 + "old", config.values["authApiKey"]

    def accepted(standin_url: str, key: str) -> bool:
        r = httpx.get(
            f"{standin_url}/recipe/user/metadata",
            params={"userId": "nobody"},
            headers={"api-key": key},
            timeout=10,
        )
        return r.status_code == 200

    def run(where: Path) -> Any:
        where.mkdir()
        env = resolve(lambda: dict(services.supertokens_standin(stack_settings(config.values)).secret_env))
        return start_standin(where, api_keys=env["SUPERTOKENS_API_KEYS"])

    during = run(tmp_path / "during")
    try:
        assert accepted(during.url, old) and accepted(during.url, new)
    finally:
        during.stop()
    rotate.finish(config, [rotate.BY_NAME["auth-api"]], _console(), force=True)
    after = run(tmp_path / "after")
    try:
        assert not accepted(after.url, old) and accepted(after.url, new)
    finally:
        after.stop()
