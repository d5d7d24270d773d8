"""``roles``: user roles through the gateway's admin API (the auth core's user-roles recipe).

    roles list                      every role
    roles create ROLE               create a role (idempotent)
    roles delete ROLE               delete a role and every assignment of it
    roles show USER_ID              one user's roles
    roles assign USER_ID ROLE       give a user a role (the role must exist)
    roles remove USER_ID ROLE       take it away

An assignment change is written into the user's live sessions: their access tokens carry it from the
next refresh; a token already issued keeps its roles until it expires (AUTH_ACCESS_TOKEN_VALIDITY).
``--dry-run`` prints the request it would send and sends nothing that writes.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

import httpx

from scripts.ops.console import Console, ExitStatus, OpsError, add_command
from scripts.ops.stack import Target

#: action -> (method, path template, positional arguments it takes)
ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "list": ("GET", "/v1/auth/roles", ()),
    "create": ("PUT", "/v1/auth/roles/{role}", ("role",)),
    "delete": ("DELETE", "/v1/auth/roles/{role}", ("role",)),
    "show": ("GET", "/v1/auth/users/{user_id}/roles", ("user_id",)),
    "assign": ("PUT", "/v1/auth/users/{user_id}/roles/{role}", ("user_id", "role")),
    "remove": ("DELETE", "/v1/auth/users/{user_id}/roles/{role}", ("user_id", "role")),
}


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    target.require("gateway_url", "admin_key")
    method, template, wanted = ACTIONS[args.action]
    given = list(args.names)
    if len(given) != len(wanted):
        raise OpsError(f"roles {args.action} takes {' '.join(w.upper() for w in wanted) or 'no arguments'}",
                       ExitStatus.USAGE)
    path = template.format(**{name: quote(value, safe="") for name, value in zip(wanted, given, strict=True)})
    if args.dry_run and method != "GET":
        console.result({"dry_run": True, "request": f"{method} {path}"}, f"would send {method} {path}")
        return ExitStatus.OK
    url = target.gateway_url.rstrip("/") + path
    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {target.admin_key}"}) as http:
        r = http.request(method, url)
    body: Any = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
    if r.status_code >= 400:
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        detail = error.get("message", r.text[:200])
        message = f"{method} {path} → {r.status_code} {error.get('code', '')}: {detail}"
        status = ExitStatus.USAGE if r.status_code in (400, 404) else ExitStatus.FAILED
        raise OpsError(message, status)
    console.result(body or {}, _human(args.action, body or {}))
    return ExitStatus.OK


def _human(action: str, body: dict[str, Any]) -> str:
    if action == "list":
        return "roles: " + (", ".join(body.get("roles", [])) or "(none)")
    if action in ("create", "delete"):
        done = body.get("created" if action == "create" else "deleted")
        return f"OK {action}d {body.get('role')}" if done else f"OK {body.get('role')}: nothing to do"
    line = f"{body.get('user_id')}: " + (", ".join(body.get("roles", [])) or "(no roles)")
    if "sessions_updated" in body:
        line += f" ({body['sessions_updated']} live session(s) get it at their next refresh)"
    return line


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "roles",
        command,
        __doc__,
        help="list, create, delete, assign and remove user roles (admin key)",
        examples=["roles list --stack local", "roles create editor --stack local",
                  "roles assign 5f1c…-user-id editor --stack local"],
    )
    p.add_argument("action", choices=sorted(ACTIONS), help="what to do")
    p.add_argument("names", nargs="*", metavar="USER_ID|ROLE",
                   help="the user id and/or role the action takes")
