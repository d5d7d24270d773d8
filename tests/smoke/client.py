"""A gateway client as an app would write one: JSON over HTTP, bearer tokens, nothing privileged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class User:
    label: str  #: "A" or "B" in verdict lines
    email: str
    password: str
    id: str = ""
    access_token: str = ""
    refresh_token: str = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base = base_url.rstrip("/")
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        merged = dict(headers or {})
        if token:
            merged["Authorization"] = f"Bearer {token}"
        return await self.http.request(method, f"{self.base}{path}", json=json, headers=merged)

    def doc_path(self, collection: str, doc_id: str = "") -> str:
        return f"/v1/collections/{collection}/documents" + (f"/{doc_id}" if doc_id else "")


def describe(r: httpx.Response) -> str:
    """``409 conflict: message`` from the API's error shape, or the status and a short body."""
    try:
        err = r.json().get("error")
    except ValueError:
        err = None
    if isinstance(err, dict):
        return f"{r.status_code} {err.get('code')}: {str(err.get('message'))[:120]}"
    return f"{r.status_code} {r.text[:120]!r}"
