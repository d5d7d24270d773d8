# ruff: noqa: S310  -- every URL here is a loopback URL this script built
"""PocketBase on the same machine, the same load driver and the same operations as scripts/bench_documents.py.

    .venv/bin/python scripts/bench_pocketbase.py [--seconds 5] [--connections 16] [--users 10] [--binary PATH]

Usually run through ``scripts/bench_documents.py --pocketbase auto``, which prints both side by side with
ratios; alone, this prints PocketBase's figures only. The binary is PocketBase's own example app built from
the Go module proxy and cached outside the repository (see :data:`BUILD`). It is started on a free
loopback port with a fresh data directory (``--dev=false``: dev mode logs every SQL statement); a
superuser creates, through the admin API, a ``notes`` collection with the same fields and limits as
config/collections/notes.yaml, owner-only rules (``owner = @request.auth.id``) and indexes shaped like
the gateway's ((owner, id) and (owner, status, id)). Each of ``--users`` users signs up and signs in
(PocketBase's HS256 auth token; PocketBase verifies it and loads the user record on every request).
Phases: creates (owner set to the caller, enforced by the create rule), gets by id, 20-row lists
``status = 'open'`` sorted by id (the gateway's default order) with ``skipTotal=1`` (the gateway does not
count unless asked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not scripts/: its modules (e.g. secrets.py) would shadow the stdlib

VERSION = "v0.36.8"
BIN_DIR = Path.home() / ".cache" / "telestack" / "bin"
BUILD = (f"CGO_ENABLED=0 GOBIN={BIN_DIR}/pocketbase-{VERSION} "
         f"go install github.com/pocketbase/pocketbase/examples/base@{VERSION}")
LIST_QUERY = "filter=" + urllib.parse.quote("status='open'") + "&perPage=20&skipTotal=1&sort=id"


def find_binary(given: str = "auto") -> Path | None:
    """``auto``: the cached build of :data:`VERSION`, else the newest cached ``pocketbase-*/base``."""
    if given not in ("auto", ""):
        return Path(given)
    preferred = BIN_DIR / f"pocketbase-{VERSION}" / "base"
    if preferred.exists():
        return preferred
    found = sorted(BIN_DIR.glob("pocketbase-*/base"))
    return found[-1] if found else None


def _api(url: str, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"PocketBase {method} {url}: HTTP {exc.code} {exc.read()[:500]!r}") from None


def _collection(users_id: str) -> dict[str, Any]:
    owner_only = "owner = @request.auth.id"
    return {
        "name": "notes",
        "type": "base",
        "listRule": owner_only,
        "viewRule": owner_only,
        "createRule": '@request.auth.id != "" && @request.body.owner = @request.auth.id',
        "updateRule": owner_only,
        "deleteRule": owner_only,
        "fields": [
            {"name": "title", "type": "text", "required": True, "min": 1, "max": 200},
            {"name": "body", "type": "text"},
            {"name": "status", "type": "select", "maxSelect": 1, "values": ["open", "done", "archived"]},
            {"name": "priority", "type": "number", "min": 0, "max": 5, "onlyInt": True},
            {"name": "tags", "type": "json"},
            {"name": "meta", "type": "json"},
            {"name": "owner", "type": "relation", "collectionId": users_id, "maxSelect": 1, "required": True,
             "cascadeDelete": True},
        ],
        "indexes": [
            "CREATE INDEX idx_notes_owner ON notes (owner, id)",  # the gateway's documents_owner
            "CREATE INDEX idx_notes_owner_status ON notes (owner, status, id)",  # its ix_notes_* (private)
        ],
    }


class PocketBase:
    """One PocketBase process on a free loopback port, with a notes collection and signed-in users."""

    def __init__(self, binary: Path, workdir: Path, users: int) -> None:
        from tests.support.paths import free_port

        self.binary = binary
        self.dir = workdir / "pb_data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: list[str] = []
        self.user_ids: list[str] = []
        # the example app reports "(untracked)": the cache directory's name carries the module version
        name = binary.parent.name
        self.version = name.removeprefix("pocketbase-") if name.startswith("pocketbase-") else str(binary)

    def __enter__(self) -> PocketBase:
        import secrets

        email, password = "bench-admin@example.com", secrets.token_urlsafe(18)
        common = [f"--dir={self.dir}", "--dev=false"]
        subprocess.run([str(self.binary), "superuser", "upsert", email, password, *common],
                       check=True, capture_output=True)
        self.log = (self.dir.parent / "pocketbase.log").open("wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", f"--http=127.0.0.1:{self.port}", "--hooksWatch=false", *common],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir.parent,
        )
        from scripts.bench_documents import _wait_up

        _wait_up(f"{self.url}/api/health", self.proc)
        admin = _api(f"{self.url}/api/collections/_superusers/auth-with-password", "POST",
                     {"identity": email, "password": password})["token"]
        users_id = _api(f"{self.url}/api/collections/users", token=admin)["id"]
        _api(f"{self.url}/api/collections", "POST", _collection(users_id), token=admin)
        for i in range(self.users):
            user = {"email": f"user-{i}@example.com", "password": password, "passwordConfirm": password}
            _api(f"{self.url}/api/collections/users/records", "POST", user)
            auth = _api(f"{self.url}/api/collections/users/auth-with-password", "POST",
                        {"identity": user["email"], "password": password})
            self.tokens.append(auth["token"])
            self.user_ids.append(auth["record"]["id"])
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # our own child, by PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()

    # -- wrk scripts ------------------------------------------------------------------------------------
    def scripts(self, workdir: Path) -> dict[str, Path]:
        from scripts.bench_documents import _DONE, _lua_list

        toks, owners = _lua_list(self.tokens), _lua_list(self.user_ids)
        create = f"""
local tokens = {toks}
local owners = {owners}
local statuses = {{"open", "done", "archived"}}
local n = 0
request = function()
  n = n + 1
  local u = (n % #tokens) + 1
  local body = string.format('{{"title":"note %d","status":"%s","priority":%d,' ..
    '"body":"lorem ipsum dolor sit amet","tags":["a","b"],"owner":"%s"}}', n, statuses[(n % 3) + 1], n % 6,
    owners[u])
  return wrk.format("POST", "/api/collections/notes/records",
    {{["Authorization"] = tokens[u], ["Content-Type"] = "application/json"}}, body)
end
""" + _DONE
        lists = f"""
local tokens = {toks}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/collections/notes/records?{LIST_QUERY}",
    {{["Authorization"] = tokens[(n % #tokens) + 1]}})
end
""" + _DONE
        paths = {"create": workdir / "pb_create.lua", "list": workdir / "pb_list.lua"}
        paths["create"].write_text(create)
        paths["list"].write_text(lists)
        return paths

    def get_script(self, workdir: Path) -> Path:
        from scripts.bench_documents import _DONE, _lua_list

        conn = sqlite3.connect(self.dir / "data.db")
        rows = conn.execute("SELECT id, owner FROM notes ORDER BY random() LIMIT 20000").fetchall()
        conn.close()
        index = dict(zip(self.user_ids, self.tokens, strict=True))
        path = workdir / "pb_get.lua"
        path.write_text(f"""
local ids = {_lua_list([r[0] for r in rows])}
local tokens = {_lua_list([index[r[1]] for r in rows])}
local n = 0
request = function()
  n = n + 1
  local i = (n % #ids) + 1
  return wrk.format("GET", "/api/collections/notes/records/" .. ids[i], {{["Authorization"] = tokens[i]}})
end
""" + _DONE)
        return path

    def check_list(self) -> None:
        """The list phase must return full pages of the caller's own open notes (a wrong rule would not)."""
        page = _api(f"{self.url}/api/collections/notes/records?{LIST_QUERY}", token=self.tokens[0])
        items = page["items"]
        assert len(items) == 20, len(items)
        assert all(i["owner"] == self.user_ids[0] and i["status"] == "open" for i in items)


def run(binary: Path, workdir: Path, seconds: float, connections: int, users: int) -> dict[str, Any]:
    """creates, gets and lists against PocketBase; the same figures as bench_documents' gateway phases."""
    from scripts.bench_documents import _wrk

    with PocketBase(binary, workdir, users) as pb:
        scripts = pb.scripts(workdir)
        out: dict[str, Any] = {"version": pb.version}
        assert pb.proc is not None
        out["create"] = _wrk(pb.url, scripts["create"], seconds, connections, pb.proc.pid)
        out["get"] = _wrk(pb.url, pb.get_script(workdir), seconds, connections, pb.proc.pid)
        pb.check_list()
        out["list"] = _wrk(pb.url, scripts["list"], seconds, connections, pb.proc.pid)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--binary", default="auto", help=f"PocketBase binary (auto: built by `{BUILD}`)")
    args = parser.parse_args()
    binary = find_binary(args.binary)
    if binary is None or not binary.exists():
        raise SystemExit(f"no PocketBase binary; build it with:\n  {BUILD}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-pb-"))
    try:
        res = run(binary, workdir, args.seconds, args.connections, args.users)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"PocketBase {res['version']} ({binary}), wrk -t1 -c{args.connections}, "
          f"{args.seconds:g}s per phase")
    for op in ("create", "get", "list"):
        r = res[op]
        print(f"{op:<8}{r['rps']:>10,.0f}/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"server CPU {r['cpu_us']:.0f} us/req")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
