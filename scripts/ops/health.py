"""``health`` (every dependency, exit 3 when one is down) and ``status`` (what runs, versions, backlog).

Each dependency is probed directly with the stack's own credentials, not only
through the gateway: a gateway that reports "ok" while Centrifugo refuses its
key is exactly the failure an operator needs named.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from infra.local_process import running_pid
from scripts.ops.console import Console, ExitStatus, add_command
from scripts.ops.stack import Target

TIMEOUT = 5.0


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str
    latency_ms: float

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'DOWN'} {self.name:<10} {self.detail} ({self.latency_ms:.0f} ms)"


def centrifugo_base(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/api")] if url.endswith("/api") else url


def _timed(name: str, fn: Any) -> Probe:
    t0 = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # a probe reports, it never raises
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Probe(name, ok, detail, (time.monotonic() - t0) * 1000)


def probe_gateway(target: Target, http: httpx.Client) -> tuple[bool, str]:
    r = http.get(f"{target.gateway_url.rstrip('/')}/v1/health")
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200:
        return False, f"GET /v1/health → {r.status_code} {_brief(body) or r.text[:80]}"
    # "degraded": the gateway serves, but one of ITS dependencies is down from where it stands
    status = body.get("status") if isinstance(body, dict) else None
    return status == "ok", f"GET /v1/health → 200 {status}: {_brief(body)}"


def _brief(body: Any) -> str:
    if isinstance(body, dict):
        deps = body.get("dependencies") or body.get("checks") or {}
        if isinstance(deps, dict) and deps:
            return ", ".join(
                f"{k}={(v.get('status') if isinstance(v, dict) else v)}" for k, v in deps.items()
            )
        return str(body.get("status", ""))
    return ""


def probe_database(target: Target) -> tuple[bool, str]:
    if not target.db_path:
        return asyncio.run(_probe_d1(target))
    path = Path(target.db_path)
    if not path.exists():
        return False, f"{path} does not exist"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        verdict = con.execute("PRAGMA quick_check").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    missing = {"documents", "outbox"} - tables
    if verdict != "ok":
        return False, f"quick_check: {verdict}"
    if missing:
        return False, f"schema not migrated (missing {', '.join(sorted(missing))}): run `migrate`"
    return True, f"{path.name}: quick_check ok"


async def _probe_d1(target: Target) -> tuple[bool, str]:
    """A cloud stack's D1 through the same query API the gateway's ops adapter uses (no PRAGMA there)."""
    from scripts.ops.gateway_runtime import open_database

    async with open_database(target) as db:
        rows = (await db.execute("SELECT name FROM sqlite_master WHERE type='table'")).rows
    missing = {"documents", "outbox"} - {str(r["name"]) for r in rows}
    if missing:
        return False, f"schema not migrated (missing {', '.join(sorted(missing))}): run `migrate`"
    return True, f"D1 {target.d1_database_id}: schema present"


def probe_centrifugo(target: Target, http: httpx.Client) -> tuple[bool, str]:
    r = http.post(
        f"{centrifugo_base(target.centrifugo_api_url)}/api/info",
        headers={"X-API-Key": target.centrifugo_api_key},
        json={},
    )
    if r.status_code == 401:
        return False, "HTTP API refused the stack's API key (401)"
    if r.status_code != 200 or "result" not in r.json():
        return False, f"/api/info → {r.status_code}"
    nodes = r.json()["result"].get("nodes", [])
    version = nodes[0].get("version", "?") if nodes else "?"
    return True, f"/api/info ok, {len(nodes)} node(s), v{version}"


def probe_storage(target: Target) -> tuple[bool, str]:
    from scripts.ops.stores import ObjectStore

    ObjectStore(target).ping()
    return True, f"bucket {target.s3_bucket} reachable with the stack's keys"


def probe_auth(target: Target, http: httpx.Client) -> tuple[bool, str]:
    headers = {"api-key": target.auth_api_key} if target.auth_api_key else {}
    r = http.get(f"{target.auth_url.rstrip('/')}/apiversion", headers=headers)
    if r.status_code != 200:
        return False, f"/apiversion → {r.status_code}"
    return True, f"CDI versions {', '.join(r.json().get('versions', [])[-2:])}"


def probes(target: Target) -> list[Probe]:
    out: list[Probe] = []
    with httpx.Client(timeout=TIMEOUT) as http:
        if target.gateway_url:
            out.append(_timed("gateway", lambda: probe_gateway(target, http)))
        if target.db_path or target.d1_database_id:
            out.append(_timed("database", lambda: probe_database(target)))
        if target.centrifugo_api_url:
            out.append(_timed("realtime", lambda: probe_centrifugo(target, http)))
        if target.s3_endpoint:
            out.append(_timed("storage", lambda: probe_storage(target)))
        if target.auth_url:
            out.append(_timed("auth", lambda: probe_auth(target, http)))
    return out


def health_command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    results = probes(target)
    if not results:
        console.error("no dependency to probe: the stack exposes no URL (check `pulumi stack output`)")
        return ExitStatus.USAGE
    if not console.json_mode:
        for p in results:
            console.stdout.write(console.redact(p.line()) + "\n")
    down = [p.name for p in results if not p.ok]
    verdict = f"UNHEALTHY: {', '.join(down)}" if down else f"HEALTHY: {len(results)} dependencies"
    console.result(
        {"healthy": not down, "unhealthy": down, "dependencies": [asdict(p) for p in results]}, verdict
    )
    return ExitStatus.DEPENDENCY_UNHEALTHY if down else ExitStatus.OK


_BACKLOG = (
    "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS pending,"
    " (SELECT min(created_at) FROM outbox WHERE sent_at IS NULL) AS oldest,"
    " (SELECT max(attempts) FROM outbox WHERE sent_at IS NULL) AS attempts,"
    " (SELECT count(*) FROM _migrations) AS migrations, (SELECT count(*) FROM documents) AS documents"
)


def _backlog(
    pending: int, oldest_ms: int | None, attempts: int | None, migrations: int, docs: int
) -> dict[str, Any]:
    oldest = (time.time() * 1000 - oldest_ms) / 1000 if oldest_ms else None
    return {
        "pending": pending,
        "oldest_pending_s": round(oldest, 1) if oldest is not None else None,
        "max_attempts": attempts or 0,
        "migrations_applied": migrations,
        "documents": docs,
    }


def outbox_backlog(db_path: Path) -> dict[str, Any]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        row = con.execute(_BACKLOG).fetchone()
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    finally:
        con.close()
    return _backlog(*row)


async def _d1_backlog(target: Target) -> dict[str, Any]:
    from scripts.ops.gateway_runtime import open_database
    from worker.database import DatabaseError

    try:
        async with open_database(target) as db:
            r = (await db.execute(_BACKLOG)).rows[0]
    except DatabaseError as exc:
        return {"error": str(exc)}
    return _backlog(int(r["pending"]), r["oldest"], r["attempts"], int(r["migrations"]), int(r["documents"]))


def tool_versions(target: Target) -> dict[str, str]:
    """Versions of the binaries this machine runs the local stack with (cloud: what the probes report)."""
    import shutil
    import subprocess

    from scripts.ops.stack import BIN_DIR, ROOT

    out: dict[str, str] = {}
    path = f"{BIN_DIR}:{ROOT / '.venv' / 'bin'}"
    for name, argv in (("pulumi", ["version"]), ("seaweedfs", ["version"]), ("centrifugo", ["version"])):
        exe = shutil.which("weed" if name == "seaweedfs" else name, path=path)
        if not exe or (name == "seaweedfs" and not target.is_local):
            continue
        try:
            proc = subprocess.run([exe, *argv], capture_output=True, text=True, timeout=10, check=False)
            out[name] = (proc.stdout.strip().splitlines() or ["?"])[0][:80]
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "unavailable"
    return out


def _oldest(age: float | None) -> str:
    return f" (oldest {age:.0f} s)" if age is not None else ""


def status_command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    services = {}
    for name, pid_file in sorted(target.pid_files.items()):
        pid = running_pid(pid_file)
        services[name] = {"pid": pid, "running": pid is not None}
    results = {p.name: asdict(p) for p in probes(target)}
    if target.db_path:
        backlog = outbox_backlog(Path(target.db_path)) if Path(target.db_path).exists() else {}
    elif target.d1_database_id:
        backlog = asyncio.run(_d1_backlog(target))
    else:
        backlog = {}
    versions = tool_versions(target)
    payload = {
        "stack": target.stack,
        "versions": versions,
        "services": services,
        "dependencies": results,
        "outbox": backlog,
        "endpoints": {
            "gateway": target.gateway_url,
            "realtime_ws": target.centrifugo_ws_url,
            "s3": target.s3_endpoint,
            "auth": target.auth_url,
        },
    }
    if not console.json_mode:
        w = console.stdout.write
        w(f"stack {target.stack or '(env)'}\n")
        for name, version in versions.items():
            w(f"  version {name:<11} {version}\n")
        for name, s in services.items():
            w(f"  process {name:<11} {'running' if s['running'] else 'STOPPED'} pid={s['pid']}\n")
        for p in results.values():
            w(console.redact(f"  {'ok  ' if p['ok'] else 'DOWN'} {p['name']:<10} {p['detail']}\n"))
        if backlog:
            w(
                f"  outbox: {backlog.get('pending')} pending"
                f"{_oldest(backlog.get('oldest_pending_s'))}, "
                f"{backlog.get('documents')} documents, "
                f"{backlog.get('migrations_applied')} migrations applied\n"
            )
    down = [n for n, p in results.items() if not p["ok"]]
    console.result(payload, "UNHEALTHY: " + ", ".join(down) if down else "all dependencies healthy")
    return ExitStatus.DEPENDENCY_UNHEALTHY if down else ExitStatus.OK


def add_parsers(sub: Any) -> None:
    add_command(
        sub,
        "health",
        health_command,
        __doc__,
        help="probe every dependency; exit 3 when one is unhealthy",
        examples=["health --stack local", "health --stack local --json   # for CI"],
    )
    add_command(
        sub,
        "status",
        status_command,
        __doc__,
        help="what runs (pids), versions, outbox backlog",
        examples=["status --stack local"],
    )
