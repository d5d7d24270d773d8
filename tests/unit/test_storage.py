"""storage.py without an S3 server: key rules, lifetimes, and the SigV4 signer against botocore's.

What S3 itself accepts and refuses (tampered URLs, wrong keys, size limits) is proven against a
real SeaweedFS in tests/integration/test_storage.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from worker import storage
from worker.http import ApiError
from worker.principal import Principal
from worker.settings import Settings

SETTINGS = Settings(admin_key="k", collections_json="{}", s3_endpoint="http://127.0.0.1:8333",
                    s3_bucket="files", s3_access_key_id="AKEXAMPLE", s3_secret_access_key="secret/with+chars",
                    storage_url_ttl=900, storage_max_upload_bytes=1000)
WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize("key", ["", "/users/alice/x", "users/alice/../bob/x", "users/alice//x",
                                 "users/alice/./x", "users/alice/x\n", "users\\alice\\x",
                                 "users/alice/" + "k" * 1100, 42, None])
def test_keys_that_could_escape_or_confuse_are_refused(key: Any) -> None:
    with pytest.raises(ApiError) as err:
        storage.validate_key(key)
    assert (err.value.status, err.value.code) == (400, "invalid_key")


def test_a_user_signs_only_under_their_own_prefix() -> None:
    storage.authorize_key(Principal("alice"), "users/alice/a/b.png")
    storage.authorize_key(Principal(None, is_admin=True), "users/bob/x")
    for principal, key in ((Principal("bob"), "users/alice/x"), (Principal("bob"), "users/bobby/x"),
                           (Principal(None), "users/None/x")):
        with pytest.raises(ApiError) as err:
            storage.authorize_key(principal, key)
        assert err.value.status == 403


def test_content_types_and_lifetimes() -> None:
    assert storage.validate_content_type(None) == storage.DEFAULT_CONTENT_TYPE
    assert storage.validate_content_type("image/svg+xml") == "image/svg+xml"
    for bad in ("nonsense", "text/html; charset=utf-8", 7):
        with pytest.raises(ApiError):
            storage.validate_content_type(bad)
    assert storage.clamp_ttl(None, SETTINGS) == 900
    assert storage.clamp_ttl(60, SETTINGS) == 60
    assert storage.clamp_ttl(10**9, SETTINGS) == 900  # never longer than configured
    for bad in (0, -1, True, "60"):
        with pytest.raises(ApiError):
            storage.clamp_ttl(bad, SETTINGS)


def test_an_upload_url_is_a_put_that_signs_the_exact_type_and_size() -> None:
    body = {"key": "users/alice/a.png", "content_type": "image/png", "size": 10, "expires_in": 60}
    signed = storage.upload_url(Principal("alice"), body, SETTINGS, now=WHEN)
    assert signed["method"] == "PUT" and signed["headers"] == {"Content-Type": "image/png"}
    assert (signed["key"], signed["content_type"], signed["size"]) == ("users/alice/a.png", "image/png", 10)
    assert signed["expires_at"] == "2026-03-04T05:07:07Z"
    url = urlsplit(signed["url"])
    assert url.path == "/files/users/alice/a.png"
    query = dict(parse_qsl(url.query))
    assert query["X-Amz-SignedHeaders"] == "content-length;content-type;host"
    assert query["X-Amz-Expires"] == "60"
    pinned = {"Content-Type": "image/png", "Content-Length": "10"}
    signer = storage.Signer.from_settings(SETTINGS)
    assert signed["url"] == signer.presign("PUT", "users/alice/a.png", 60, headers=pinned, now=WHEN)
    default = storage.upload_url(Principal("alice"), {"key": "users/alice/b", "size": 0}, SETTINGS, now=WHEN)
    assert default["content_type"] == storage.DEFAULT_CONTENT_TYPE and default["size"] == 0


@pytest.mark.parametrize(("size", "status", "code"), [
    (None, 400, "missing_field"), (-1, 400, "invalid_size"), (1.5, 400, "invalid_size"),
    (True, 400, "invalid_size"), ("10", 400, "invalid_size"), (1001, 413, "too_large"),
])
def test_an_upload_needs_its_exact_size_within_the_limit(size: Any, status: int, code: str) -> None:
    body = {"key": "users/alice/a.png"} if size is None else {"key": "users/alice/a.png", "size": size}
    with pytest.raises(ApiError) as err:
        storage.upload_url(Principal("alice"), body, SETTINGS, now=WHEN)
    assert (err.value.status, err.value.code) == (status, code)
    assert storage.upload_url(Principal("alice"), {**body, "size": 1000}, SETTINGS)["size"] == 1000


def test_nothing_is_signed_for_a_key_outside_the_callers_prefix() -> None:
    for principal in (Principal("bob"), Principal(None)):
        with pytest.raises(ApiError) as err:
            storage.upload_url(principal, {"key": "users/alice/a.png", "size": 1}, SETTINGS)
        assert err.value.status == 403
    admin = storage.upload_url(Principal(None, is_admin=True), {"key": "tmp/a", "size": 1}, SETTINGS)
    assert urlsplit(admin["url"]).path == "/files/tmp/a"


#: Cloudflare's R2 docs (cloudflare-docs, src/content/docs/r2/api/s3/presigned-urls.mdx, "Supported
#: HTTP methods"): presigned URLs support GET, HEAD, PUT and DELETE; "POST, which performs uploads
#: via native HTML forms, is not currently supported."
R2_PRESIGNED_METHODS = {"GET", "HEAD", "PUT", "DELETE"}


def test_every_url_the_gateway_signs_is_one_r2_accepts() -> None:
    """Prod's bucket is R2: an upload or download must be a query-signed request of a method R2 presigns.

    The same page: a caller must send the signed headers with the signed values, or R2 answers
    403 SignatureDoesNotMatch; SeaweedFS (weed/s3api/auth_signature_v4.go, extractSignedHeaders)
    and MinIO (cmd/signature-v4-utils.go, extractSignedHeaders: content-length from the request's
    own length) rebuild the canonical request from the request's headers the same way. So the
    upload signs content-type and content-length, and the answer lists the header a client sets.
    """
    upload = storage.upload_url(Principal("alice"), {"key": "users/alice/a", "size": 3}, SETTINGS, now=WHEN)
    download = storage.download_url(Principal("alice"), {"key": "users/alice/a"}, SETTINGS)
    for signed in (upload, download):
        assert signed["method"] in R2_PRESIGNED_METHODS and "fields" not in signed
        query = dict(parse_qsl(urlsplit(signed["url"]).query))
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Signature"]
    assert dict(parse_qsl(urlsplit(upload["url"]).query))["X-Amz-SignedHeaders"].split(";") == [
        "content-length", "content-type", "host"]
    assert upload["headers"] == {"Content-Type": storage.DEFAULT_CONTENT_TYPE}


def test_download_urls_are_path_style_and_signed_for_the_lifetime() -> None:
    signed = storage.download_url(Principal("alice"), {"key": "users/alice/a b.txt"}, SETTINGS)
    url = urlsplit(signed["url"])
    assert url.path == "/files/users/alice/a%20b.txt"
    assert dict(parse_qsl(url.query))["X-Amz-Expires"] == "900"


def test_nothing_is_signed_without_storage_settings() -> None:
    with pytest.raises(ApiError) as err:
        storage.download_url(Principal("alice"), {"key": "users/alice/x"}, Settings(admin_key="k",
                                                                                    collections_json="{}"))
    assert (err.value.status, err.value.code) == (503, "storage_unavailable")


def test_signer_matches_botocore_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our stdlib SigV4 against botocore's S3 query signer, same clock: identical URLs, signed headers too."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when.replace(tzinfo=None))
    signer = storage.Signer("http://127.0.0.1:8333", "bucket", "us-east-1", "AKEXAMPLE", "secret/with+chars")
    creds = Credentials("AKEXAMPLE", "secret/with+chars")
    upload_headers = {"Content-Type": "image/svg+xml", "Content-Length": "1048576"}
    spaced = {"Content-Type": "text/plain", "Content-Length": "0", "X-Amz-Meta-Note": "  two   words "}
    for key in ("users/u1/a b/ü.txt", "users/u1/~x/(1)!.png", None):
        cases = (("GET", {}), ("HEAD", {}), ("PUT", {}), ("PUT", upload_headers), ("PUT", spaced))
        for method, headers in cases:
            request = AWSRequest(method=method, url=signer.object_url(key), headers=dict(headers))
            botocore.auth.S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=900).add_auth(request)
            ours = signer.presign(method, key, 900, headers=headers, now=when)
            assert ours == request.url, (method, headers)
    https = storage.Signer("https://acc.r2.cloudflarestorage.com", "b", "auto", "AK", "SK")
    request = AWSRequest(method="PUT", url=https.object_url("users/u/x"), headers=dict(upload_headers))
    botocore.auth.S3SigV4QueryAuth(Credentials("AK", "SK"), "s3", "auto", expires=60).add_auth(request)
    assert https.presign("PUT", "users/u/x", 60, headers=upload_headers, now=when) == request.url
