"""A real Centrifugo WebSocket subscriber (PyPI ``centrifuge-python``) that collects publications."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from centrifuge import (
    Client,
    PublicationContext,
    SubscribedContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)


class Inbox(SubscriptionEventHandler):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.subscribed = asyncio.Event()
        self.refused: int | None = None
        self.changed = asyncio.Event()

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.events.append(ctx.pub.data)
        self.changed.set()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.set()
        self.changed.set()

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.refused = ctx.code
        self.changed.set()

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:
        self.refused = ctx.code
        self.changed.set()

    def has(self, collection: str, doc_id: str, version: int | None = None) -> bool:
        return any(
            e.get("collection") == collection
            and e.get("id") == doc_id
            and (version is None or e.get("version") == version)
            for e in self.events
        )

    async def wait_until(self, predicate: Any, seconds: float) -> bool:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), seconds)
            return True
        except TimeoutError:
            return False


class Subscriber:
    """One connection; ``subscribe`` waits until the server confirmed or refused the channel."""

    def __init__(self, url: str, token: str) -> None:
        loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
        # no HTTP proxy for a loopback stack (a CI proxy would refuse it); the system's otherwise
        self.client = Client(
            url, token=token, timeout=5.0, max_reconnect_delay=1.0, proxy=None if loopback else True
        )

    async def connect(self, seconds: float = 10.0) -> None:
        await self.client.connect()
        await self.client.ready(timeout=seconds)

    async def subscribe(self, channel: str, token: str | None, seconds: float = 10.0) -> Inbox:
        inbox = Inbox()
        sub = self.client.new_subscription(channel, inbox, token=token or "")
        await sub.subscribe()
        await inbox.wait_until(lambda: inbox.subscribed.is_set() or inbox.refused is not None, seconds)
        return inbox

    async def close(self) -> None:
        await self.client.disconnect()
