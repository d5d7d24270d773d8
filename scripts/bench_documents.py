# ruff: noqa: S608  -- SQL built from module constants only
"""Benchmark the document API over real HTTP against the same operations on raw SQLite (not a test).

    .venv/bin/python scripts/bench_documents.py [--seconds 5] [--connections 16] [--users 10] \
        [--auth jwt|jwt-nocache|hmac] [--pocketbase auto|off|PATH] [--repeat 3] [--sharing-only]

One uvicorn process, started with the local stack's options (``worker.asgi.run``: uvloop + httptools),
serves ``worker.asgi`` on a free loopback port with a fresh SQLite file; ``wrk`` (apt package ``wrk``;
one thread, N keep-alive connections) drives it. Auth is ON: every request carries an RS256 SuperTokens-
shaped session JWT (a 2048-bit key) checked by the gateway's own ``worker.auth.SessionAuthenticator``
(its JWKS fed from a file instead of the core), so private-collection RLS scoping is real. Each user
reuses one token, as a client does, so ``--auth jwt`` shows the verified-token cache at work;
``--auth jwt-nocache`` turns the cache off (an RSA verify + PyJWT parse per request);
``--auth hmac`` swaps in HMAC-SHA256 stub tokens to show the store's own ceiling. A first phase serves
an empty ASGI app the same way: its figures are the machine's floor right now (on a busy machine every
figure is CPU-starved; "server CPU us/req" is what a request costs).

Phases: creates (notes, document + outbox row each), gets by id, 20-row filtered lists
(``status == "open"`` on the indexed path, scoped to the caller). Then the sharing patterns of
docs/rules.md, each as a ratio to the owner-only preset (``notes``) in the same run: a
membership-array rule (``lists``: create with three members, list 20 of the lists one owns or is a
member of, against an unfiltered owner-only list) and a team-lookup rule (``tasks``: create into a
team one edits, list 20 of one's team's tasks by ``team_id``, against the filtered owner-only list),
with ``EXPLAIN QUERY PLAN`` of each list query. Each sharing phase runs back to back with its
owner-only baseline (alternating which goes first), ``--repeat`` times; the table shows medians, the
ratio of every round (their spread is the noise of this machine now) and server CPU per request.
``--pocketbase`` then runs the same phases against PocketBase (scripts/bench_pocketbase.py) and
prints gateway ÷ PocketBase. Last, the same
three operations run directly with Python ``sqlite3`` on the gateway's file (one connection, WAL,
synchronous=NORMAL, each create one transaction of document + outbox row) as the ratio's denominator.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not scripts/: its modules (e.g. secrets.py) would shadow the stdlib

STATUSES = ("open", "done", "archived")
LIST_BODY = '{"where":[["status","==","open"]],"limit":20}'


# -- server side ---------------------------------------------------------------------------------------


def jwt_authenticator(gateway, jwk_file: str, cache: bool):  # type: ignore[no-untyped-def]
    """The gateway's own verifier (worker.auth.SessionAuthenticator), fed this run's JWK instead of a core.

    RS256 signature, exp/iat, session-token shape and tenant are checked exactly as in production; only the
    JWKS comes from a file rather than from SuperTokens. ``cache=False`` disables the verified-token cache
    so every request pays the full RSA + PyJWT check.
    """
    from worker.adapters.pyjwt_signatures import PyJwtSignatures
    from worker.auth import TOKEN_CACHE_SIZE, SessionAuthenticator
    from worker.jwks import JwksCache

    jwk = json.loads(Path(jwk_file).read_text())

    async def fetch():  # type: ignore[no-untyped-def]
        return [jwk], 3600

    return SessionAuthenticator(gateway.settings, JwksCache(fetch, PyJwtSignatures()),
                                token_cache_size=TOKEN_CACHE_SIZE if cache else 0)


async def _empty_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """The calibration floor: what uvicorn alone costs per request on this machine right now."""
    if scope["type"] == "http":
        await receive()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


def serve_floor(port: int) -> None:
    from worker.asgi import run

    run(_empty_app, "127.0.0.1", port)


class HmacAuthenticator:
    """``--auth hmac``: ``<user>.<hex HMAC-SHA256(user)>`` tokens, a few microseconds to verify.

    Shows the document store's own ceiling with RLS still scoped per user (no RSA, no PyJWT).
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def token(secret: bytes, user: str) -> str:
        return f"{user}.{hmac.new(secret, user.encode(), hashlib.sha256).hexdigest()}"

    async def authenticate(self, request):  # type: ignore[no-untyped-def]
        from worker.http import ApiError
        from worker.principal import Principal

        given = (request.header("authorization") or "").removeprefix("Bearer ")
        user = given.partition(".")[0]
        if not user or not hmac.compare_digest(given, self.token(self._secret, user)):
            raise ApiError(401, "unauthenticated", "a valid access token is required")
        return Principal(user_id=user)


def serve(port: int, db_path: str, key_file: str, mode: str = "jwt") -> None:
    # publishing is realtime's (scripts/bench_realtime.py); events still go to the outbox in each batch
    os.environ.update(
        TELESTACK_DB_PATH=db_path,
        TELESTACK_ADMIN_KEY="bench-admin-key-not-secret",
        TELESTACK_OUTBOX_DRAIN_PER_REQUEST="0",
    )
    from worker.asgi import create_app, run

    app = create_app()
    app.gateway.authenticator = (
        HmacAuthenticator(Path(key_file).read_bytes())
        if mode == "hmac"
        else jwt_authenticator(app.gateway, key_file, cache=mode == "jwt")
    )
    run(app, "127.0.0.1", port)  # the local stack's uvicorn options (worker/asgi.py)


# -- client side ---------------------------------------------------------------------------------------


def _tokens(users: int, workdir: Path, mode: str = "jwt") -> tuple[list[str], Path]:
    if mode == "hmac":
        secret = workdir / "hmac.key"
        secret.write_bytes(os.urandom(32))
        return [HmacAuthenticator.token(secret.read_bytes(), f"user-{i}") for i in range(users)], secret
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk_file = workdir / "jwk.json"
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench-1",
           "alg": "RS256", "use": "sig"}
    jwk_file.write_text(json.dumps(jwk))
    now = int(time.time())
    tokens = [  # the shape of a SuperTokens session access token (what worker.auth accepts)
        jwt.encode({"sub": f"user-{i}", "iat": now, "exp": now + 3600, "tId": "public", "rsub": f"user-{i}",
                    "sessionHandle": f"s{i}", "refreshTokenHash1": "ab" * 32},
                   key, algorithm="RS256", headers={"kid": "bench-1", "version": "5"})
        for i in range(users)
    ]
    return tokens, jwk_file


_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _lua_list(items: list[str]) -> str:
    return "{" + ",".join(json.dumps(i) for i in items) + "}"


def _scripts(workdir: Path, tokens: list[str]) -> dict[str, Path]:
    toks = _lua_list(tokens)
    create = (
        f"""
local tokens = {toks}
local statuses = {{"open", "done", "archived"}}
local n = 0
request = function()
  n = n + 1
  local body = string.format('{{"data":{{"title":"note %d","status":"%s","priority":%d,' ..
    '"body":"lorem ipsum dolor sit amet","tags":["a","b"]}}}}', n, statuses[(n % 3) + 1], n % 6)
  return wrk.format("POST", "/v1/collections/notes/documents",
    {{["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1],
      ["Content-Type"] = "application/json"}}, body)
end
"""
        + _DONE
    )
    lists = (
        f"""
local tokens = {toks}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/collections/notes/query",
    {{["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1], ["Content-Type"] = "application/json"}},
    '{LIST_BODY}')
end
"""
        + _DONE
    )
    paths = {"create": workdir / "create.lua", "list": workdir / "list.lua"}
    paths["create"].write_text(create)
    paths["list"].write_text(lists)
    return paths


def _get_script(workdir: Path, tokens: list[str], db_path: Path) -> Path:
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "SELECT id, owner_id FROM documents WHERE collection = 'notes' ORDER BY random() " "LIMIT 20000"
    ).fetchall()
    conn.close()
    index = {f"user-{i}": t for i, t in enumerate(tokens)}
    ids = _lua_list([r[0] for r in rows])
    toks = _lua_list([index[r[1]] for r in rows])
    path = workdir / "get.lua"
    path.write_text(
        f"""
local ids = {ids}
local tokens = {toks}
local n = 0
request = function()
  n = n + 1
  local i = (n % #ids) + 1
  return wrk.format("GET", "/v1/collections/notes/documents/" .. ids[i],
    {{["Authorization"] = "Bearer " .. tokens[i]}})
end
"""
        + _DONE
    )
    return path


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), load-independent cost of the work it did."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, script: Path, seconds: float, connections: int, pid: int) -> dict[str, float]:
    cpu0 = _cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    reqs, dur_us, p50, p99, bad_status, sock_errors = (int(x) for x in line.split()[1:])
    if bad_status or sock_errors:
        raise SystemExit(f"wrk saw {bad_status} non-2xx responses and {sock_errors} socket errors:\n{out}")
    cpu_us = (_cpu_seconds(pid) - cpu0) * 1e6 / max(reqs, 1)
    return {
        "rps": reqs / (dur_us / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "requests": reqs,
        "cpu_us": cpu_us,
    }


# -- raw SQLite denominator ------------------------------------------------------------------------------


def _raw(db_path: Path, seconds: float, users: int) -> dict[str, float]:
    from worker import jsoncodec
    from worker.collections import Registry
    from worker.query import parse_query
    from worker.store import COLUMNS

    conn = sqlite3.connect(db_path, isolation_level=None, cached_statements=512)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    results: dict[str, float] = {}
    ins_doc = f"INSERT INTO documents (collection, {COLUMNS}) VALUES ('notes', ?, ?, ?, ?, ?, ?)"
    ins_out = (
        "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            n += 1
            now = int(time.time() * 1000)
            owner = f"user-{n % users}"
            data = jsoncodec.dumps(
                {
                    "title": f"raw {n}",
                    "status": STATUSES[n % 3],
                    "priority": n % 6,
                    "body": "lorem ipsum dolor sit amet",
                    "tags": ["a", "b"],
                }
            )
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(ins_doc, (f"raw{n}", owner, data, 1, now, now))
            conn.execute(ins_out, ("notes", f"raw{n}", owner, 1, "created", data, now))
            conn.execute("COMMIT")
    results["create"] = n / (time.perf_counter() - t0)

    ids = [r[0] for r in conn.execute("SELECT id, owner_id FROM documents ORDER BY random() LIMIT 20000")]
    get_sql = f"SELECT {COLUMNS} FROM documents WHERE collection = 'notes' AND id = ?"
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for doc_id in ids[:2000]:
            conn.execute(get_sql, (doc_id,)).fetchall()
            n += 1
    results["get"] = n / (time.perf_counter() - t0)

    # the exact SQL the gateway sends for the list phase (rendered by worker/store.py)
    from worker import store

    class _Capture:
        sql = ""
        params: tuple = ()

        async def execute(self, sql, params=()):  # type: ignore[no-untyped-def]
            from worker.database import Result

            self.sql, self.params = sql, params
            return Result()

    import asyncio

    from worker.adapters.config_files import load_collections

    coll = Registry.from_dict(load_collections(ROOT / "config")).get("notes")
    cap = _Capture()
    asyncio.run(store.select(cap, coll, parse_query(json.loads(LIST_BODY)), "user-0"))  # type: ignore[arg-type]
    print(f"list SQL: {cap.sql}", file=sys.stderr)
    plan = conn.execute("EXPLAIN QUERY PLAN " + cap.sql, cap.params).fetchall()
    print("plan: " + " | ".join(r[-1] for r in plan), file=sys.stderr)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for u in range(200):
            params = (f"user-{u % users}", *cap.params[1:])
            rows = conn.execute(cap.sql, params).fetchall()
            assert len(rows) == 21, len(rows)
            n += 1
    results["list"] = n / (time.perf_counter() - t0)
    conn.close()
    return results


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 20
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310
            return
        except urllib.error.HTTPError:
            return  # e.g. 401: up and answering
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"server for {url} did not start") from None
            time.sleep(0.1)


Sharing = dict[str, list[tuple[dict[str, float], dict[str, float]]]]


def _server_phases(args: argparse.Namespace, workdir: Path, db_path: Path, tokens: list[str],
                   key: Path) -> tuple[dict[str, dict[str, float]], Sharing]:
    port = free_port()
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), str(db_path), str(key), args.auth],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    gw: dict[str, dict[str, float]] = {}
    try:
        _wait_up(f"{url}/v1/collections/notes/documents/x", server)
        scripts = _scripts(workdir, tokens)
        gw["create"] = _wrk(url, scripts["create"], args.seconds, args.connections, server.pid)
        if not args.sharing_only:
            gw["get"] = _wrk(
                url, _get_script(workdir, tokens, db_path), args.seconds, args.connections, server.pid
            )
            gw["list"] = _wrk(url, scripts["list"], args.seconds, args.connections, server.pid)
        sharing = _sharing_phases(url, workdir, tokens, args, server.pid)
    finally:
        server.terminate()  # our own child (Popen: by PID)
        server.wait(timeout=10)
        log.close()
    errors = (workdir / "server.log").read_text(errors="replace")
    if errors.strip():
        print(f"server output:\n{errors[-3000:]}", file=sys.stderr)
    return gw, sharing


# -- sharing patterns (docs/rules.md) --------------------------------------------------------------------

TEAMS = 5


def _teams_of(i: int) -> tuple[int, int]:
    """The teams user-i is a member and an editor of (each team has two neighbouring user groups)."""
    return i % TEAMS, (i - 1) % TEAMS


def _seed_teams(url: str, tokens: list[str]) -> None:
    users = len(tokens)
    for k in range(TEAMS):
        members = [f"user-{i}" for i in range(users) if k in _teams_of(i)]
        body = json.dumps({"id": f"team-{k}", "data": {"name": f"team {k}", "members": members,
                                                       "editors": members}}).encode()
        req = urllib.request.Request(  # noqa: S310 -- loopback bench server
            f"{url}/v1/collections/teams/documents", data=body, method="POST",
            headers={"authorization": f"Bearer {tokens[k % users]}", "content-type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()  # noqa: S310


def _request_script(workdir: Path, name: str, tokens: list[str], lua_body: str, per_token: list[str]) -> Path:
    """A wrk script: request n goes out with token n % #tokens and that token's ``extra`` string."""
    path = workdir / f"{name}.lua"
    path.write_text(f"""
local tokens = {_lua_list(tokens)}
local extra = {_lua_list(per_token)}
local n = 0
request = function()
  n = n + 1
  local i = (n % #tokens) + 1
  local headers = {{["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json"}}
  {lua_body}
end
""" + _DONE)
    return path


#: (label, the rule's phase, its owner-only baseline phase) of the sharing table
SHARING_PAIRS = (
    ("create, membership array (lists)", "lists_create", "notes_create"),
    ("create, team lookup (tasks)", "tasks_create", "notes_create"),
    ("list 20, membership array (lists)", "lists_list", "notes_list_all"),
    ("list 20 by team_id, team lookup (tasks)", "tasks_list", "notes_list_open"),
)


def _sharing_phases(url: str, workdir: Path, tokens: list[str], args: argparse.Namespace,
                    pid: int) -> Sharing:
    """Each rule phase paired with its owner-only baseline, ``--repeat`` times: (rule, baseline) per round.

    A pair runs back to back (alternating which goes first), so both see the same machine load and
    nearly the same database; the ratio of each round is taken within its pair.
    """
    users = len(tokens)
    _seed_teams(url, tokens)
    members = [json.dumps([f"user-{(i + d) % users}" for d in (1, 2, 3)]) for i in range(users)]
    teams = [f"team-{_teams_of(i)[0]}" for i in range(users)]
    blank = [""] * users
    scripts = {
        "notes_create": _request_script(workdir, "notes_create", tokens, """return wrk.format("POST",
    "/v1/collections/notes/documents", headers, string.format('{"data":{"title":"note %d","status":"open",' ..
    '"priority":%d,"body":"lorem ipsum dolor sit amet","tags":["a","b"]}}', n, n % 6))""", blank),
        "notes_list_all": _request_script(workdir, "notes_all", tokens, """return wrk.format("POST",
    "/v1/collections/notes/query", headers, '{"limit":20}')""", blank),
        "notes_list_open": _request_script(workdir, "notes_open", tokens, f"""return wrk.format("POST",
    "/v1/collections/notes/query", headers, '{LIST_BODY}')""", blank),
        "lists_create": _request_script(workdir, "lists_create", tokens, """return wrk.format("POST",
    "/v1/collections/lists/documents", headers,
    string.format('{"data":{"title":"list %d","members":%s}}', n, extra[i]))""", members),
        "lists_list": _request_script(workdir, "lists_list", tokens, """return wrk.format("POST",
    "/v1/collections/lists/query", headers, '{"limit":20}')""", blank),
        "tasks_create": _request_script(workdir, "tasks_create", tokens, """return wrk.format("POST",
    "/v1/collections/tasks/documents", headers,
    string.format('{"data":{"title":"task %d","team_id":"%s"}}', n, extra[i]))""", teams),
        "tasks_list": _request_script(workdir, "tasks_list", tokens, """return wrk.format("POST",
    "/v1/collections/tasks/query", headers,
    string.format('{"where":[["team_id","==","%s"]],"limit":20}', extra[i]))""", teams),
    }
    rounds: Sharing = {}
    for r in range(args.repeat):
        for _, rule, base in SHARING_PAIRS:
            order = (rule, base) if r % 2 else (base, rule)
            got = {name: _wrk(url, scripts[name], args.seconds, args.connections, pid) for name in order}
            rounds.setdefault(rule, []).append((got[rule], got[base]))
    return rounds


def _plans(db_path: Path) -> list[tuple[str, list[str]]]:
    """EXPLAIN QUERY PLAN of the list queries the sharing phases sent, as the gateway builds them."""
    import asyncio

    from worker import documents, store
    from worker.adapters.config_files import load_collections
    from worker.collections import Registry
    from worker.database import Result
    from worker.principal import Principal
    from worker.query import parse_query

    class Capture:
        sql, params = "", ()

        async def execute(self, sql, params=()):  # type: ignore[no-untyped-def]
            self.sql, self.params = sql, params
            return Result()

    reg = Registry.from_dict(load_collections(ROOT / "config"))
    who = Principal(user_id="user-1")
    cases = [
        ("owner-only (notes), status == open", "notes", {"where": [["status", "==", "open"]], "limit": 20}),
        ("owner-only (notes), no filter", "notes", {"limit": 20}),
        ("membership array (lists), no filter", "lists", {"limit": 20}),
        ("team lookup (tasks), team_id == team-1", "tasks",
         {"where": [["team_id", "==", "team-1"]], "limit": 20}),
    ]
    conn = sqlite3.connect(db_path)
    out = []
    for label, name, body in cases:
        coll, cap = reg.get(name), Capture()
        asyncio.run(store.select(cap, coll, parse_query(body), documents.read_scope(who, coll)))  # type: ignore[arg-type]
        rows = conn.execute("EXPLAIN QUERY PLAN " + cap.sql, cap.params).fetchall()
        out.append((label, [f"{'  ' * (r[1] > 0)}{r[3]}" for r in rows]))
    conn.close()
    return out


def free_port() -> int:
    from tests.support.paths import free_port as _free

    return _free()


AUTH_LABELS = {
    "jwt": "RS256 session JWT, worker.auth verifier with its verified-token cache",
    "jwt-nocache": "RS256 session JWT, full PyJWT verification on every request (token cache off)",
    "hmac": "HMAC-SHA256 stub tokens",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of each sharing pair (rule phase + owner-only phase); medians printed")
    parser.add_argument("--sharing-only", action="store_true",
                        help="only the sharing pairs (no floor, get, list, PocketBase, raw SQLite)")
    parser.add_argument(
        "--auth",
        choices=tuple(AUTH_LABELS),
        default="jwt",
        help="jwt: RS256 session tokens through worker.auth (default; repeated tokens hit its cache); "
        "jwt-nocache: the same with the cache off (an RSA verify per request); "
        "hmac: HMAC-SHA256 stub tokens (the store's ceiling, RLS still on)",
    )
    parser.add_argument(
        "--pocketbase",
        default="off",
        metavar="auto|off|PATH",
        help="also run PocketBase (scripts/bench_pocketbase.py) with the same driver and print ratios",
    )
    parser.add_argument("--serve", nargs=4, metavar=("PORT", "DB", "KEY", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(int(args.serve[0]), args.serve[1], args.serve[2], args.serve[3])
    if args.serve_floor:
        return serve_floor(args.serve_floor)
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    pb_binary = None
    if args.pocketbase != "off":
        from scripts import bench_pocketbase

        pb_binary = bench_pocketbase.find_binary(args.pocketbase)
        if pb_binary is None or not pb_binary.exists():
            raise SystemExit(f"no PocketBase binary; build it with:\n  {bench_pocketbase.BUILD}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    load_before = os.getloadavg()[0]
    try:
        db_path = workdir / "bench.sqlite3"
        tokens, key = _tokens(args.users, workdir, "hmac" if args.auth == "hmac" else "jwt")
        gw: dict[str, dict[str, float]] = {}
        if not args.sharing_only:
            gw["floor"] = _floor(args, workdir)
        served, sharing = _server_phases(args, workdir, db_path, tokens, key)
        gw.update(served)
        pb = raw = None
        if not args.sharing_only:
            if pb_binary is not None:
                from scripts import bench_pocketbase

                pb = bench_pocketbase.run(pb_binary, workdir, args.seconds, args.connections, args.users)
            raw = _raw(db_path, args.seconds, args.users)
        docs = sqlite3.connect(db_path).execute("SELECT count(*) FROM documents").fetchone()[0]
        plans = _plans(db_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if raw is not None:
        _report(args, gw, raw, pb, docs)
    else:
        print(f"\ndocument API benchmark, sharing pairs only: wrk -t1 -c{args.connections}, "
              f"{args.seconds:g}s per phase, {AUTH_LABELS[args.auth]}, {args.users} users, "
              f"{docs} documents at the end")
    _report_load(load_before)
    _report_sharing(sharing, plans)


def _floor(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """The empty ASGI app's figures (see the module doc)."""
    floor_script = workdir / "floor.lua"
    floor_script.write_text(_DONE)
    port = free_port()
    floor = subprocess.Popen([sys.executable, __file__, "--serve-floor", str(port)])
    try:
        _wait_up(f"http://127.0.0.1:{port}/", floor)
        return _wrk(f"http://127.0.0.1:{port}", floor_script, args.seconds, args.connections, floor.pid)
    finally:
        floor.terminate()  # our own child (Popen: by PID)
        floor.wait(timeout=10)


def _report(args: argparse.Namespace, gw: dict[str, dict[str, float]], raw: dict[str, float],
            pb: dict | None, docs: int) -> None:
    print(
        f"\ndocument API benchmark: wrk -t1 -c{args.connections}, {args.seconds:g}s per phase, "
        f"{AUTH_LABELS[args.auth]}, {args.users} users, {docs} documents at the end"
    )
    print(
        f"{'operation':<22}{'gateway/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'raw sqlite/s':>14}{'ratio':>8}"
        f"{'server CPU us/req':>19}"
    )
    f = gw["floor"]
    print(
        f"{'empty ASGI app (floor)':<22}{f['rps']:>11,.0f}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
        f"{'':>22}{f['cpu_us']:>19.0f}"
    )
    names = {"create": "create (doc+outbox)", "get": "get by id", "list": "list 20 (filtered)"}
    for op, label in names.items():
        g = gw[op]
        print(
            f"{label:<22}{g['rps']:>11,.0f}{g['p50_ms']:>9.2f}{g['p99_ms']:>9.2f}{raw[op]:>14,.0f}"
            f"{g['rps'] / raw[op]:>8.3f}{g['cpu_us']:>19.0f}"
        )
    if pb is not None:
        print(f"\nPocketBase {pb['version']} side by side (same wrk driver, same machine, same run; "
              f"PocketBase uses both cores, the gateway one process)")
        print(f"{'operation':<22}{'gateway/s':>11}{'PocketBase/s':>14}{'PB p50':>9}{'PB p99':>9}"
              f"{'gateway÷PB':>12}{'PB CPU us/req':>15}")
        for op, label in names.items():
            g, p = gw[op], pb[op]
            print(f"{label:<22}{g['rps']:>11,.0f}{p['rps']:>14,.0f}{p['p50_ms']:>9.2f}{p['p99_ms']:>9.2f}"
                  f"{g['rps'] / p['rps']:>12.2f}{p['cpu_us']:>15.0f}")


def _report_load(load_before: float) -> None:
    load = os.getloadavg()
    print(
        f"load average: {load_before:.2f} before the run, {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} "
        f"(1/5/15 min) after, on {os.cpu_count()} CPUs"
        + (
            "  (machine busy: throughput is CPU-starved; 'server CPU us/req' is the load-independent cost)"
            if load[0] > (os.cpu_count() or 1)
            else ""
        )
    )


def _report_sharing(rounds: Sharing, plans: list[tuple[str, list[str]]]) -> None:
    n = len(next(iter(rounds.values())))
    print(f"\naccess rules with sharing (docs/rules.md): each rule phase paired with its owner-only "
          f"baseline, {n} rounds, medians (target ratio >= 0.7)")
    print(f"{'operation':<42}{'rule/s':>8}{'owner-only/s':>13}{'ratio':>7}{'ratios of the rounds':>22}"
          f"{'CPU us/req':>12}{'owner-only':>11}{'CPU ratio':>10}")
    for label, rule, _ in SHARING_PAIRS:
        pairs = rounds[rule]
        ratios = [g["rps"] / b["rps"] for g, b in pairs]
        each = " ".join(f"{x:.2f}" for x in ratios)
        cpu_ratio = median(b["cpu_us"] / g["cpu_us"] for g, b in pairs)
        rule_rps, base_rps = median(g["rps"] for g, _ in pairs), median(b["rps"] for _, b in pairs)
        rule_cpu, base_cpu = median(g["cpu_us"] for g, _ in pairs), median(b["cpu_us"] for _, b in pairs)
        print(f"{label:<42}{rule_rps:>8,.0f}{base_rps:>13,.0f}{median(ratios):>7.2f}{each:>22}"
              f"{rule_cpu:>12.0f}{base_cpu:>11.0f}{cpu_ratio:>10.2f}")
    print("(owner-only baselines: creates = notes create; lists = notes list 20 without a filter; "
          "tasks = notes list 20 filtered on an indexed path. CPU ratio: owner-only server CPU per request "
          "over the rule's, per round: the throughput ratio of a CPU-bound server, whatever else the "
          "machine runs)")
    print("\nEXPLAIN QUERY PLAN of the list queries (caller user-1):")
    for label, lines in plans:
        print(f"  {label}:")
        for line in lines:
            print(f"    {line}")


if __name__ == "__main__":
    main()
