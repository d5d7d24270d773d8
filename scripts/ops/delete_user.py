"""``delete-user`` and ``account-deletions``: delete a user on request (data protection), and list deletions.

``delete-user --user ID`` runs the gateway's own deletion (worker/account.py): the
user's sessions, every document they own (with outbox ``deleted`` events; the
next sweep or ``drain-outbox`` publishes them), every object under
``users/ID/``, then the user with their metadata in the auth core. It is
recorded before it starts and marked finished when done; running it again after
any failure completes it (every step is idempotent). ``account-deletions``
lists what was asked, and ``--unfinished`` only what a retry must complete.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from scripts.ops.console import Console, ExitStatus, OpsError, Step, add_command
from scripts.ops.gateway_runtime import collections_json, open_database
from scripts.ops.stack import Target


def _settings(target: Target) -> Any:
    from worker.settings import from_mapping

    return from_mapping({
        "ADMIN_KEY": target.admin_key or "ops",
        "COLLECTIONS": collections_json(target),
        "AUTH_URL": target.auth_url,
        "AUTH_API_KEY": target.auth_api_key,
        "S3_ENDPOINT": target.s3_endpoint,
        "S3_BUCKET": target.s3_bucket,
        "S3_REGION": target.s3_region,
        "S3_ACCESS_KEY_ID": target.s3_access_key_id,
        "S3_SECRET_ACCESS_KEY": target.s3_secret_access_key,
    })


async def _delete(target: Target, user_id: str) -> dict[str, Any]:
    from worker import account
    from worker.adapters.httpx_client import HttpxClient
    from worker.context import Gateway

    http = HttpxClient()
    try:
        async with open_database(target) as db:
            gateway = Gateway(settings=_settings(target), db=db, http=http)
            report = await account.delete_account(gateway, db, user_id, by="admin")
            return {"user_id": report.user_id, "finished": report.finished,
                    "documents_deleted": report.documents_deleted, "objects_deleted": report.objects_deleted}
    finally:
        await http.aclose()


async def _owned(target: Target, user_id: str) -> int:
    async with open_database(target) as db:
        rows = (await db.execute("SELECT count(*) AS n FROM documents WHERE owner_id = ?", (user_id,))).rows
        return int(rows[0]["n"])


async def _list(target: Target, unfinished: bool) -> list[dict[str, Any]]:
    from worker import account

    async with open_database(target) as db:
        return await account.deletions(db, unfinished_only=unfinished)


def delete_command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    if not target.auth_url:
        raise OpsError("the stack exposes no auth_url: the user cannot be removed from the core",
                       ExitStatus.USAGE)
    if args.dry_run:
        owned = asyncio.run(_owned(target, args.user))
        console.result({"user_id": args.user, "documents": owned, "dry_run": True},
                       f"would delete user {args.user}: their sessions, {owned} document(s), "
                       f"users/{args.user}/")
        return ExitStatus.OK
    try:
        with Step(console, f"deleting user {args.user}"):
            result = asyncio.run(_delete(target, args.user))
    except Exception as exc:  # the ApiError/transport failure names the step; the record stays unfinished
        message = getattr(exc, "message", None) or type(exc).__name__
        console.result({"user_id": args.user, "finished": False, "error": message},
                       f"FAILED: {message}; run the same command again to complete the deletion")
        return ExitStatus.DEPENDENCY_UNHEALTHY
    console.result(result, f"OK deleted user {args.user}: {result['documents_deleted']} document(s), "
                           f"{result['objects_deleted']} object(s)")
    return ExitStatus.OK


def list_command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    rows = asyncio.run(_list(target, args.unfinished))
    lines = [f"{r['user_id']}  {'finished' if r['finished_at'] else 'UNFINISHED'}  by {r['requested_by']}  "
             f"documents {r['documents_deleted']}  objects {r['objects_deleted']}  attempts {r['attempts']}"
             for r in rows]
    console.result({"deletions": rows}, "\n".join(lines) or "no deletions recorded")
    return ExitStatus.OK


def add_parser(sub: Any) -> None:
    p = add_command(sub, "delete-user", delete_command, __doc__, help="delete a user and everything they own",
                    examples=["delete-user --stack local --user 5f0c...-uuid"])
    p.add_argument("--user", required=True,
                   help="the user id (the `sub` of their tokens, `owner_id` of their documents)")
    p = add_command(sub, "account-deletions", list_command, __doc__, help="list recorded account deletions",
                    examples=["account-deletions --stack local --unfinished"])
    p.add_argument("--unfinished", action="store_true", help="only deletions a retry must complete")
