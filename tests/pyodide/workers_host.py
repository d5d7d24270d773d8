"""The part of workerd's Python entrypoint glue the compatibility test needs, run inside Pyodide.

Why: workerd (not the Worker) constructs the ``WorkerEntrypoint`` subclass with the JS
``ExecutionContext`` and ``env`` for each request, converts the incoming JS ``Request`` with
``workers.python_from_rpc`` and hands back ``python_to_rpc(response)``. Doing the same here, with
the real ``workers-runtime-sdk`` wheel, means ``worker/entry.py`` meets the SDK's own ``Request``,
``Response`` and D1 binding wrapper, not a look-alike. Only workerd's private modules
(``_cloudflare_compat_flags``, ``_pyodide_entrypoint_helper``) are stood in for by the runner,
and the request's ``ctx`` by :class:`ExecutionContext` over the runner's JS one.
"""

from __future__ import annotations

import importlib
import inspect
import time
from typing import Any


def import_main(module_name: str) -> dict[str, Any]:
    """Import the Worker's main module (what workerd does once per isolate) and time it.

    The SDK (``workers``) is timed apart: on Cloudflare it is part of the runtime's snapshot.
    """
    started = time.perf_counter()
    importlib.import_module("workers")
    sdk_done = time.perf_counter()
    importlib.import_module(module_name)
    done = time.perf_counter()
    return {
        "sdk_seconds": sdk_done - started,
        "seconds": done - sdk_done,
    }


def entrypoint_class(module_name: str, class_name: str) -> type:
    from workers import WorkerEntrypoint

    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, WorkerEntrypoint)):
        raise TypeError(f"{module_name}.{class_name} is not a workers.WorkerEntrypoint subclass")
    return cls


class ExecutionContext:
    """The ``ctx`` a Python entrypoint gets, over the runner's JS ExecutionContext.

    ``waitUntil`` forwards its argument to the JS method unchanged, so it crosses the FFI
    exactly as when a Worker calls workerd's ``ctx.waitUntil`` itself: a Python object
    passed as is becomes a borrowed proxy, destroyed when the call returns and so never
    awaited (the runner then reports the rejection), while a ``create_proxy`` of a Task is
    a thenable the JS side awaits. The runner keeps the event open until every promise
    settled, after the response, as workerd does. What was registered is remembered so
    :func:`serve` can report it.
    """

    def __init__(self, js_ctx: Any) -> None:
        self._js = js_ctx
        self.registered: list[Any] = []

    def waitUntil(self, promise: Any) -> None:
        self._js.waitUntil(promise)
        self.registered.append(promise)

    def passThroughOnException(self) -> None:
        self._js.passThroughOnException()


def _still_running(promise: Any) -> bool | None:
    """Whether a waitUntil argument that wraps a Python Task had not finished; None if it wraps none."""
    unwrap = getattr(promise, "unwrap", None)  # a create_proxy() of a Python object
    task = unwrap() if unwrap is not None else None
    return not task.done() if hasattr(task, "done") else None


#: set on every response by :func:`serve` (never by the Worker): "<n> registered, <m> running",
#: the waitUntil work the fetch left behind and how much of it had not finished when it returned
WAIT_UNTIL_HEADER = "x-harness-wait-until"


async def serve(module_name: str, class_name: str, js_request: Any, env: Any, ctx: Any) -> Any:
    """One fetch event: a fresh entrypoint instance, SDK conversions in and out, as workerd does."""
    from workers import python_from_rpc, python_to_rpc

    cls = entrypoint_class(module_name, class_name)
    host_ctx = ExecutionContext(ctx)
    instance = cls(host_ctx, env)
    request = python_from_rpc(js_request)
    result = instance.fetch(request)
    if inspect.isawaitable(result):
        result = await result
    response = python_to_rpc(result)
    # the response is what workerd sends now; record what is left to run after it
    running = sum(1 for p in host_ctx.registered if _still_running(p))
    response.headers.set(WAIT_UNTIL_HEADER, f"{len(host_ctx.registered)} registered, {running} running")
    return response


async def scheduled(module_name: str, class_name: str, env: Any, ctx: Any) -> None:
    """One cron event, as workerd delivers it: a fresh instance, then ``scheduled(controller)``."""
    cls = entrypoint_class(module_name, class_name)
    result = cls(ExecutionContext(ctx), env).scheduled(None)
    if inspect.isawaitable(result):
        await result


def verified_tokens() -> int:
    """How many tokens the isolate's verified-token cache holds (worker/auth.py's VerifiedTokens)."""
    from worker import entry

    gateway = entry._gateway
    cache = gateway.authenticator.tokens if gateway is not None else None
    return len(cache) if cache is not None else -1


def importable(name: str) -> bool:
    """Whether ``name`` could be imported in this runtime at all (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(name) is not None


def loaded_modules(*prefixes: str) -> list[str]:
    """Modules of these packages now imported (eager imports cost cold start; runtimes must not load)."""
    import sys

    return sorted(n for n in sys.modules for p in prefixes if n == p or n.startswith(p + "."))


async def migrate(env: Any, files_json: str, collections_json: str) -> list[str]:
    """Apply the migrations through the gateway's own D1 adapter, as ops do against a real D1."""
    import json

    from workers import _EnvWrapper

    from worker.adapters.d1 import D1Database
    from worker.collections import Registry
    from worker.migrations import migrate as run

    files = [(name, sql) for name, sql in json.loads(files_json)]
    return await run(D1Database(_EnvWrapper(env).DB), files, Registry.from_json(collections_json))
