"""POST /v1/realtime/token: a Centrifugo connection token plus the channels the caller may read.

Body (optional, JSON): ``{"channels": ["notes:abc#<me>", ...]}`` asks for specific
channels; without it the caller gets the per-collection channel of every
collection it may read. A requested channel the caller may not read is a 403
naming it: the gateway never signs a grant that the RLS rule would refuse. In a collection
whose read rule lists readers, a document channel also needs the document to be readable
now (the same compiled rule as a GET; a missing document is refused alike).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from worker import documents
from worker.channels import ALL, ChannelGrant, authorize_channel, default_channels, subject
from worker.http import ApiError, Response, read_object
from worker.operations import Operation, documented, obj
from worker.principal import Principal
from worker.realtime_tokens import TOKEN_TTL_SECONDS, connection_token, subscription_token
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context

MAX_CHANNELS = 100
_GRANT = obj({"channel": {"type": "string"}, "collection": {"type": "string"},
              "token": {"type": ["string", "null"]}}, ("channel", "collection", "token"))
TOKEN = Operation(
    "a Centrifugo connection token and the channels the caller may read", "bearer",
    {200: obj({"url": {"type": ["string", "null"]}, "user": {"type": "string"}, "token": {"type": "string"},
               "expires_at": {"type": "integer", "description": "unix seconds"},
               "channels": {"type": "array", "items": _GRANT}},
              ("url", "user", "token", "expires_at", "channels"))},
    {403: ("forbidden",), 503: ("realtime_unavailable",)},
    body=obj({"channels": {"type": ["array", "null"], "maxItems": MAX_CHANNELS,
                           "items": {"type": "string", "minLength": 1, "maxLength": 255}}}),
    body_required=False)


@documented(TOKEN)
async def token(ctx: Context) -> Response:
    principal = await ctx.principal()
    settings = ctx.settings
    if not settings.centrifugo_token_secret:
        raise ApiError(503, "realtime_unavailable", "realtime is not configured on this stack")
    requested: list[str] | None = None
    if ctx.request.body:
        body = read_object(ctx.request, {"channels"}, max_bytes=64 * 1024)
        raw = body.get("channels")
        if raw is not None:
            if (not isinstance(raw, list) or len(raw) > MAX_CHANNELS
                    or not all(isinstance(c, str) and 0 < len(c) <= 255 for c in raw)):
                raise ApiError(400, "invalid_request",
                               f"channels must be a list of at most {MAX_CHANNELS} names")
            requested = list(dict.fromkeys(raw))
    access = ctx.gateway.collections.access_rules()
    channels = requested if requested is not None else default_channels(principal, access)
    sub = subject(principal)
    secret = settings.centrifugo_token_secret
    now = time.time()
    grants = []
    for channel in channels:
        grant = authorize_channel(principal, channel, access)
        if grant is ChannelGrant.REFUSED or not await _may_read_document(ctx, principal, channel):
            raise ApiError(403, "forbidden", f"not allowed to subscribe to {channel}")
        signed = grant is ChannelGrant.SIGNED
        sub_token = subscription_token(secret, sub, channel, now=now) if signed else None
        grants.append({"channel": channel, "collection": channel.partition(":")[0], "token": sub_token})
    return Response.json({
        "url": settings.centrifugo_ws_url or None,
        "user": sub,
        "token": connection_token(secret, sub, now=now),
        "expires_at": int(now) + TOKEN_TTL_SECONDS,
        "channels": grants,
    }, headers={"cache-control": "no-store"})


async def _may_read_document(ctx: Context, principal: Principal, channel: str) -> bool:
    """A rule collection's document channel: only for a document the compiled get rule lets the caller read.

    A missing document is refused like an unreadable one, so the answer reveals nothing. (Its events
    reach the channel only for readers anyway: the outbox lists them.)
    """
    name, _, rest = channel.partition(":")
    doc_id = rest.partition("#")[0]
    if principal.is_admin or doc_id == ALL:
        return True
    collection = ctx.gateway.collections.get(name)
    if not collection.lists_readers:
        return True
    try:
        await documents.get(ctx.db, principal, collection, doc_id)
    except ApiError:
        return False
    return True


ROUTES: list[Route] = [Route("POST", "/v1/realtime/token", token)]
