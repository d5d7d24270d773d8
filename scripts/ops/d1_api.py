"""A small Cloudflare D1 REST client for the runbooks: create, get, query, export, import.

Why not wrangler: the ops commands run where only Python is installed, and the
same client must talk to a loopback fake in tests (``api_base`` /
``TELESTACK_CLOUDFLARE_API_BASE``). Every call sends ``Authorization: Bearer
<token>``; every failure is an :class:`OpsError` carrying Cloudflare's own
error messages (the envelope's ``errors[].message``), never a traceback and
never the token.

Endpoints (https://developers.cloudflare.com/api/resources/d1/subresources/database/):

- ``POST /accounts/{a}/d1/database`` ``{"name"}`` -> ``result.uuid``;
- ``GET  /accounts/{a}/d1/database/{id}`` -> ``result.name`` ...;
- ``POST .../{id}/query`` ``{"sql", "params"}`` -> ``result[0].results`` (rows as objects);
- ``POST .../{id}/export`` ``{"output_format": "polling"[, "current_bookmark"]}`` until
  ``status == "complete"``, then GET ``result.signed_url`` (the SQL dump);
- ``POST .../{id}/import``, the three-step protocol of
  https://developers.cloudflare.com/api/resources/d1/subresources/database/methods/import/ and
  https://developers.cloudflare.com/d1/tutorials/import-to-d1-with-rest-api/ :
  ``{"action": "init", "etag": md5}`` -> ``{upload_url, filename}``; PUT the bytes to
  ``upload_url`` (R2 answers the md5 as ``ETag``, which must match); ``{"action": "ingest",
  "etag", "filename"}`` -> ``{status, at_bookmark}``; ``{"action": "poll", "current_bookmark"}``
  until ``status`` is ``complete`` (or ``error``, with ``error`` the reason). A poll that arrives
  after the import has ended can instead be answered ``{"success": false, "error": "Not currently
  importing anything."}`` (HTTP 200, envelope ``success: true``; Cloudflare's own tutorial loop
  stops on it). That answer is the same whether the import committed or rolled back, so it is
  reported as :data:`IMPORT_ENDED_UNREPORTED` and the caller must verify the data (the restore
  compares every table's count and rows). An import blocks the database while it runs and D1 runs
  it in its own transaction, so the SQL must not hold ``BEGIN``/``COMMIT``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.ops.console import ExitStatus, OpsError

API_BASE = "https://api.cloudflare.com/client/v4"
#: D1's answer to a poll when no import is running (any more): it does not say how the import ended
NOT_IMPORTING = "Not currently importing anything."
#: the ``status`` :meth:`D1Api.import_sql` returns for an import that ended without D1 reporting how
IMPORT_ENDED_UNREPORTED = "ended-unreported"
Progress = Callable[[str], None]


def api_base(explicit: str = "") -> str:
    """The API root: the Target's value, else ``TELESTACK_CLOUDFLARE_API_BASE`` (tests), else Cloudflare."""
    return (explicit or os.environ.get("TELESTACK_CLOUDFLARE_API_BASE") or API_BASE).rstrip("/")


def _messages(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    texts = [f"{e.get('message', '')} (code {e.get('code')})" if isinstance(e, Mapping) else str(e)
             for e in errors or []]
    return "; ".join(texts) or "no error message"


@dataclass
class D1Api:
    """One account's D1 databases. ``client`` is injectable (``httpx.MockTransport`` in unit tests)."""

    account_id: str
    api_token: str = field(repr=False)
    base: str = ""
    client: httpx.Client | None = None
    #: longest pause between polls; the first ones are shorter (a small import is done in a second)
    poll_seconds: float = 2.0
    max_polls: int = 900

    def __post_init__(self) -> None:
        self.base = api_base(self.base)
        self._http = self.client or httpx.Client(timeout=60)

    def close(self) -> None:
        """Close the HTTP client when this object made it (an injected one belongs to the caller)."""
        if self.client is None:
            self._http.close()

    # --- plumbing -------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base}/accounts/{self.account_id}/d1/database{path}"

    def _call(self, method: str, path: str, what: str, body: Mapping[str, Any] | None = None) -> Any:
        """One API call; returns the envelope's ``result`` or raises with Cloudflare's messages."""
        headers = {"Authorization": f"Bearer {self.api_token}"}
        try:
            response = self._http.request(method, self._url(path), json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise OpsError(f"D1 {what}: Cloudflare API unreachable ({type(exc).__name__})",
                           ExitStatus.DEPENDENCY_UNHEALTHY) from None
        try:
            envelope = response.json()
        except ValueError:
            raise OpsError(f"D1 {what}: HTTP {response.status_code} with a non-JSON body",
                           ExitStatus.DEPENDENCY_UNHEALTHY) from None
        if response.status_code >= 400 or not isinstance(envelope, Mapping) or not envelope.get("success"):
            raise OpsError(f"D1 {what} refused (HTTP {response.status_code}): {_messages(envelope)}",
                           ExitStatus.DEPENDENCY_UNHEALTHY)
        return envelope.get("result")

    def _wait(self, attempt: int) -> None:
        if self.poll_seconds:
            time.sleep(min(self.poll_seconds, 0.25 * 2**attempt))

    # --- databases ------------------------------------------------------------------------------

    def create(self, name: str) -> str:
        """A new, empty database; returns its uuid."""
        result = self._call("POST", "", f"create database {name!r}", {"name": name}) or {}
        uuid = str(result.get("uuid") or "")
        if not uuid:
            raise OpsError(f"D1 create database {name!r}: the answer has no uuid")
        return uuid

    def get(self, database_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/{database_id}", f"get database {database_id}") or {})

    def query(self, database_id: str, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of ONE statement as objects (column name -> value)."""
        result = self._call("POST", f"/{database_id}/query", "query", {"sql": sql, "params": list(params)})
        if not result:
            return []
        return [dict(r) for r in result[0].get("results") or []]

    # --- export / import ------------------------------------------------------------------------

    def export_sql(self, database_id: str, progress: Progress) -> str:
        """The database as a SQL dump (D1's polling export, then its signed URL)."""
        body: dict[str, Any] = {"output_format": "polling"}
        for attempt in range(self.max_polls):
            result = self._call("POST", f"/{database_id}/export", "export", body) or {}
            status = result.get("status")
            if status == "complete":
                url = (result.get("result") or {}).get("signed_url")
                if not url:
                    raise OpsError("D1 export: complete but no signed_url")
                try:
                    dump = self._http.get(url)
                except httpx.HTTPError as exc:
                    raise OpsError(f"D1 export: dump download failed ({type(exc).__name__})",
                                   ExitStatus.DEPENDENCY_UNHEALTHY) from None
                if dump.status_code != 200:
                    raise OpsError(f"D1 export: dump download answered HTTP {dump.status_code}",
                                   ExitStatus.DEPENDENCY_UNHEALTHY)
                return dump.text
            if status == "error":
                raise OpsError(f"D1 export failed: {result.get('error')}")
            progress(f"  D1 export: {status or 'active'}")
            body = {"output_format": "polling", "current_bookmark": result.get("at_bookmark")}
            self._wait(attempt)
        raise OpsError("D1 export did not complete in time")

    def import_sql(self, database_id: str, sql: bytes, progress: Progress) -> dict[str, Any]:
        """init -> PUT to the upload URL (ETag checked) -> ingest -> poll; returns the final result.

        ``status`` is ``complete``, or :data:`IMPORT_ENDED_UNREPORTED` when D1 answered a poll with
        :data:`NOT_IMPORTING` (the import ended; whether it committed must be checked by reading the
        data back). An import D1 reports as failed raises with D1's reason (exit 4: the SQL, not the
        API, is wrong).
        """
        etag = hashlib.md5(sql).hexdigest()  # noqa: S324 - the protocol's content check, not security
        path = f"/{database_id}/import"
        init = self._call("POST", path, "import init", {"action": "init", "etag": etag}) or {}
        upload_url, filename = init.get("upload_url"), init.get("filename")
        if not upload_url or not filename:
            raise OpsError("D1 import init: the answer has no upload_url/filename")
        progress(f"  D1 import: uploading {len(sql)} bytes")
        try:
            put = self._http.put(str(upload_url), content=sql)
        except httpx.HTTPError as exc:
            raise OpsError(f"D1 import upload failed ({type(exc).__name__})",
                           ExitStatus.DEPENDENCY_UNHEALTHY) from None
        returned = (put.headers.get("etag") or "").strip('"')
        if put.status_code >= 300 or returned != etag:
            raise OpsError(f"D1 import upload: HTTP {put.status_code}, ETag {returned or '(none)'} "
                           f"is not the file's md5 {etag}", ExitStatus.VERIFICATION_FAILED)
        result = self._call("POST", path, "import ingest",
                            {"action": "ingest", "etag": etag, "filename": filename}) or {}
        bookmark = result.get("at_bookmark")
        for attempt in range(self.max_polls):
            for message in result.get("messages") or []:
                progress(f"  D1 import: {message}")
            status = result.get("status")
            if status == "complete":
                return dict(result)
            if status == "error":
                raise OpsError(f"D1 import failed: {result.get('error') or 'no reason given'}",
                               ExitStatus.VERIFICATION_FAILED)
            if result.get("success") is False:
                if result.get("error") == NOT_IMPORTING:
                    progress("  D1 import: no longer running and D1 does not say how it ended; "
                             "the data must be verified")
                    return {"status": IMPORT_ENDED_UNREPORTED, "at_bookmark": bookmark}
                raise OpsError(f"D1 import failed: {result.get('error') or 'no reason given'}",
                               ExitStatus.VERIFICATION_FAILED)
            bookmark = result.get("at_bookmark") or bookmark
            if not bookmark:
                raise OpsError(f"D1 import: status {status!r} without a bookmark to poll")
            progress(f"  D1 import: {status or 'active'}")
            self._wait(attempt)
            result = self._call("POST", path, "import poll",
                                {"action": "poll", "current_bookmark": bookmark}) or {}
        raise OpsError("D1 import did not complete in time")


__all__ = ["API_BASE", "IMPORT_ENDED_UNREPORTED", "NOT_IMPORTING", "D1Api", "api_base"]
