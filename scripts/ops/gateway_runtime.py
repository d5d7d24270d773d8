"""The gateway's own code, run from an ops command: its Database port, settings and collections.

Ops commands reuse ``worker/`` rather than re-implementing SQL: ``migrate``
calls worker/migrations.py and ``drain-outbox`` calls worker/outbox.py with
the same adapters the gateway uses (SQLite file locally, D1 HTTP API in clouds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from scripts.ops.console import ExitStatus, OpsError
from scripts.ops.stack import ROOT, Target

CONFIG_DIR = ROOT / "config"


def migration_files(config_dir: Path = CONFIG_DIR) -> list[tuple[str, str]]:
    """(name, sql) exactly as the gateway loads them at start-up (the names recorded in _migrations)."""
    from worker.adapters.config_files import load_migrations

    return load_migrations(config_dir)


def collections_json(target: Target, env: dict[str, str] | None = None) -> str:
    """The COLLECTIONS setting: the env's, else config/collections/*.yaml as the ASGI entry builds it."""
    import os

    from worker.adapters.config_files import collections_json as collections_from_config

    env = dict(os.environ) if env is None else env
    return env.get("TELESTACK_COLLECTIONS") or collections_from_config(CONFIG_DIR)


@asynccontextmanager
async def open_database(target: Target) -> AsyncIterator[Any]:
    """The stack's database through the gateway's own adapters."""
    if target.db_path:
        from worker.adapters.sqlite import SqliteDatabase

        path = Path(target.db_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = SqliteDatabase(path)
        try:
            yield db
        finally:
            db.close()
    elif target.d1_database_id:
        target.require("cloudflare_account_id", "cloudflare_api_token")
        from worker.adapters.d1_http import D1HttpDatabase
        from worker.adapters.httpx_client import HttpxClient

        http = HttpxClient()
        try:
            yield D1HttpDatabase(
                http,
                account_id=target.cloudflare_account_id,
                database_id=target.d1_database_id,
                api_token=target.cloudflare_api_token,
                **({"base_url": target.cloudflare_api_base} if target.cloudflare_api_base else {}),
            )
        finally:
            await http.aclose()
    else:
        raise OpsError("stack has neither db_path (local) nor d1_database_id (cloud)", ExitStatus.USAGE)
