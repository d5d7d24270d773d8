"""Presigned storage URLs against a real SeaweedFS started with an identities config.

The gateway runs in process (stub identity, ``Bearer token-<user>``); uploads and
downloads go straight to SeaweedFS over HTTP with httpx, as a browser would.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio

from infra import storage_rules
from tests.support.gateway import Client, StubAuthenticator, base_settings
from tests.support.paths import CONFIG
from tests.support.seaweedfs import SeaweedFS
from worker import storage
from worker.context import Gateway
from worker.principal import Principal
from worker.settings import from_mapping

pytestmark = pytest.mark.stack


def storage_env(sw: SeaweedFS, **over: str) -> dict[str, str]:
    return {
        **base_settings(),
        "S3_ENDPOINT": sw.endpoint,
        "S3_BUCKET": sw.bucket,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": sw.access_key,
        "S3_SECRET_ACCESS_KEY": sw.secret_key,
        "STORAGE_MAX_UPLOAD_BYTES": str(1024 * 1024),
        **over,
    }


def make_client(env: dict[str, str]) -> Client:
    gw = Gateway(settings=from_mapping(env), db=None, http=None)  # type: ignore[arg-type]  # signing is local
    gw.authenticator = StubAuthenticator()  # type: ignore[assignment]
    return Client(gw)


@pytest.fixture
def client(seaweedfs: SeaweedFS) -> Client:
    return make_client(storage_env(seaweedfs))


@pytest_asyncio.fixture
async def web() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as c:
        yield c


async def upload(web: httpx.AsyncClient, form: dict[str, Any], data: bytes,
                 content_type: str | None = None) -> httpx.Response:
    files = {"file": ("blob", data, content_type or form["content_type"])}
    return await web.post(form["url"], data=form["fields"], files=files)


async def sign(client: Client, kind: str, user: str, **body: Any) -> Any:
    reply = await client.request("POST", f"/v1/storage/{kind}-url", user=user, json=body)
    return reply


async def test_upload_then_download_is_byte_identical(client: Client, web: httpx.AsyncClient) -> None:
    payload = secrets.token_bytes(300_000)
    key = "users/alice/photos/cat.bin"
    form = (await sign(client, "upload", "alice", key=key, content_type="application/octet-stream")).json
    assert form["method"] == "POST" and form["key"] == key
    policy = storage.decode_policy(form["fields"])
    assert ["content-length-range", 0, 1024 * 1024] in policy["conditions"]
    assert {"Content-Type": "application/octet-stream"} in policy["conditions"]
    resp = await upload(web, form, payload)
    assert resp.status_code in (200, 201, 204), resp.text
    url = (await sign(client, "download", "alice", key=key)).json["url"]
    assert "/" + key in urlsplit(url).path  # path-style: /bucket/key
    got = await web.get(url)
    assert got.status_code == 200 and got.content == payload


async def test_other_users_prefix_is_refused_by_the_gateway(client: Client) -> None:
    for kind in ("upload", "download"):
        reply = await sign(client, kind, "bob", key="users/alice/cat.bin")
        assert reply.status == 403 and reply.json["error"]["code"] == "forbidden"
        reply = await sign(client, kind, "bob", key="users/bobby/x")  # prefix match is by whole segment
        assert reply.status == 403
    assert (await sign(client, "download", "admin", key="users/alice/cat.bin")).status == 200
    assert (await client.request("POST", "/v1/storage/upload-url", user=None,
                                 json={"key": "users/alice/x"})).status == 401


@pytest.mark.parametrize("key", ["", "/users/alice/x", "users/alice/../bob/x", "users/alice//x",
                                 "users/alice/./x", "users/alice/x\n", "users\\alice\\x",
                                 "users/alice/" + "k" * 1100, 42])
async def test_bad_keys_are_refused(client: Client, key: Any) -> None:
    reply = await sign(client, "upload", "alice", key=key)
    assert reply.status == 400 and reply.json["error"]["code"] == "invalid_key"


async def test_request_shape_is_checked(client: Client) -> None:
    assert (await sign(client, "upload", "alice", key="users/alice/a", extra=1)).status == 400
    assert (await sign(client, "upload", "alice", key="users/alice/a", content_type="nonsense")).status == 400
    assert (await sign(client, "upload", "alice", key="users/alice/a", size=-1)).status == 400
    assert (await sign(client, "upload", "alice", key="users/alice/a", size=2 * 1024 * 1024)).status == 413
    assert (await sign(client, "download", "alice", key="users/alice/a", expires_in=0)).status == 400
    long = (await sign(client, "download", "alice", key="users/alice/a", expires_in=10 ** 9)).json
    assert dict(parse_qsl(urlsplit(long["url"]).query))["X-Amz-Expires"] == "900"  # clamped to the setting


async def test_upload_over_the_size_limit_is_refused_by_s3(client: Client, web: httpx.AsyncClient) -> None:
    form = (await sign(client, "upload", "alice", key="users/alice/small.bin", size=1000)).json
    too_big = await upload(web, form, b"x" * 1001)
    assert too_big.status_code == 400 and "EntityTooLarge" in too_big.text
    assert (await upload(web, form, b"x" * 1000)).status_code in (200, 201, 204)


async def test_upload_with_another_content_type_or_key_is_refused(client: Client,
                                                                  web: httpx.AsyncClient) -> None:
    form = (await sign(client, "upload", "alice", key="users/alice/pic.png", content_type="image/png")).json
    wrong_type = dict(form, fields={**form["fields"], "Content-Type": "text/html"})
    assert (await upload(web, wrong_type, b"<script>", "text/html")).status_code == 403
    other_key = dict(form, fields={**form["fields"], "key": "users/bob/pic.png"})
    assert (await upload(web, other_key, b"png")).status_code == 403


async def test_tampered_and_expired_urls_are_refused_by_s3(client: Client, seaweedfs: SeaweedFS,
                                                          web: httpx.AsyncClient) -> None:
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="users/alice/doc.txt", Body=b"hello")
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="users/bob/doc.txt", Body=b"bob's")
    url = (await sign(client, "download", "alice", key="users/alice/doc.txt")).json["url"]
    assert (await web.get(url)).content == b"hello"
    parts = urlsplit(url)
    retargeted = urlunsplit(parts._replace(path=parts.path.replace("/alice/", "/bob/")))
    assert (await web.get(retargeted)).status_code == 403
    query = dict(parse_qsl(parts.query))
    sig = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert (await web.get(urlunsplit(parts._replace(query=urlencode(query))))).status_code == 403
    short = (await sign(client, "download", "alice", key="users/alice/doc.txt", expires_in=1)).json["url"]
    await asyncio.sleep(2.5)  # let it expire (S3 checks X-Amz-Date + X-Amz-Expires against its clock)
    expired = await web.get(short)
    assert expired.status_code == 403 and "expired" in expired.text.lower()


async def test_expired_upload_policy_is_refused(seaweedfs: SeaweedFS, web: httpx.AsyncClient) -> None:
    env = storage_env(seaweedfs)
    long_ago = storage.dt.datetime.now(storage.dt.timezone.utc) - storage.dt.timedelta(hours=1)
    form = storage.upload_form(Principal("alice"), {"key": "users/alice/late.bin"}, from_mapping(env),
                               now=long_ago)
    assert (await upload(web, form, b"late")).status_code == 403


async def test_wrong_s3_keys_are_refused(seaweedfs: SeaweedFS, web: httpx.AsyncClient) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        seaweedfs.client(secret_key="wrong-secret-key-000000000000").list_objects_v2(Bucket=seaweedfs.bucket)
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    with pytest.raises(ClientError):
        stranger = seaweedfs.client(access_key="AKNOSUCHKEY0000", secret_key="x" * 30)
        stranger.list_objects_v2(Bucket=seaweedfs.bucket)
    forger = make_client(storage_env(seaweedfs, S3_SECRET_ACCESS_KEY="wrong-secret-key-000000000000"))
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="users/alice/k.txt", Body=b"k")
    url = (await sign(forger, "download", "alice", key="users/alice/k.txt")).json["url"]
    assert (await web.get(url)).status_code == 403
    form = (await sign(forger, "upload", "alice", key="users/alice/k2.txt")).json
    assert (await upload(web, form, b"k2")).status_code == 403


def test_bucket_cors_and_lifecycle_rules_are_applied(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    doc = storage_rules.load_rules(CONFIG)
    applied = storage_rules.apply_bucket_rules(seaweedfs.endpoint, seaweedfs.bucket, seaweedfs.access_key,
                                               seaweedfs.secret_key, doc, ("http://app.test",))
    assert applied.cors and applied.lifecycle, applied.notes
    lifecycle = seaweedfs.client().get_bucket_lifecycle_configuration(Bucket=seaweedfs.bucket)["Rules"]
    assert {r["ID"] for r in lifecycle} == {"abort-incomplete-multipart", "expire-tmp"}
    rules = seaweedfs.client().get_bucket_cors(Bucket=seaweedfs.bucket)["CORSRules"]
    assert "http://app.test" in rules[0]["AllowedOrigins"] and "POST" in rules[0]["AllowedMethods"]
    ok = httpx.options(f"{seaweedfs.endpoint}/{seaweedfs.bucket}/users/x",
                       headers={"Origin": "http://app.test", "Access-Control-Request-Method": "PUT"},
                       trust_env=False)
    assert ok.status_code == 200 and ok.headers.get("access-control-allow-origin") in ("http://app.test", "*")
    denied = httpx.options(f"{seaweedfs.endpoint}/{seaweedfs.bucket}/users/x",
                           headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "PUT"},
                           trust_env=False)
    assert denied.status_code == 403
