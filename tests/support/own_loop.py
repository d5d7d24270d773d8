"""Run a coroutine from synchronous test code on an event loop of its own, closed after."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` without touching the thread's current loop.

    ``asyncio.run`` ends by unsetting the current loop. After an async test, that is the fresh loop
    pytest-asyncio installs and closes before the next async test; unset, it is dropped unclosed
    and its self-pipe socket fails some later test with "unclosed <socket.socket ... family=1>".
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
