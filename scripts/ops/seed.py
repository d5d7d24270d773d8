"""``seed``: sample documents through the gateway API (admin key), for demos and manual testing.

Collections themselves are configuration (config/collections/*.yaml); this
fills them. Every document has a fixed id (``seed-<n>``): a missing one is
created, a different one replaced, an equal one left alone, so a second run
changes nothing (idempotent); ``--remove`` deletes them.
Collections the stack does not define are skipped with a warning.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx
import yaml

from scripts.ops.console import Console, ExitStatus, OpsError, Step, add_command
from scripts.ops.stack import Target

DATA = Path(__file__).with_name("seed.yaml")


def load(path: Path = DATA) -> dict[str, list[dict[str, Any]]]:
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise OpsError(f"{path}: expected {{collection: [{{id, data}}, ...]}}", ExitStatus.USAGE)
    return doc


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    target.require("gateway_url", "admin_key")
    data = load(Path(args.data) if args.data else DATA)
    counts: dict[str, int] = {}
    skipped: list[str] = []
    headers = {"Authorization": f"Bearer {target.admin_key}"}
    base = target.gateway_url.rstrip("/")
    with httpx.Client(timeout=10, headers=headers) as http, Step(console, "seeding"):
        for collection, docs in data.items():
            for doc in docs:
                outcome = _seed_one(http, f"{base}/v1/collections/{collection}", doc, args)
                if outcome == "no-collection":
                    console.warn(f"collection {collection} is not defined on this stack: skipped")
                    skipped.append(collection)
                    break
                counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing to do"
    console.result({"documents": counts, "skipped": skipped, "dry_run": args.dry_run}, f"OK {summary}")
    return ExitStatus.OK


def _seed_one(http: httpx.Client, base: str, doc: dict[str, Any], args: argparse.Namespace) -> str:
    """created | updated | unchanged | removed | absent | no-collection (``would-…`` on a dry run)."""
    url = f"{base}/documents/{doc['id']}"
    current = http.get(url)
    if current.status_code == 404 and "collection_not_found" in current.text:
        return "no-collection"
    if current.status_code not in (200, 404):
        raise OpsError(f"GET {url.rsplit('/v1/', 1)[1]} → {current.status_code} {current.text[:200]}")
    exists = current.status_code == 200
    if args.remove:
        if not exists:
            return "absent"
        if args.dry_run:
            return "would-remove"
        r = http.delete(url)
        what = "removed"
    elif exists and current.json()["data"] == doc["data"]:
        return "unchanged"
    elif args.dry_run:
        return "would-update" if exists else "would-create"
    elif exists:
        r, what = http.put(url, json={"data": doc["data"]}), "updated"
    else:
        r, what = http.post(f"{base}/documents", json={"id": doc["id"], "data": doc["data"]}), "created"
    if r.status_code >= 400:
        raise OpsError(f"{r.request.method} {url.rsplit('/v1/', 1)[1]} → {r.status_code} {r.text[:200]}")
    return what


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "seed",
        command,
        __doc__,
        help="write sample documents (idempotent; --remove deletes them)",
        examples=["seed --stack local", "seed --stack local --remove"],
    )
    p.add_argument("--data", help=f"YAML {{collection: [{{id, data}}]}} (default {DATA.name})")
    p.add_argument("--remove", action="store_true", help="delete the seeded documents instead")
