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


def test_an_upload_form_pins_key_type_and_the_declared_size() -> None:
    body = {"key": "users/alice/a.png", "content_type": "image/png", "size": 10, "expires_in": 60}
    form = storage.upload_form(Principal("alice"), body, SETTINGS, now=WHEN)
    assert form["url"] == "http://127.0.0.1:8333/files" and form["max_bytes"] == 10
    conditions = storage.decode_policy(form["fields"])["conditions"]
    assert {"key": "users/alice/a.png"} in conditions and {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 0, 10] in conditions
    with pytest.raises(ApiError) as err:
        storage.upload_form(Principal("alice"), {**body, "size": 1001}, SETTINGS)
    assert err.value.status == 413


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
    """Our stdlib SigV4 against botocore's S3 signers, same clock: identical URL and POST signature."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when.replace(tzinfo=None))
    signer = storage.Signer("http://127.0.0.1:8333", "bucket", "us-east-1", "AKEXAMPLE", "secret/with+chars")
    creds = Credentials("AKEXAMPLE", "secret/with+chars")
    for key in ("users/u1/a b/ü.txt", "users/u1/~x/(1)!.png", None):
        for method in ("GET", "HEAD", "PUT"):
            request = AWSRequest(method=method, url=signer.object_url(key))
            botocore.auth.S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=900).add_auth(request)
            assert signer.presign(method, key, 900, now=when) == request.url
    form = signer.presign_post("users/u1/f.bin", "image/png", 1000, 60, now=when)
    request = AWSRequest(method="POST", url=signer.object_url(None))
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    post_auth = botocore.auth.S3SigV4PostAuth(creds, "s3", "us-east-1")
    assert form["fields"]["x-amz-signature"] == post_auth.signature(form["fields"]["policy"], request)
    assert form["fields"]["x-amz-credential"] == post_auth.scope(request)
