"""Pulumi-mocks tests share one need: a current event loop on the thread, which the mocks run on.

Each module (for its shared fixtures) and each test gets loops it owns and closes: its own
current loop, and the one Pulumi's mock monitor makes in every worker thread it registers a
resource from. Left open, those worker loops are collected whenever the thread or the event loop
policy goes away (an async test elsewhere replaces the policy), with their self-pipe sockets
open, and whichever test runs then fails on the ResourceWarning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


class _RecordingPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, remembering every loop it makes (the worker threads' included)."""

    def __init__(self) -> None:
        super().__init__()
        self.loops: list[asyncio.AbstractEventLoop] = []

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        self.loops.append(loop)
        return loop


@contextmanager
def _owned_loops() -> Iterator[None]:
    previous = asyncio.get_event_loop_policy()
    policy = _RecordingPolicy()
    asyncio.set_event_loop_policy(policy)
    loop = policy.new_event_loop()
    policy.set_event_loop(loop)
    try:
        yield
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())  # the worker threads end here
        policy.set_event_loop(None)
        for made in policy.loops:
            if not made.is_closed():
                made.close()
        asyncio.set_event_loop_policy(previous)


@pytest.fixture(scope="module", autouse=True)
def _module_loops() -> Iterator[None]:
    with _owned_loops():
        yield


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[None]:
    with _owned_loops():
        yield
