"""A D1 database's schema as a Pulumi dynamic resource, applied through the D1 HTTP API.

``D1Migrations`` runs ``worker.migrations.migrate`` (``worker/adapters/d1_http.py``) with
``config/migrations/*.sql`` and the collections' index migrations. It is keyed by the hash of the
migration set: an unchanged set is no diff, a changed one re-runs ``migrate``, which skips what
``_migrations`` records (safe to re-run); another database replaces it. Its provider follows
:mod:`infra.provider_host`'s rule, so Pulumi's provider host loads it without ``PYTHONPATH``, and
nothing here imports a cloud provider SDK (the host imports this module on every call).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from infra.provider_host import loadable
from worker.adapters.d1_http import API_BASE


def migration_set_hash(migrations: Sequence[tuple[str, str]], collections_json: str) -> str:
    """What the migrations resource is keyed by: the SQL files and the collections (their indexes)."""
    digest = hashlib.sha256()
    for name, sql in migrations:
        digest.update(f"{name}\0{hashlib.sha256(sql.encode()).hexdigest()}\n".encode())
    digest.update(collections_json.encode())
    return digest.hexdigest()


@loadable
class MigrationsProvider(ResourceProvider):
    """Runs ``worker.migrations.migrate`` against D1 over HTTP when the migration set or database changes."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=str(props["database_id"]), outs=_outs(props, _apply(props)))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("database_id", "migration_hash")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=["database_id"] if "database_id" in changed else [],
                          delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_outs(news, _apply(news)))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: migrations are forward-only and the database's deletion takes the data."""


def _apply(props: Mapping[str, Any]) -> list[str]:
    import asyncio

    return asyncio.run(_migrate(props))


def _outs(props: Mapping[str, Any], applied: list[str]) -> dict[str, Any]:
    """State to keep: everything but the API token (it is re-read from stack config on every run)."""
    return {**{k: v for k, v in props.items() if k != "api_token"}, "applied": applied}


async def _migrate(props: Mapping[str, Any]) -> list[str]:
    import httpx

    from worker.adapters.d1_http import D1HttpDatabase
    from worker.adapters.httpx_client import HttpxClient
    from worker.collections import Registry
    from worker.migrations import migrate

    async with httpx.AsyncClient() as client:
        db = D1HttpDatabase(HttpxClient(client), account_id=props["account_id"],
                            database_id=props["database_id"], api_token=props["api_token"],
                            base_url=props.get("api_base") or API_BASE)
        files = [(m["name"], m["sql"]) for m in props["migrations"]]
        return await migrate(db, files, Registry.from_json(props["collections_json"]))


class D1Migrations(Resource):
    """Applied migrations of one D1 database (outputs: ``applied`` names of the last run)."""

    applied: pulumi.Output[list[str]]

    def __init__(self, name: str, *, account_id: pulumi.Input[str], database_id: pulumi.Input[str],
                 api_token: pulumi.Input[str], migrations: Sequence[tuple[str, str]], collections_json: str,
                 api_base: str = API_BASE,  # Cloudflare's; another only for a test's fake D1
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "account_id": account_id,
            "database_id": database_id,
            "api_token": pulumi.Output.secret(api_token),
            "api_base": api_base,
            "migrations": [{"name": n, "sql": s} for n, s in migrations],
            "collections_json": collections_json,
            "migration_hash": migration_set_hash(migrations, collections_json),
            "applied": None,
        }
        super().__init__(MigrationsProvider(), name, props, opts)
