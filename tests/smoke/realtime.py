"""A real Centrifugo WebSocket subscriber (PyPI ``centrifuge-python``) that collects publications.

Unlike the tests' :class:`tests.support.realtime_client.Subscriber` (whose :class:`Inbox` it
shares; that module imports no pytest), ``subscribe`` never raises: a smoke check reports a
refusal itself, and the HTTP proxy is the system's unless the stack is on loopback.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from centrifuge import Client

from tests.support.realtime_client import Inbox, close


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
        inbox = Inbox(channel)
        sub = self.client.new_subscription(channel, inbox, token=token or "")
        await sub.subscribe()
        await inbox.wait_until(lambda: inbox.subscribed.is_set() or inbox.refused is not None, seconds)
        return inbox

    async def close(self) -> None:
        await close(self.client)

