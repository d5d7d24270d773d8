"""Pulumi-mocks tests share one need: the thread's current event loop, which the mocks run on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[None]:
    """A test elsewhere in the run may have called ``asyncio.run``, which leaves the thread without a
    current loop: put one back for this test, and close it afterwards (an unclosed loop leaks its
    self-pipe sockets, which a later test would see as a ResourceWarning)."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
        created = None
    except RuntimeError:
        created = asyncio.new_event_loop()
        asyncio.set_event_loop(created)
    yield
    if created is None:
        return
    try:
        current = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        current = None
    if current is created:  # still ours: unset it, as the test found the thread
        asyncio.set_event_loop(None)
    created.close()  # a loop someone else set since then stays theirs
