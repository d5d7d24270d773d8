"""The stand-in's HTTP layer: a raw ASGI app with the core's transport rules.

Raw ASGI rather than Starlette: the core's observable transport is unusual
(``text/html`` error bodies ending in a newline, its own api-key and
``cdi-version`` rules, ``/appid-<id>/<tenant>`` prefixes resolved per route),
and each of those is one short function here instead of a fight with a
framework's defaults. uvicorn serves it.

Rules reproduced from the core (``WebserverAPI``): api key from ``api-key``,
else ``Authorization: Bearer <k>`` or the raw ``Authorization`` value → 401
``Invalid API key``; ``cdi-version`` optional (newest when absent), malformed
or unsupported → 400; unknown path → 404 ``Not found``; known path, other
method → 405 ``Method not supported``; business outcomes are 200 + ``status``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from infra.standins.supertokens.config import StandinConfig

log = logging.getLogger("supertokens_standin")

#: every CDI version core 12.1.1 lists (its coreDriverInterfaceSupported.json), oldest first: an SDK pinned
#: to an older CDI checks ``/apiversion`` for its own and refuses a core that does not list it. Answers
#: follow 5.6 (V5 tokens, core-side refresh rotation), which the SDKs of 5.x read unchanged.
SUPPORTED_CDI_VERSIONS = ("2.7", "2.8", "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15", "2.16",
                          "2.17", "2.18", "2.19", "2.20", "2.21", "3.0", "3.1", "4.0", "5.0", "5.1", "5.2",
                          "5.3", "5.4", "5.5", "5.6")
_VERSION = re.compile(r"^\d+\.\d+$")
_SEGMENT = re.compile(r"^[a-z0-9-]+$")


class TextError(Exception):
    """A transport-level error: status + the core's plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> TextError:
    return TextError(400, message)


@dataclass(slots=True)
class Call:
    method: str
    app_id: str
    tenant_id: str
    query: dict[str, str]
    body: bytes
    cdi_version: str
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError:
            raise bad_request("Invalid Json Input") from None
        if not isinstance(value, dict):
            raise bad_request("Invalid Json Input")
        return value

    def param(self, name: str) -> str:
        value = self.query.get(name)
        if value is None:
            raise bad_request(f"Field name '{name}' is missing in GET request")
        return value


@dataclass(slots=True)
class Reply:
    status: int
    body: Any  # dict → JSON, str → text
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    handlers: dict[str, Handler]
    check_api_key: bool = True
    version_needed: bool = True
    #: app-level APIs (no <tenantId> in the spec path) may only be called on the public tenant
    public_tenant_only: bool = False


def ok(body: dict[str, Any]) -> Reply:
    return Reply(200, body)


class StandinApp:
    """ASGI callable: resolves prefixes, enforces api key and cdi-version, dispatches."""

    def __init__(self, config: StandinConfig, endpoints: dict[str, Endpoint]) -> None:
        self.config = config
        self.endpoints = endpoints

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            reply = await self.dispatch(scope["method"], scope["path"], scope.get("query_string", b""),
                                        headers, body)
        except TextError as exc:
            reply = Reply(exc.status, exc.message)
        except Exception:  # the core answers 500 with a text body, never a trace
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            reply = Reply(500, "Internal Error")
        await _send(send, reply)

    async def dispatch(self, method: str, path: str, raw_query: bytes, headers: dict[str, str],
                       body: bytes) -> Reply:
        endpoint, api_path, app_id, tenant_id = self._resolve(path)
        if endpoint.check_api_key:
            self._check_api_key(headers)
        version = self._cdi_version(headers) if endpoint.version_needed else SUPPORTED_CDI_VERSIONS[-1]
        if app_id != "public" or tenant_id != "public":
            # only the default app and tenant exist here (the core: TenantOrAppNotFoundException)
            raise bad_request(
                f"AppId or tenantId not found => TenantIdentifier app={app_id} tenant={tenant_id}")
        handler = endpoint.handlers.get(method)
        if handler is None:
            raise TextError(405, "Method not supported")
        query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
        return await handler(Call(method, app_id, tenant_id, query, body, version, headers))

    def _resolve(self, path: str) -> tuple[Endpoint, str, str, str]:
        """Split ``[/appid-<app>][/<tenant>]<api path>``; both default to ``public``."""
        if len(path) > 1:
            path = path.rstrip("/")
        segments = path.split("/")[1:]
        app_id = "public"
        if segments and segments[0].lower().startswith("appid-"):
            app_id = segments.pop(0)[6:].lower() or "public"
        for tenant_taken in (False, True):
            rest = segments[1:] if tenant_taken else segments
            if tenant_taken and not (segments and _SEGMENT.match(segments[0].lower())):
                break
            api_path = "/" + "/".join(rest)
            endpoint = self.endpoints.get(api_path)
            if endpoint is not None:
                tenant_id = segments[0].lower() if tenant_taken else "public"
                if endpoint.public_tenant_only and tenant_id != "public":
                    raise TextError(403, "Only public tenantId can call this app specific API")
                return endpoint, api_path, app_id, tenant_id
        raise TextError(404, "Not found")

    def _check_api_key(self, headers: dict[str, str]) -> None:
        keys = self.config.api_keys
        if not keys:
            return
        key = headers.get("api-key")
        if key is None and "authorization" in headers:
            auth = headers["authorization"]
            key = auth[7:] if auth.lower().startswith("bearer ") else auth
        if key is None or key.strip() not in keys:
            raise TextError(401, "Invalid API key")

    def _cdi_version(self, headers: dict[str, str]) -> str:
        value = headers.get("cdi-version")
        if value is None:
            return SUPPORTED_CDI_VERSIONS[-1]
        value = value.strip()
        if not _VERSION.match(value):
            raise bad_request(f"cdi-version {value} is invalid")
        if value not in SUPPORTED_CDI_VERSIONS:
            raise bad_request(f"cdi-version {value} not supported")
        return value


async def _send(send: Any, reply: Reply) -> None:
    if isinstance(reply.body, str):
        payload = (reply.body + "\n").encode()
        ctype = "text/html; charset=UTF-8"
    else:
        payload = (json.dumps(reply.body, separators=(",", ":")) + "\n").encode()
        ctype = "application/json; charset=UTF-8"
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
