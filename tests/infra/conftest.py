"""Pulumi-mocks tests share one need: the thread's current event loop, which the mocks run on."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(autouse=True)
def _event_loop() -> None:
    """A test elsewhere in the run may have called ``asyncio.run``, which leaves the thread without a
    current loop: put one back (kept, as the default loop would have been)."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
