"""Presigned storage URLs against a real SeaweedFS started with an identities config.

The gateway runs in process (stub identity, ``Bearer token-<user>``, except where a test
needs the real token verifier); uploads and downloads go straight to SeaweedFS over HTTP
with httpx, as a browser would. Every refusal of an upload is the storage server's own
answer to a presigned PUT whose signature covers the key, ``Content-Type`` and
``Content-Length``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from infra import storage_rules
from tests.support.gateway import Client, StubAuthenticator, base_settings
from tests.support.paths import CONFIG
from tests.support.seaweedfs import SeaweedFS
from worker.adapters.pyjwt_signatures import PyJwtSignatures
from worker.auth import SessionAuthenticator
from worker.context import Gateway
from worker.jwks import JwksCache
from worker.settings import from_mapping

pytestmark = pytest.mark.stack

REFUSED = 403  # what SeaweedFS answers a request whose signature does not match, or an expired one


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


async def put(web: httpx.AsyncClient, signed: dict[str, Any], data: Any,
              headers: dict[str, str] | None = None, url: str | None = None) -> httpx.Response:
    """The presigned PUT as a client sends it: the body's own length, the signed headers unless overridden."""
    return await web.put(url or signed["url"], content=data,
                         headers=signed["headers"] if headers is None else headers)


def stored(seaweedfs: SeaweedFS, key: str) -> bytes | None:
    """The object's bytes as the server holds them, or None if there is none."""
    from botocore.exceptions import ClientError

    s3 = seaweedfs.client()
    try:
        return s3.get_object(Bucket=seaweedfs.bucket, Key=key)["Body"].read()
    except ClientError as err:
        assert err.response["Error"]["Code"] in ("NoSuchKey", "404"), err.response
        return None
    finally:
        s3.close()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), **changes})))


def with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


async def sign(client: Client, kind: str, user: str, **body: Any) -> Any:
    reply = await client.request("POST", f"/v1/storage/{kind}-url", user=user, json=body)
    return reply


async def test_upload_then_download_is_byte_identical(client: Client, seaweedfs: SeaweedFS,
                                                     web: httpx.AsyncClient) -> None:
    payload = secrets.token_bytes(300_000)
    key = "users/alice/photos/cat.bin"
    signed = (await sign(client, "upload", "alice", key=key, content_type="application/x-test",
                         size=len(payload))).json
    assert signed["method"] == "PUT" and signed["key"] == key and signed["size"] == len(payload)
    assert signed["headers"] == {"Content-Type": "application/x-test"}
    assert dict(parse_qsl(urlsplit(signed["url"]).query))["X-Amz-SignedHeaders"] == \
        "content-length;content-type;host"
    resp = await put(web, signed, payload)
    assert resp.status_code == 200, resp.text
    url = (await sign(client, "download", "alice", key=key)).json["url"]
    assert "/" + key in urlsplit(url).path  # path-style: /bucket/key
    got = await web.get(url)
    assert got.status_code == 200 and got.content == payload
    assert got.headers["content-type"] == "application/x-test"
    empty = (await sign(client, "upload", "alice", key="users/alice/empty", size=0)).json
    assert (await put(web, empty, b"")).status_code == 200
    assert stored(seaweedfs, "users/alice/empty") == b""


async def test_other_users_prefix_is_refused_by_the_gateway(client: Client) -> None:
    for kind, extra in (("upload", {"size": 1}), ("download", {})):
        reply = await sign(client, kind, "bob", key="users/alice/cat.bin", **extra)
        assert reply.status == 403 and reply.json["error"]["code"] == "forbidden"
        # prefix match is by whole segment
        reply = await sign(client, kind, "bob", key="users/bobby/x", **extra)
        assert reply.status == 403
        assert (await sign(client, kind, "admin", key="users/alice/cat.bin", **extra)).status == 200
        reply = await client.request("POST", f"/v1/storage/{kind}-url", user=None,
                                     json={"key": "users/alice/x", **extra})
        assert reply.status == 401


def _session_token(key: rsa.RSAPrivateKey, sub: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + 600, "tId": "public", "rsub": sub, "sessionHandle": "h-1",
              "refreshTokenHash1": "ab" * 32, "parentRefreshTokenHash1": None, "antiCsrfToken": None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "d-1", "version": "5"})


async def test_forged_tokens_get_no_url_from_the_real_verifier(seaweedfs: SeaweedFS) -> None:
    """The gateway's own SessionAuthenticator, not the stub: only a token the auth core signed calls."""
    core_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(core_key.public_key(), as_dict=True), "kid": "d-1",
           "alg": "RS256", "use": "sig"}

    async def published() -> tuple[list[dict[str, Any]], int | None]:
        return [jwk], 60

    settings = from_mapping(storage_env(seaweedfs))
    gw = Gateway(settings=settings, db=None, http=None)  # type: ignore[arg-type]  # signing is local
    jwks = JwksCache(published, PyJwtSignatures(), min_interval=0.0)
    gw.authenticator = SessionAuthenticator(settings, jwks)
    client = Client(gw)
    async def ask(kind: str, token: str) -> Any:
        body = {"key": "users/alice/f.bin", **({"size": 3} if kind == "upload" else {})}
        return await client.request("POST", f"/v1/storage/{kind}-url", user=None, json=body,
                                    headers={"authorization": f"Bearer {token}"})

    genuine = _session_token(core_key, "alice")
    head, claims, sig = genuine.split(".")
    for token in (_session_token(forger_key, "alice"), f"{head}.{claims}.{sig[:-4]}AAAA", "token-alice"):
        for kind in ("upload", "download"):
            reply = await ask(kind, token)
            assert reply.status == 401, (kind, reply.json)
    assert (await ask("upload", genuine)).status == 200
    assert (await ask("upload", _session_token(core_key, "bob"))).status == 403  # genuine, other prefix


@pytest.mark.parametrize("key", ["", "/users/alice/x", "users/alice/../bob/x", "users/alice//x",
                                 "users/alice/./x", "users/alice/x\n", "users\\alice\\x",
                                 "users/alice/" + "k" * 1100, 42])
async def test_bad_keys_are_refused(client: Client, key: Any) -> None:
    reply = await sign(client, "upload", "alice", key=key)
    assert reply.status == 400 and reply.json["error"]["code"] == "invalid_key"


async def test_request_shape_is_checked(client: Client) -> None:
    assert (await sign(client, "upload", "alice", key="users/alice/a", size=1, extra=1)).status == 400
    bad_type = await sign(client, "upload", "alice", key="users/alice/a", size=1, content_type="nonsense")
    assert bad_type.status == 400
    missing = await sign(client, "upload", "alice", key="users/alice/a")  # a PUT signs one exact length
    assert missing.status == 400 and missing.json["error"]["code"] == "missing_field"
    assert (await sign(client, "upload", "alice", key="users/alice/a", size=-1)).status == 400
    too_big = await sign(client, "upload", "alice", key="users/alice/a", size=1024 * 1024 + 1)
    assert too_big.status == 413 and too_big.json["error"]["code"] == "too_large"
    assert (await sign(client, "upload", "alice", key="users/alice/a", size=1024 * 1024)).status == 200
    assert (await sign(client, "download", "alice", key="users/alice/a", expires_in=0)).status == 400
    long = (await sign(client, "download", "alice", key="users/alice/a", expires_in=10 ** 9)).json
    assert dict(parse_qsl(urlsplit(long["url"]).query))["X-Amz-Expires"] == "900"  # clamped to the setting


async def test_a_body_of_another_size_is_refused_by_s3(client: Client, seaweedfs: SeaweedFS,
                                                       web: httpx.AsyncClient) -> None:
    key = "users/alice/sized.bin"
    signed = (await sign(client, "upload", "alice", key=key, size=1000)).json
    for body in (b"x" * 1001, b"x" * 999, b"x" * 5000):
        resp = await put(web, signed, body)
        assert resp.status_code == REFUSED and "SignatureDoesNotMatch" in resp.text, (len(body), resp.text)
    # no Content-Length at all: a chunked body of the right size is refused too
    async def halves() -> AsyncIterator[bytes]:
        for _ in range(2):
            yield b"x" * 500

    chunked = await put(web, signed, halves())
    assert chunked.status_code == REFUSED
    # a signature that no longer lists content-length does not match either
    unlisted = with_query(signed["url"], **{"X-Amz-SignedHeaders": "content-type;host"})
    assert (await put(web, signed, b"x" * 1001, url=unlisted)).status_code == REFUSED
    assert stored(seaweedfs, key) is None
    assert (await put(web, signed, b"x" * 1000)).status_code == 200
    assert stored(seaweedfs, key) == b"x" * 1000


async def test_a_body_cut_short_is_not_stored(client: Client, seaweedfs: SeaweedFS) -> None:
    """A client that declares the signed length and then sends less leaves no object behind."""
    key = "users/alice/short.bin"
    signed = (await sign(client, "upload", "alice", key=key, size=1000)).json
    url = urlsplit(signed["url"])
    head = (f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: {signed['content_type']}\r\nContent-Length: 1000\r\n\r\n")
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head.encode() + b"z" * 500)
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]
    assert stored(seaweedfs, key) is None


async def test_another_content_type_is_refused_by_s3(client: Client, seaweedfs: SeaweedFS,
                                                     web: httpx.AsyncClient) -> None:
    key = "users/alice/pic.png"
    signed = (await sign(client, "upload", "alice", key=key, content_type="image/png", size=8)).json
    for headers in ({"Content-Type": "text/html"}, {"Content-Type": "image/png; charset=utf-8"}, {}):
        resp = await put(web, signed, b"<script>", headers)
        assert resp.status_code == REFUSED and "SignatureDoesNotMatch" in resp.text, headers
    assert stored(seaweedfs, key) is None


async def test_another_key_or_method_is_refused_by_s3(client: Client, seaweedfs: SeaweedFS,
                                                      web: httpx.AsyncClient) -> None:
    key = "users/alice/mine.bin"
    signed = (await sign(client, "upload", "alice", key=key, size=3)).json
    path = urlsplit(signed["url"]).path
    for other in ("users/bob/mine.bin", "users/alice/mine.bin2", "users/alice/other.bin"):
        resp = await put(web, signed, b"abc", url=with_path(signed["url"], path.replace(key, other)))
        assert resp.status_code == REFUSED, other
        assert stored(seaweedfs, other) is None
    assert (await put(web, signed, b"abc")).status_code == 200
    # the PUT URL is no GET or DELETE of the same key
    assert (await web.get(signed["url"])).status_code == REFUSED
    assert (await web.delete(signed["url"])).status_code == REFUSED
    assert stored(seaweedfs, key) == b"abc"


async def test_tampered_and_expired_urls_are_refused_by_s3(client: Client, seaweedfs: SeaweedFS,
                                                          web: httpx.AsyncClient) -> None:
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="users/alice/doc.txt", Body=b"hello")
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="users/bob/doc.txt", Body=b"bob's")
    url = (await sign(client, "download", "alice", key="users/alice/doc.txt")).json["url"]
    assert (await web.get(url)).content == b"hello"
    retargeted = with_path(url, urlsplit(url).path.replace("/alice/", "/bob/"))
    assert (await web.get(retargeted)).status_code == REFUSED
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert (await web.get(with_query(url, **{"X-Amz-Signature": flipped}))).status_code == REFUSED

    upload = (await sign(client, "upload", "alice", key="users/alice/t.bin", size=4)).json
    sig = dict(parse_qsl(urlsplit(upload["url"]).query))["X-Amz-Signature"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for tampered in (with_query(upload["url"], **{"X-Amz-Signature": flipped}),
                     with_query(upload["url"], **{"X-Amz-Expires": "604800"}),
                     with_query(upload["url"], **{"X-Amz-Date": "20260101T000000Z"})):
        assert (await put(web, upload, b"tttt", url=tampered)).status_code == REFUSED
    assert stored(seaweedfs, "users/alice/t.bin") is None

    short_get = (await sign(client, "download", "alice", key="users/alice/doc.txt", expires_in=1)).json["url"]
    short_put = (await sign(client, "upload", "alice", key="users/alice/late.bin", size=4, expires_in=1)).json
    await asyncio.sleep(2.5)  # let both expire (S3 checks X-Amz-Date + X-Amz-Expires against its clock)
    for expired in (await web.get(short_get), await put(web, short_put, b"late")):
        assert expired.status_code == REFUSED and "expired" in expired.text.lower(), expired.text
    assert stored(seaweedfs, "users/alice/late.bin") is None


async def test_wrong_s3_keys_are_refused(seaweedfs: SeaweedFS, web: httpx.AsyncClient) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        seaweedfs.client(secret_key="wrong-secret-key-000000000000").list_objects_v2(Bucket=seaweedfs.bucket)
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    with pytest.raises(ClientError):
        stranger = seaweedfs.client(access_key="AKNOSUCHKEY0000", secret_key="x" * 30)
        stranger.list_objects_v2(Bucket=seaweedfs.bucket)
    seaweedfs.client().put_object(Bucket=seaweedfs.bucket, Key="users/alice/k.txt", Body=b"k")
    for over in ({"S3_SECRET_ACCESS_KEY": "wrong-secret-key-000000000000"},
                 {"S3_ACCESS_KEY_ID": "AKNOSUCHKEY0000", "S3_SECRET_ACCESS_KEY": "x" * 30}):
        forger = make_client(storage_env(seaweedfs, **over))
        url = (await sign(forger, "download", "alice", key="users/alice/k.txt")).json["url"]
        assert (await web.get(url)).status_code == REFUSED, over
        signed = (await sign(forger, "upload", "alice", key="users/alice/k2.txt", size=2)).json
        assert (await put(web, signed, b"k2")).status_code == REFUSED, over
    assert stored(seaweedfs, "users/alice/k2.txt") is None


def test_bucket_cors_and_lifecycle_rules_are_applied(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    doc = storage_rules.load_rules(CONFIG)
    applied = storage_rules.apply_bucket_rules(seaweedfs.endpoint, seaweedfs.bucket, seaweedfs.access_key,
                                               seaweedfs.secret_key, doc, ("http://app.test",))
    assert applied.cors and applied.lifecycle, applied.notes
    lifecycle = seaweedfs.client().get_bucket_lifecycle_configuration(Bucket=seaweedfs.bucket)["Rules"]
    assert {r["ID"] for r in lifecycle} == {"abort-incomplete-multipart", "expire-tmp"}
    rules = seaweedfs.client().get_bucket_cors(Bucket=seaweedfs.bucket)["CORSRules"]
    assert "http://app.test" in rules[0]["AllowedOrigins"] and "PUT" in rules[0]["AllowedMethods"]
    # the browser's preflight of the upload: a PUT that sets Content-Type (Content-Length it sets itself)
    ok = httpx.options(f"{seaweedfs.endpoint}/{seaweedfs.bucket}/users/x",
                       headers={"Origin": "http://app.test", "Access-Control-Request-Method": "PUT",
                                "Access-Control-Request-Headers": "content-type"},
                       trust_env=False)
    assert ok.status_code == 200 and ok.headers.get("access-control-allow-origin") in ("http://app.test", "*")
    allowed_headers = ok.headers.get("access-control-allow-headers", "").lower()
    assert "content-type" in allowed_headers or allowed_headers == "*", ok.headers
    denied = httpx.options(f"{seaweedfs.endpoint}/{seaweedfs.bucket}/users/x",
                           headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "PUT"},
                           trust_env=False)
    assert denied.status_code == 403
