"""``python -m tests.smoke --stack local``: end-to-end checks against a deployed stack, as real clients.

The stack is read from ``pulumi stack output --json --show-secrets --stack X``
(with the project's file backend), or, without ``--stack``, from environment
variables: TELESTACK_GATEWAY_URL (required), TELESTACK_ADMIN_KEY,
TELESTACK_CENTRIFUGO_WS_URL, TELESTACK_S3_ENDPOINT/_BUCKET/_ACCESS_KEY_ID/
_SECRET_ACCESS_KEY, TELESTACK_AUTH_URL/_AUTH_API_KEY (the last ones only for cleanup).

Exit codes: 0 every check passed; 1 a check failed or was skipped; 2 the
stack could not be described; 130 interrupted.

examples:
  python -m tests.smoke --stack local
  python -m tests.smoke --stack local --json > smoke.json
  TELESTACK_GATEWAY_URL=https://api.example.com python -m tests.smoke
  python -m tests.smoke --stack local --cleanup-stale
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import sys
from collections.abc import Sequence
from typing import TextIO

import httpx

from scripts.ops import stack as stacks
from scripts.ops.console import Console, OpsError
from tests.smoke import cleanup
from tests.smoke.checks import CHECKS, Smoke
from tests.smoke.client import Api
from tests.smoke.runner import ExitCode, Report, run_checks

HTTP_TIMEOUT = 15.0


def new_run_id() -> str:
    return f"smoke-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.smoke",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", help="Pulumi stack to test (default: TELESTACK_* environment only)")
    p.add_argument(
        "--json", action="store_true", help="print the JSON report on stdout (verdicts go to stderr)"
    )
    p.add_argument("--only", help="comma-separated check names (their prerequisites must be listed too)")
    p.add_argument(
        "--collection", default="notes", help="an owner-private collection with a schema (default notes)"
    )
    p.add_argument(
        "--keep", action="store_true", help="leave what the run created (debugging); the journal stays"
    )
    p.add_argument("--cleanup-stale", action="store_true", help="remove leftovers of crashed runs, then exit")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    return p


async def smoke(target: stacks.Target, args: argparse.Namespace, lines: TextIO) -> Report:
    run_id = new_run_id()
    report = Report(run_id=run_id, target=target.stack or target.gateway_url)
    print(f"smoke run {run_id} against {target.gateway_url}", file=lines, flush=True)
    journal = cleanup.Journal.create(target, run_id)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        ctx = Smoke(
            target=target,
            api=Api(target.gateway_url, http),
            run_id=run_id,
            collection=args.collection,
            journal=journal,
        )
        only = set(args.only.split(",")) if args.only else None
        try:
            await run_checks(CHECKS, ctx, report, lines, only)
        finally:
            if not args.keep:
                tokens = {label: u.access_token for label, u in ctx.users.items()}
                docs = [(c, i, tokens.get(owner)) for c, i, owner in ctx.docs]
                users = list(journal.data["users"])
                left = await cleanup.clean_run(http, target, docs, ctx.objects, users)
                report.cleanup = left.to_json()
                if left.left:
                    print(f"cleanup: left behind {left.left} (journal kept: {journal.path})", file=lines)
                else:
                    journal.path.unlink(missing_ok=True)
    return report


async def cleanup_stale(target: stacks.Target, args: argparse.Namespace, lines: TextIO) -> cleanup.Leftovers:
    total = cleanup.Leftovers()
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        for path in sorted(cleanup.journal_dir(target).glob("smoke-*.json")):
            journal = cleanup.Journal.load(path)
            docs = [(c, i, None) for c, i in journal.data["docs"]]
            left = await cleanup.clean_run(http, target, docs, journal.data["objects"], journal.data["users"])
            print(f"run {journal.data['run_id']}: removed {left.removed}", file=lines)
            if not left.left:
                path.unlink()
            total = cleanup.merge(total, left)
        swept = await cleanup.sweep_tagged(http, target, sorted({args.collection, "notes", "posts"}))
        print(f"tagged sweep: removed {swept.removed}", file=lines)
        return cleanup.merge(total, swept)


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    args = parser().parse_args(argv)
    if args.list:
        for c in CHECKS:
            print(f"{c.name:<20} {c.description}", file=stdout)
        return ExitCode.OK
    try:
        target = stacks.resolve(args.stack)
        target.require("gateway_url")
    except OpsError as exc:
        print(f"smoke: {exc}", file=stderr)
        return ExitCode.USAGE
    console = Console(stdout=stdout, stderr=stderr)
    console.register_secret(*target.secrets())
    lines = stderr if args.json else stdout
    try:
        if args.cleanup_stale:
            left = asyncio.run(cleanup_stale(target, args, lines))
            if args.json:
                print(json.dumps(left.to_json(), indent=2), file=stdout)
            print(f"left behind: {left.left}" if left.left else "no smoke leftovers remain", file=lines)
            return ExitCode.FAILED if left.left else ExitCode.OK
        report = asyncio.run(smoke(target, args, lines))
    except KeyboardInterrupt:
        print("smoke: interrupted (run --cleanup-stale to remove what this run created)", file=stderr)
        return ExitCode.INTERRUPTED
    print(report.summary(), file=lines)
    if args.json:
        print(console.redact(report.dumps()), file=stdout)
    return int(report.exit_code)


if __name__ == "__main__":
    sys.exit(main())
