"""Object storage: the gateway signs short-lived S3 URLs; file bytes never pass through it.

Keys are confined to ``users/{user_id}/`` for signed-in users (the admin key may sign any
key). An upload is a presigned PUT whose signature covers ``Content-Type`` and
``Content-Length``: the caller declares the exact size and type, the gateway refuses a
size over ``STORAGE_MAX_UPLOAD_BYTES`` before signing, and the storage server refuses
a body of another size or type, another key, or an expired URL. One protocol for every
target: R2 has no presigned POST (only GET, HEAD, PUT, DELETE), while SeaweedFS, MinIO,
R2 and S3 all check signed headers of a presigned PUT. Downloads are presigned GET URLs.
Both use SigV4 with path-style addressing, computed with hashlib/hmac (see
:class:`Signer` for why not botocore).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from worker.http import ApiError
from worker.principal import Principal
from worker.settings import Settings

MAX_KEY_BYTES = 1024  # S3's own limit
MIN_TTL, MAX_TTL = 1, 7 * 24 * 3600  # S3 refuses X-Amz-Expires above 7 days
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\Z")
_ISO8601 = "%Y-%m-%dT%H:%M:%SZ"
_SIGV4_STAMP = "%Y%m%dT%H%M%SZ"


def user_prefix(user_id: str) -> str:
    return f"users/{user_id}/"


def validate_key(key: Any) -> str:
    """A relative, normalised object key: no empty/``.``/``..`` segment, no control characters."""
    if not isinstance(key, str) or not key:
        raise ApiError(400, "invalid_key", "key must be a non-empty string")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ApiError(400, "invalid_key", f"key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/") or "\\" in key:
        raise ApiError(400, "invalid_key", "key must be relative and use '/' separators")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise ApiError(400, "invalid_key", "key must not contain control characters")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ApiError(400, "invalid_key", "key must not contain empty, '.' or '..' segments")
    return key


def authorize_key(principal: Principal, key: str) -> None:
    """Signed-in users may sign only keys under their own prefix; the admin key signs any."""
    if principal.is_admin:
        return
    if not principal.user_id or not key.startswith(user_prefix(principal.user_id)):
        raise ApiError(403, "forbidden", "key is outside your storage prefix")


def validate_content_type(value: Any) -> str:
    if value is None:
        return DEFAULT_CONTENT_TYPE
    if not isinstance(value, str) or not _CONTENT_TYPE.match(value):
        raise ApiError(400, "invalid_content_type", "content_type must look like type/subtype")
    return value


@dataclass(frozen=True, slots=True)
class Signer:
    """AWS Signature V4 for S3 presigned URLs, on the standard library alone.

    Same algorithm and output as botocore's ``S3SigV4QueryAuth``, signed headers included
    (tests compare both byte for byte), without botocore: Pyodide 0.28 does not ship it
    and vendoring it would add megabytes to the Worker for ~40 lines of hashing.
    """

    endpoint: str  # public S3 endpoint clients reach (signed host)
    bucket: str
    region: str
    access_key: str
    secret_key: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        endpoint = (settings.s3_public_endpoint or settings.s3_endpoint).rstrip("/")
        keys = settings.s3_access_key_id and settings.s3_secret_access_key
        if not (endpoint and settings.s3_bucket and keys):
            raise ApiError(503, "storage_unavailable", "object storage is not configured on this stack")
        return cls(endpoint, settings.s3_bucket, settings.s3_region or "us-east-1",
                   settings.s3_access_key_id, settings.s3_secret_access_key)

    def object_url(self, key: str | None) -> str:
        bucket = f"{self.endpoint}/{quote(self.bucket, safe='')}"
        return bucket if key is None else f"{bucket}/{quote(key, safe='/~')}"

    def _scope(self, stamp: str) -> str:
        return f"{stamp[:8]}/{self.region}/s3/aws4_request"

    def _signature(self, stamp: str, string_to_sign: str) -> str:
        key = f"AWS4{self.secret_key}".encode()
        for part in (stamp[:8], self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def presign(self, method: str, key: str | None, expires: int, *, headers: Mapping[str, str] | None = None,
                now: dt.datetime | None = None, query: Mapping[str, str] | None = None) -> str:
        """A query-string-signed URL (``key=None`` addresses the bucket, e.g. HEAD for health).

        ``headers`` are signed too: the server recomputes the signature from the request's own
        values of these headers, so a request without them, or with other values, is refused.
        """
        stamp = (now or dt.datetime.now(dt.UTC)).strftime(_SIGV4_STAMP)
        url = self.object_url(key)
        parts = urlsplit(url)
        signed = {"host": _host(parts)}
        signed.update({name.lower(): " ".join(value.split()) for name, value in (headers or {}).items()})
        names = sorted(signed)
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.access_key}/{self._scope(stamp)}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(int(expires)),
            "X-Amz-SignedHeaders": ";".join(names),
            **(query or {}),  # e.g. a bucket listing's list-type/prefix: signed like the rest of the query
        }
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                         for k, v in sorted(params.items()))
        canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
        canonical = "\n".join([method.upper(), parts.path or "/", query, canonical_headers,
                               params["X-Amz-SignedHeaders"], "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, self._scope(stamp),
                             hashlib.sha256(canonical.encode()).hexdigest()])
        return f"{url}?{query}&X-Amz-Signature={self._signature(stamp, to_sign)}"


def _host(parts: SplitResult) -> str:
    """The Host header value: default ports are dropped, as HTTP clients send it."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def clamp_ttl(requested: Any, settings: Settings) -> int:
    """The URL lifetime: the caller may shorten the configured one, never lengthen it."""
    ceiling = max(MIN_TTL, min(settings.storage_url_ttl, MAX_TTL))
    if requested is None:
        return ceiling
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < MIN_TTL:
        raise ApiError(400, "invalid_expires_in", "expires_in must be a positive integer (seconds)")
    return min(requested, ceiling)


def validate_size(value: Any, settings: Settings) -> int:
    """The upload's exact byte length: required, since the signature pins ``Content-Length``."""
    if value is None:
        raise ApiError(400, "missing_field", "field 'size' is required (the file's exact length in bytes)")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiError(400, "invalid_size", "size must be a non-negative integer (bytes)")
    limit = settings.storage_max_upload_bytes
    if value > limit:
        raise ApiError(413, "too_large", f"uploads are limited to {limit} bytes")
    return value


def upload_url(principal: Principal, body: dict[str, Any], settings: Settings,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """A presigned PUT for exactly this key, content type and size; everything checked before signing."""
    key = validate_key(body.get("key"))
    authorize_key(principal, key)
    content_type = validate_content_type(body.get("content_type"))
    size = validate_size(body.get("size"), settings)
    ttl = clamp_ttl(body.get("expires_in"), settings)
    signer = Signer.from_settings(settings)
    now = now or dt.datetime.now(dt.UTC)
    url = signer.presign("PUT", key, ttl, headers={"Content-Type": content_type, "Content-Length": str(size)},
                         now=now)
    # Content-Length is not listed: browsers refuse to set it and every client sends the body's length
    return {"method": "PUT", "url": url, "headers": {"Content-Type": content_type}, "key": key,
            "content_type": content_type, "size": size,
            "expires_at": (now + dt.timedelta(seconds=ttl)).strftime(_ISO8601)}


def download_url(principal: Principal, body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    key = validate_key(body.get("key"))
    authorize_key(principal, key)
    ttl = clamp_ttl(body.get("expires_in"), settings)
    now = dt.datetime.now(dt.UTC)
    return {"method": "GET", "url": Signer.from_settings(settings).presign("GET", key, ttl), "key": key,
            "expires_at": (now + dt.timedelta(seconds=ttl)).strftime(_ISO8601)}
