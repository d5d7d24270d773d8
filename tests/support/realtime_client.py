"""A real Centrifugo WebSocket client (PyPI ``centrifuge-python``) that records what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)


@dataclass
class Inbox(SubscriptionEventHandler):
    """Publications of one subscription, in arrival order.

    ``subscribed`` is set once the server confirmed the subscription; ``refused`` holds its
    code when the server said no. Also the smoke suite's inbox (tests/smoke/realtime.py).
    """

    channel: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: int | None = None
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

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

    async def wait_until(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Re-check ``predicate`` on every change; False when ``seconds`` passed first."""

        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), seconds)
            return True
        except TimeoutError:
            return False

    async def wait_for(self, count: int, within: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` events arrived (fails the test with what did arrive)."""
        if not await self.wait_until(lambda: len(self.events) >= count, within):
            raise AssertionError(f"{self.channel}: expected {count} events, got {self.events}")
        return self.events

    def has(self, collection: str, doc_id: str, version: int | None = None) -> bool:
        return any(
            e.get("collection") == collection
            and e.get("id") == doc_id
            and (version is None or e.get("version") == version)
            for e in self.events
        )

    def keys(self) -> list[tuple[str, str, int]]:
        return [(e["collection"], e["id"], e["version"]) for e in self.events]


class _Connection(ClientEventHandler):
    def __init__(self) -> None:
        self.disconnected: int | None = None
        self.inboxes: dict[str, Inbox] = {}

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        # a refusal that closes the whole connection (e.g. 3500 invalid token) counts for every inbox
        self.disconnected = ctx.code
        for inbox in self.inboxes.values():
            if inbox.refused is None:
                inbox.refused = ctx.code
            inbox.changed.set()


class Subscriber:
    """One connection with any number of subscriptions."""

    def __init__(self, url: str, token: str) -> None:
        self.events = _Connection()
        self.client = Client(url, self.events, token=token, timeout=5.0, proxy=None, max_reconnect_delay=1.0)
        self.inboxes = self.events.inboxes

    async def __aenter__(self) -> Subscriber:
        await self.client.connect()
        await self.client.ready(timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await close(self.client)

    async def subscribe(self, channel: str, token: str | None = None, *, expect_ok: bool = True) -> Inbox:
        inbox = Inbox(channel)
        sub = self.client.new_subscription(channel, inbox, token=token or "")
        self.inboxes[channel] = inbox
        await sub.subscribe()
        if expect_ok:
            await sub.ready(timeout=10)
        else:
            try:
                if not await inbox.wait_until(lambda: inbox.refused is not None, 10):
                    raise AssertionError(f"{channel}: the server did not refuse the subscription")
            finally:
                await sub.unsubscribe()
        return inbox


async def close(client: Client) -> None:
    """Disconnect and wait for the SDK's background close of the socket (else it leaks past the loop)."""
    await client.disconnect()
    pending = list(getattr(client, "_background_tasks", ()))
    if pending:
        await asyncio.wait(pending, timeout=5)
