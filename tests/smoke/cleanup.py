"""What a smoke run leaves behind, and removing it: this run's, or every crashed run's.

A run journals each thing *before* creating it (``<state>/smoke-runs/<run>.json``)
and deletes the journal once everything is gone, so a journal on disk means a
run that crashed or could not clean up. ``--cleanup-stale`` replays every such
journal, and also sweeps by tag (documents with ``meta.smoke_run``, object
keys with ``/smoke/``) in case a journal was lost. Users are removed through
SuperTokens' CDI ``/user/remove`` (their sessions go with them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.ops.stack import ROOT, Target


def journal_dir(target: Target) -> Path:
    base = Path(target.state_dir) if target.state_dir else ROOT / ".telestack"
    return base / "smoke-runs"


@dataclass
class Journal:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, target: Target, run_id: str) -> Journal:
        path = journal_dir(target) / f"{run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        j = cls(
            path,
            {
                "run_id": run_id,
                "gateway_url": target.gateway_url,
                "users": [],
                "emails": [],
                "docs": [],
                "objects": [],
            },
        )
        j.save()
        return j

    @classmethod
    def load(cls, path: Path) -> Journal:
        return cls(path, json.loads(path.read_text()))

    def add(self, kind: str, value: Any) -> None:
        if value not in self.data[kind]:
            self.data[kind].append(value)
            self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


@dataclass
class Leftovers:
    removed: dict[str, int] = field(default_factory=lambda: {"docs": 0, "objects": 0, "users": 0})
    left: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"removed": self.removed, "left": self.left}


async def _delete_doc(
    http: httpx.AsyncClient, target: Target, collection: str, doc_id: str, token: str | None, out: Leftovers
) -> None:
    url = f"{target.gateway_url.rstrip('/')}/v1/collections/{collection}/documents/{doc_id}"
    for bearer in (token, target.admin_key):
        if not bearer:
            continue
        r = await http.delete(url, headers={"Authorization": f"Bearer {bearer}"})
        if r.status_code == 204:
            out.removed["docs"] += 1
            return
        if r.status_code == 404:
            # the admin sees every document, and a run records each document under its owner (who
            # sees it in a private collection): either way 404 means it is gone (or was never created)
            return
    out.left.append(f"document {collection}/{doc_id}")


def _delete_objects(target: Target, keys: list[str], out: Leftovers) -> None:
    if not keys:
        return
    if not (target.s3_endpoint and target.s3_access_key_id and target.s3_secret_access_key):
        out.left += [f"object {k} (no S3 credentials in the stack outputs)" for k in keys]
        return
    from scripts.ops.stores import ObjectStore

    store = ObjectStore(target)
    for key in keys:
        store.delete(key)  # S3 DELETE is idempotent: absent keys are fine
        out.removed["objects"] += 1


async def _delete_users(http: httpx.AsyncClient, target: Target, user_ids: list[str], out: Leftovers) -> None:
    if not user_ids:
        return
    if not target.auth_url:
        out.left += [f"user {u} (no auth_url in the stack outputs)" for u in user_ids]
        return
    headers = {"api-key": target.auth_api_key} if target.auth_api_key else {}
    for user_id in user_ids:
        r = await http.post(
            f"{target.auth_url.rstrip('/')}/user/remove",
            json={"userId": user_id},
            headers={**headers, "rid": "emailpassword"},
        )
        if r.status_code == 200:
            out.removed["users"] += 1
        else:
            out.left.append(f"user {user_id} (CDI /user/remove → {r.status_code})")


async def clean_run(
    http: httpx.AsyncClient,
    target: Target,
    docs: list[tuple[str, str, str | None]],
    objects: list[str],
    users: list[str],
) -> Leftovers:
    """Delete documents (as their owner, else admin), then objects, then users (which revokes sessions)."""
    out = Leftovers()
    for collection, doc_id, token in docs:
        await _delete_doc(http, target, collection, doc_id, token, out)
    _delete_objects(target, objects, out)
    await _delete_users(http, target, users, out)
    return out


async def sweep_tagged(
    http: httpx.AsyncClient, target: Target, collections: list[str], keep_run: str | None = None
) -> Leftovers:
    """Documents with ``meta.smoke_run`` (admin query) and objects under ``…/smoke/…`` of any run."""
    out = Leftovers()
    if not target.admin_key:
        out.left.append("tagged documents not swept: no admin_key in the stack outputs")
    else:
        auth = {"Authorization": f"Bearer {target.admin_key}"}
        for collection in collections:
            cursor = None
            while True:
                body: dict[str, Any] = {"where": [["meta.smoke_run", "exists", True]], "limit": 200}
                if cursor:
                    body["cursor"] = cursor
                r = await http.post(
                    f"{target.gateway_url.rstrip('/')}/v1/collections/{collection}/query",
                    json=body,
                    headers=auth,
                )
                if r.status_code != 200:
                    out.left.append(f"query {collection} → {r.status_code}")
                    break
                for d in r.json()["documents"]:
                    if d["data"].get("meta", {}).get("smoke_run") != keep_run:
                        await _delete_doc(http, target, collection, d["id"], None, out)
                cursor = r.json().get("next_cursor")
                if not cursor:
                    break
    if target.s3_endpoint and target.s3_access_key_id:
        from scripts.ops.stores import ObjectStore

        keys = [
            o.key
            for o in ObjectStore(target).list("users/")
            if "/smoke/" in o.key and (keep_run is None or f"/smoke/{keep_run}/" not in o.key)
        ]
        _delete_objects(target, keys, out)
    return out


def merge(a: Leftovers, b: Leftovers) -> Leftovers:
    return Leftovers({k: a.removed[k] + b.removed[k] for k in a.removed}, a.left + b.left)
