"""Realtime: publish committed outbox events to Centrifugo, and decide who may subscribe to what.

Channels (one Centrifugo namespace per collection, named after it):

============  ==========================  ==========================  =========================
access        per-document channel        per-collection channel      who may subscribe
============  ==========================  ==========================  =========================
private       ``c:{id}#{owner}``          ``c:*#{owner}``             the owner only (user-limited)
shared-read   ``c:{id}``                  ``c:*``                     any signed-in user
admin         ``c:{id}``                  ``c:*``                     admin (subscription token)
============  ==========================  ==========================  =========================

Every event also goes to ``c:*``, which in a private or admin namespace is the
admin firehose: nobody can subscribe to it without a subscription token, and
only the admin is given one. Centrifugo itself enforces user-limited channels
(``#user``): a connection whose ``sub`` is not listed after ``#`` is refused
with 103 whatever channel name it asks for.

Delivery: the document core appends an outbox row in the write's batch and calls
:func:`schedule_publish`; after the handler, :func:`drain` publishes pending
rows in commit order (``seq``) with one ``/api/batch`` call of ``broadcast``
commands and marks them sent. A failed publish leaves the row pending with
``attempts``/``last_error``; the next request, the cron trigger or the runbook
drains it. Each broadcast carries an idempotency key derived from the row, so a
row published twice (crash between publish and mark, or two concurrent drains)
reaches subscribers once while Centrifugo remembers the key (5 minutes). A row that
failed ``MAX_ATTEMPTS`` times stops being retried (it stays pending with its
``last_error`` for an operator) so it cannot block newer events forever.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker import jsoncodec
from worker.database import Database, Statement
from worker.outbound import HttpClient, HttpError
from worker.principal import Principal
from worker.settings import Settings

if TYPE_CHECKING:
    from worker.app import Context, Gateway

log = logging.getLogger("telestack.realtime")

#: connection and subscription tokens live this long; clients fetch a new one from /v1/realtime/token
TOKEN_TTL_SECONDS = 600
#: Centrifugo API call timeout: a slow realtime tier must not stall writes for long
API_TIMEOUT_SECONDS = 2.0
#: a row that failed this many times is left for an operator (it no longer blocks the queue head)
MAX_ATTEMPTS = 25
#: D1 allows 100 bound parameters per statement
_PARAMS_PER_STATEMENT = 90
#: connection ``sub`` for the admin key, which has no user id (cannot collide with a real user id)
ADMIN_SUB = "$admin"
ALL = "*"
# ids and user ids that are safe inside a channel name (no ':', '#', ',', '$', whitespace)
_SAFE = re.compile(r"[A-Za-z0-9_.@=+~-]{1,128}\Z")


class RealtimeError(Exception):
    """Centrifugo could not be reached or refused the call (never contains the API key)."""


# ---------------------------------------------------------------- channels and authorization


def collection_access(gateway: Gateway) -> dict[str, str]:
    """Collection name -> access rule, from the collections registry of the document core."""
    cached = gateway.cache.get("realtime.access")
    if cached is None:
        from worker.collections import registry_for

        cached = gateway.cache["realtime.access"] = {c.name: c.access for c in registry_for(gateway)}
    return cached


def event_channels(access: str, collection: str, doc_id: str, owner_id: str | None) -> list[str]:
    """Every channel an event of this document is broadcast to (see the module table)."""
    channels: list[str] = []
    doc_ok = bool(_SAFE.match(doc_id))
    if access == "private":
        if owner_id and _SAFE.match(owner_id):
            if doc_ok:
                channels.append(f"{collection}:{doc_id}#{owner_id}")
            channels.append(f"{collection}:{ALL}#{owner_id}")
    elif doc_ok:
        channels.append(f"{collection}:{doc_id}")
    channels.append(f"{collection}:{ALL}")
    return channels


@dataclass(frozen=True, slots=True)
class Grant:
    """A channel the caller may subscribe to; ``token`` is set when Centrifugo needs one."""

    channel: str
    collection: str
    token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "collection": self.collection, "token": self.token}


def subject(principal: Principal) -> str:
    """The Centrifugo user id of a caller."""
    if principal.user_id:
        return principal.user_id
    if principal.is_admin:
        return ADMIN_SUB
    raise ValueError("an anonymous principal has no realtime identity")


def authorize_channel(principal: Principal, channel: str, access_by_collection: dict[str, str]) -> bool | str:
    """False when the caller may not read ``channel``; else "token" or "open" (no token needed).

    Mirrors the Centrifugo namespace options that infra/centrifugo_config.py generates, so the
    gateway never hands out a grant Centrifugo would refuse, nor one the RLS rule would forbid.
    """
    collection, sep, rest = channel.partition(":")
    access = access_by_collection.get(collection)
    if not sep or access is None or not rest:
        return False
    target, hash_, users = rest.partition("#")
    if not (target == ALL or _SAFE.match(target)):
        return False
    if principal.is_admin:
        return "token"
    if not principal.user_id:
        return False
    if access == "private":
        return "open" if hash_ and users == principal.user_id else False
    if access == "shared-read":
        return "open" if not hash_ else False
    return False  # admin collections


def default_grants(principal: Principal, access_by_collection: dict[str, str]) -> list[str]:
    """The per-collection channels of every collection the caller may read."""
    channels = []
    for name, access in sorted(access_by_collection.items()):
        if principal.is_admin:
            channels.append(f"{name}:{ALL}")
        elif access == "private" and principal.user_id and _SAFE.match(principal.user_id):
            channels.append(f"{name}:{ALL}#{principal.user_id}")
        elif access == "shared-read" and principal.user_id:
            channels.append(f"{name}:{ALL}")
    return channels


# ---------------------------------------------------------------- tokens


def connection_token(secret: str, sub: str, *, ttl: int = TOKEN_TTL_SECONDS, now: float | None = None) -> str:
    """HS256 connection JWT: ``sub`` is the user id; ``exp`` makes the client refresh."""
    import jwt

    issued = int(now if now is not None else time.time())
    return jwt.encode({"sub": sub, "iat": issued, "exp": issued + ttl}, _secret(secret), algorithm="HS256")


def subscription_token(secret: str, sub: str, channel: str, *, ttl: int = TOKEN_TTL_SECONDS,
                       now: float | None = None) -> str:
    """HS256 subscription JWT for one channel; Centrifugo checks ``sub`` equals the connection's user."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {"sub": sub, "channel": channel, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, _secret(secret), algorithm="HS256")


def _secret(secret: str) -> str:
    if not secret:
        raise RealtimeError("CENTRIFUGO_TOKEN_SECRET is not configured")
    return secret


# ---------------------------------------------------------------- Centrifugo server API


def api_base(url: str) -> str:
    """CENTRIFUGO_API_URL may be the server root or its ``/api`` prefix; both mean the same."""
    url = url.rstrip("/")
    return url if url.endswith("/api") else url + "/api"


class CentrifugoApi:
    """Minimal server-API client over the HttpClient port (``X-API-Key`` auth, JSON bodies)."""

    def __init__(self, http: HttpClient, url: str, key: str, *, timeout: float = API_TIMEOUT_SECONDS) -> None:
        self._http = http
        self._base = api_base(url)
        self._key = key
        self._timeout = timeout

    async def call(self, method: str, params: dict[str, Any], *,
                   time_limit: float | None = None) -> dict[str, Any]:
        """POST /api/<method>; returns the decoded body or raises RealtimeError (no secret in it)."""
        headers = {"content-type": "application/json", "x-api-key": self._key}
        try:
            resp = await self._http.request("POST", f"{self._base}/{method}", headers=headers,
                                            body=jsoncodec.dumps_bytes(params),
                                            timeout=time_limit or self._timeout)
        except HttpError as exc:
            raise RealtimeError(f"centrifugo unreachable: {type(exc).__name__}") from None
        if resp.status == 401:
            raise RealtimeError("centrifugo refused the API key (401)")
        if resp.status != 200:
            raise RealtimeError(f"centrifugo answered HTTP {resp.status}")
        try:
            body = jsoncodec.loads(resp.body)
        except ValueError:
            raise RealtimeError("centrifugo answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise RealtimeError("centrifugo answered with a non-object")
        return body

    async def batch(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run commands in order in one round trip; one reply per command."""
        body = await self.call("batch", {"commands": commands, "parallel": False})
        replies = body.get("replies")
        if not isinstance(replies, list) or len(replies) != len(commands):
            raise RealtimeError("centrifugo batch reply does not match the commands sent")
        return replies

    async def info(self, *, time_limit: float | None = None) -> dict[str, Any]:
        body = await self.call("info", {}, time_limit=time_limit)
        if "error" in body:
            raise RealtimeError(f"centrifugo info failed: {body['error']}")
        return body


def api_for(settings: Settings, http: HttpClient) -> CentrifugoApi | None:
    """None when realtime is not configured (events then stay pending in the outbox)."""
    if not settings.centrifugo_api_url or not settings.centrifugo_api_key:
        return None
    return CentrifugoApi(http, settings.centrifugo_api_url, settings.centrifugo_api_key)


# ---------------------------------------------------------------- outbox drain


@dataclass(slots=True)
class DrainResult:
    sent: int = 0
    failed: int = 0
    error: str | None = None
    #: Centrifugo could not be reached or refused the call as a whole (not one bad event)
    unavailable: bool = False


_PENDING_SQL = (
    "SELECT seq, collection, doc_id, owner_id, version, payload FROM outbox "
    "WHERE sent_at IS NULL AND attempts < ? ORDER BY seq LIMIT ?"
)


async def drain(db: Database, http: HttpClient, settings: Settings, limit: int,
                access_by_collection: dict[str, str] | None = None) -> DrainResult:
    """Publish up to ``limit`` pending events, oldest first, and record the outcome of each.

    One ``/api/batch`` call carries one ordered ``broadcast`` per event, so a document's
    events reach Centrifugo in commit order. If the call fails as a whole nothing is
    marked sent (every row stays pending, ``attempts`` + 1); if one broadcast fails only
    its row stays pending. Never raises for a Centrifugo problem: it is reported in
    ``DrainResult.error`` so a write that already committed still succeeds.
    """
    result = DrainResult()
    api = api_for(settings, http)
    if api is None or limit <= 0:
        return result
    if access_by_collection is None:
        access_by_collection = _access_from_settings(settings)
    rows = (await db.execute(_PENDING_SQL, (MAX_ATTEMPTS, limit))).rows
    if not rows:
        return result
    commands: list[dict[str, Any]] = []
    sent: list[int] = []
    failed: dict[str, list[int]] = {}
    publishable: list[dict[str, Any]] = []
    for row in rows:
        access = access_by_collection.get(row["collection"])
        try:
            data = jsoncodec.loads(row["payload"])
        except ValueError:
            data = None
        if access is None or not isinstance(data, dict):
            why = "unknown collection" if access is None else "payload is not a JSON object"
            failed.setdefault(why, []).append(row["seq"])
            continue
        publishable.append(row)
        commands.append({"broadcast": {
            "channels": event_channels(access, row["collection"], row["doc_id"], row["owner_id"]),
            "data": data,
            "idempotency_key": f"{row['collection']}/{row['doc_id']}/{row['version']}/{row['seq']}",
        }})
    if commands:
        try:
            replies = await api.batch(commands)
        except RealtimeError as exc:
            result.error, result.unavailable = str(exc), True
            failed.setdefault(str(exc), []).extend(row["seq"] for row in publishable)
        else:
            for row, reply in zip(publishable, replies, strict=True):
                problem = _broadcast_problem(reply)
                if problem is None:
                    sent.append(row["seq"])
                else:
                    failed.setdefault(problem, []).append(row["seq"])
    await _record(db, sent, failed)
    result.sent = len(sent)
    result.failed = sum(len(v) for v in failed.values())
    if result.failed and result.error is None:
        result.error = next(iter(failed))
    return result


def _broadcast_problem(reply: Any) -> str | None:
    """None when every channel of a broadcast accepted the publication, else why not."""
    if not isinstance(reply, dict):
        return "malformed batch reply"
    if reply.get("error"):
        return f"centrifugo error {reply['error'].get('code')}: {reply['error'].get('message')}"
    responses = (reply.get("broadcast") or {}).get("responses")
    if not isinstance(responses, list):
        return "malformed broadcast reply"
    for item in responses:
        err = item.get("error") if isinstance(item, dict) else None
        if err:
            return f"centrifugo error {err.get('code')}: {err.get('message')}"
    return None


async def _record(db: Database, sent: list[int], failed: dict[str, list[int]]) -> None:
    now_ms = int(time.time() * 1000)
    statements: list[Statement] = []
    for chunk in _chunks(sent):
        marks = ",".join("?" * len(chunk))
        statements.append(Statement(
            f"UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL "  # noqa: S608
            f"WHERE seq IN ({marks})",  # placeholders only
            (now_ms, *chunk)))
    for error, seqs in failed.items():
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            statements.append(Statement(
                f"UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq IN ({marks})",  # noqa: S608 - placeholders only
                (error[:500], *chunk)))
    if statements:
        await db.batch(statements)


def _chunks(values: list[int]) -> list[list[int]]:
    return [values[i:i + _PARAMS_PER_STATEMENT] for i in range(0, len(values), _PARAMS_PER_STATEMENT)]


def _access_from_settings(settings: Settings) -> dict[str, str]:
    doc = jsoncodec.loads(settings.collections_json) if settings.collections_json else {}
    cols = doc.get("collections", {}) if isinstance(doc, dict) else {}
    return {name: spec.get("access", "") for name, spec in cols.items() if isinstance(spec, dict)}


# ---------------------------------------------------------------- after-commit hook


#: after a failed publish, request-triggered drains pause this long (doubling, capped)
_BACKOFF_START, _BACKOFF_MAX = 0.5, 30.0


def _drain_state(gateway: Gateway) -> dict[str, Any]:
    """One drain at a time per isolate, and the backoff after Centrifugo failed."""
    return gateway.cache.setdefault("realtime.state", {"running": False, "dirty": False,
                                                        "until": 0.0, "delay": 0.0})


def _note_outcome(state: dict[str, Any], res: DrainResult) -> None:
    if res.unavailable:
        state["delay"] = min(max(state["delay"] * 2, _BACKOFF_START), _BACKOFF_MAX)
        state["until"] = time.monotonic() + state["delay"]
        log.warning("outbox publish failed (%d pending kept): %s", res.failed, res.error)
    else:
        state["delay"] = 0.0


async def sweep(gateway: Gateway, *, rounds: int = 10, batch: int = 100, respect_backoff: bool = True) -> int:
    """Publish whatever is pending, under the same one-drain-at-a-time guard as the request path.

    Request-triggered drains are bounded, so a burst can end with its last events still
    pending; the Workers cron trigger and the ASGI app's periodic sweep call this so they
    go out without waiting for the next write. Returns how many events were sent.
    """
    state = _drain_state(gateway)
    if state["running"] or (respect_backoff and time.monotonic() < state["until"]):
        return 0
    state["running"] = True
    sent = 0
    try:
        access = collection_access(gateway)
        for _ in range(rounds):
            res = await drain(gateway.db, gateway.http, gateway.settings, batch, access)
            sent += res.sent
            _note_outcome(state, res)
            if res.unavailable or res.sent + res.failed < batch:
                break
    finally:
        state["running"] = False
    return sent


def schedule_publish(ctx: Context) -> None:
    """Publish the outbox (this request's events first in line after older pending ones) after the handler.

    Called by the document core after a committed write; calling it again in the same
    request is a no-op. Within one isolate only one drain runs at a time: a request that
    finds one running marks it dirty and returns, and the running drain goes round again,
    so a burst of writes becomes a few batched publishes instead of one per write.
    """
    if getattr(ctx, "_realtime_scheduled", False):
        return
    ctx._realtime_scheduled = True  # type: ignore[attr-defined]
    gateway = ctx.gateway

    async def publish() -> None:
        state = _drain_state(gateway)
        limit = gateway.settings.outbox_drain_per_request
        if state["running"]:
            state["dirty"] = True
            return
        if limit <= 0:
            return
        if time.monotonic() < state["until"]:
            return  # Centrifugo failed recently: leave the rows for a later drain
        state["running"] = True
        try:
            access = collection_access(gateway)
            for _ in range(8):  # bounded work per request
                state["dirty"] = False
                res = await drain(gateway.db, gateway.http, gateway.settings, limit, access)
                _note_outcome(state, res)
                if res.unavailable:
                    return
                if not (state["dirty"] or res.sent + res.failed >= limit):
                    return
        except Exception:  # the write committed; its event waits in the outbox
            log.exception("outbox drain failed")
        finally:
            state["running"] = False

    ctx.after.append(publish)
