"""Stack settings for tests, built by the stack's own code, and Pulumi Outputs resolved to plain values.

The rotation runbook's tests give each component exactly what ``pulumi up`` would:
stack config values -> :func:`infra.settings.stack_secrets` -> the real spec builders
and gateway binding mapping. Only the environment file and the state folder are theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi

from infra.secret_keys import SECRET_KEYS
from infra.settings import ROOT, StackSettings, load_environment, parse_environment, stack_secrets, state_dir


def stack_settings(config: Mapping[str, str], env_text: str | None = None, *, env_name: str = "local",
                   state: Path | None = None) -> StackSettings:
    """The settings ``pulumi up`` reads for a stack whose config holds ``config`` (absent secrets filled
    with placeholders: a test names only the ones it rotates)."""
    env_file, env = load_environment(env_name)
    if env_text is not None:
        env = parse_environment(env_text, "test.yaml")
    filler = {k: f"unused-{k}-0123456789abcdef" for k in SECRET_KEYS}
    return StackSettings(stack=env_name, env_name=env_name, env_file=env_file, environment=env,
                         secrets=stack_secrets({**filler, **config}), root=ROOT,
                         state_dir=state or state_dir())


def resolve(build: Callable[[], Any]) -> Any:
    """``build()`` (which may create Pulumi Outputs) with every Output resolved; from synchronous code."""
    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the thread's loop, which Pulumi's mocks need
    try:
        return loop.run_until_complete(resolve_async(build))
    finally:
        loop.close()


async def resolve_async(build: Callable[[], Any]) -> Any:
    """:func:`resolve` inside a running event loop (the Outputs are created on it, as Pulumi requires)."""
    return await pulumi.Output.from_input(build()).future()
