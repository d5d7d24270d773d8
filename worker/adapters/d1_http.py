"""The Database port on the D1 HTTP API, for ops commands (migrate, seed, backup) against a real D1.

``POST {base}/accounts/{account}/d1/database/{database}/query`` with a bearer
API token. One statement is sent as ``{"sql", "params"}``; a batch as
``{"batch": [{"sql", "params"}, ...]}``, which D1 executes as one transaction,
so :meth:`batch` keeps the port's all-or-nothing contract. The response is the
Cloudflare envelope ``{"success", "errors": [{"code","message"}], "messages",
"result": [{"results": [...], "success", "meta": {"changes", "last_row_id", ...}}]}``.
"""

from __future__ import annotations

from typing import Any

from worker import jsoncodec
from worker.database import DatabaseError, Params, Result, Statement
from worker.outbound import HttpClient

API_BASE = "https://api.cloudflare.com/client/v4"


class D1HttpDatabase:
    def __init__(
        self,
        http: HttpClient,
        *,
        account_id: str,
        database_id: str,
        api_token: str,
        base_url: str = API_BASE,
        timeout: float = 30.0,
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/accounts/{account_id}/d1/database/{database_id}/query"
        self._headers = {"authorization": f"Bearer {api_token}", "content-type": "application/json"}
        self._timeout = timeout

    async def execute(self, sql: str, params: Params = ()) -> Result:
        return (await self._post({"sql": sql, "params": list(params)}))[0]

    async def batch(self, statements: list[Statement]) -> list[Result]:
        if not statements:
            return []
        body = {"batch": [{"sql": st.sql, "params": list(st.params)} for st in statements]}
        return await self._post(body)

    async def _post(self, body: dict[str, Any]) -> list[Result]:
        response = await self._http.request(
            "POST", self._url, headers=self._headers, body=jsoncodec.dumps_bytes(body), timeout=self._timeout
        )
        try:
            envelope = jsoncodec.loads(response.body)
        except ValueError:
            raise DatabaseError(f"D1 HTTP API answered {response.status} with a non-JSON body") from None
        if response.status >= 400 or not envelope.get("success", False):
            messages = (
                "; ".join(str(e.get("message", e)) for e in envelope.get("errors") or []) or "unknown error"
            )
            raise DatabaseError(
                f"D1 HTTP API error ({response.status}): {messages}",
                constraint="constraint failed" in messages or "SQLITE_CONSTRAINT" in messages,
            )
        results = []
        for item in envelope.get("result") or []:
            meta = item.get("meta") or {}
            last = meta.get("last_row_id")
            results.append(
                Result(
                    rows=list(item.get("results") or []),
                    changes=int(meta.get("changes") or 0),
                    last_row_id=int(last) if last else None,
                )
            )
        return results
