"""Schemathesis against a session gateway: one round per credential, and the gateway's own tally.

A round is ``st run`` from the fuzzing venv (scripts/fuzz_setup.sh) with
tests/integration/schemathesis.toml on the gateway's served ``/v1/openapi.json``, narrowed per
collection (tests/support/fuzz_document.py) so valid writes fit their collection; every operation,
positive and negative data, authenticated as a freshly signed-in user or with the admin key. A user
round first makes a team the user edits, and its tasks name that team, so the tasks' rules admit
them. What the gateway answered is counted from its INFO log (one ``METHOD /path -> status`` line
per request), so the figures are the server's, per status and per kind of operation.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts import scan_logs
from tests.support.fuzz_document import JsonSchema, narrowed
from tests.support.paths import CONFIG as GATEWAY_CONFIG
from tests.support.paths import ROOT
from tests.support.session_gateway import SessionGateway
from worker.adapters.config_files import load_collections

FUZZ_VENV = Path(os.environ.get("TELESTACK_FUZZ_VENV", Path.home() / ".cache/telestack/fuzz"))
CONFIG = ROOT / "tests/integration/schemathesis.toml"
_ANSWER = re.compile(r" -> (\d{3})$", re.MULTILINE)
#: the gateway's request line: ``METHOD /path -> status``
_REQUEST = re.compile(r" (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|[A-Z]+) (\S*) -> (\d{3})$", re.MULTILINE)
#: documents made before a round, per collection, for its updates and deletes to find
SEEDED_PER_COLLECTION = 8
#: the kinds of operation that write documents
WRITES = frozenset({"create", "update", "delete", "batch"})
#: the only server error the fuzz may see: documented per route (a dependency down)
ALLOWED_5XX = frozenset({503})


@dataclass
class Round:
    who: str
    returncode: int
    output: Path
    #: the bearer token the round sent (a secret the gateway's log must not hold)
    token: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0


@dataclass
class Tally:
    rounds: list[Round] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    kinds: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s >= 500 and s not in ALLOWED_5XX}


def setup() -> Path:
    """The Schemathesis CLI, installed by the project script when missing or stale."""
    subprocess.run(["bash", str(ROOT / "scripts/fuzz_setup.sh")], check=True)
    return FUZZ_VENV / "bin" / "st"


def sign_up(gw: SessionGateway) -> tuple[str, str]:
    """A fresh user's (access token, user id) (a round may sign it out: the next round signs up anew)."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    r = httpx.post(f"{gw.url}/v1/auth/signup", json={"email": email, "password": "fuzz-" + uuid.uuid4().hex},
                   timeout=30, trust_env=False)
    r.raise_for_status()
    return str(r.json()["access_token"]), str(r.json()["user"]["id"])


def collection_schemas(gw: SessionGateway, token: str, user_id: str | None) -> dict[str, JsonSchema]:
    """Each collection's data schema as the gateway loads it; for a user, tasks name a team they edit."""
    schemas = {name: dict(spec.get("schema") or {"type": "object"})
               for name, spec in load_collections(GATEWAY_CONFIG)["collections"].items()}
    if user_id is not None and "tasks" in schemas and "teams" in schemas:
        team = httpx.post(f"{gw.url}/v1/collections/teams/documents", timeout=30, trust_env=False,
                          headers={"authorization": f"Bearer {token}"},
                          json={"data": {"name": "fuzz", "members": [user_id], "editors": [user_id]}})
        team.raise_for_status()
        tasks = copy.deepcopy(schemas["tasks"])
        tasks.setdefault("properties", {})["team_id"] = {"const": team.json()["id"]}
        schemas["tasks"] = tasks
    return schemas


def minimal(schema: JsonSchema) -> Any:
    """The smallest value of ``schema`` (required properties only): what a seeded document holds."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal(props.get(name, {})) for name in schema.get("required", ())}
    if kind == "string":
        return "seed" + "x" * max(0, int(schema.get("minLength", 0)) - 4)
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return {"array": [], "boolean": False, "null": None}.get(kind)


def seed_documents(gw: SessionGateway, token: str, schemas: dict[str, JsonSchema],
                   per_collection: int = SEEDED_PER_COLLECTION) -> dict[str, list[str]]:
    """Documents the round's caller may change, per collection (none where its rules refuse a create)."""
    made: dict[str, list[str]] = {}
    with httpx.Client(base_url=gw.url, timeout=30, trust_env=False,
                      headers={"authorization": f"Bearer {token}"}) as http:
        for name, schema in schemas.items():
            for _ in range(per_collection):
                r = http.post(f"/v1/collections/{name}/documents", json={"data": minimal(schema)})
                if r.status_code != 201:
                    break
                made.setdefault(name, []).append(r.json()["id"])
    return made


def fuzz_document(gw: SessionGateway, token: str, user_id: str | None, where: Path) -> Path:
    """The served document narrowed per collection (tests/support/fuzz_document.py), written to ``where``."""
    served = httpx.get(f"{gw.url}/v1/openapi.json", timeout=30, trust_env=False)
    served.raise_for_status()
    schemas = collection_schemas(gw, token, user_id)
    existing = seed_documents(gw, token, schemas)
    where.write_text(json.dumps(narrowed(served.json(), schemas, existing=existing, admin=user_id is None)))
    return where


def run_round(st: Path, gw: SessionGateway, who: str, out: Path, *, max_examples: int, seed: int,
              workers: int = 2, max_time: int | None = None) -> Round:
    """One Schemathesis run as ``who`` ("user" or "admin"); its report goes to ``out``."""
    token, user_id = (gw.admin_key, None) if who == "admin" else sign_up(gw)
    doc = fuzz_document(gw, token, user_id, out.with_suffix(".openapi.json"))
    argv = [str(st), "--config-file", str(CONFIG), "run", str(doc), "--url", gw.url,
            "--header", f"Authorization: Bearer {token}", "--max-examples", str(max_examples),
            "--seed", str(seed), "--workers", str(workers), "--max-failures", "50",
            "--request-timeout", "30", "--no-color"]
    if max_time is not None:
        argv += ["--max-time", str(max_time)]
    with out.open("wb") as log:
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=out.parent, check=False)
    return Round(who, done.returncode, out, token)


def statuses(gw: SessionGateway) -> collections.Counter[int]:
    """Every status the gateway answered so far, from its log."""
    return collections.Counter(int(s) for s in _ANSWER.findall(gw.log.read_text(errors="replace")))


def operation_kind(method: str, path: str) -> str:
    """What a request did: create, read, update, delete, query, batch, or the route family it hit."""
    parts = path.split("/")
    if path.startswith("/v1/collections/") and len(parts) in (5, 6):
        if len(parts) == 5:
            return {"POST": "query" if parts[4] == "query" else "create"}.get(method, "other")
        return {"GET": "read", "PUT": "update", "PATCH": "update", "DELETE": "delete"}.get(method, "other")
    if path == "/v1/batch":
        return "batch"
    if path.startswith("/v1/auth/"):
        return "auth"
    if path.startswith(("/v1/storage/", "/v1/realtime/", "/v1/health", "/v1/openapi.json")):
        return parts[2]
    return "other"


def by_operation(gw: SessionGateway) -> collections.Counter[tuple[str, int]]:
    """(kind of operation, status) -> how many the gateway answered so far, from its log."""
    return collections.Counter((operation_kind(m, p), int(s))
                               for m, p, s in _REQUEST.findall(gw.log.read_text(errors="replace")))


def successful_writes(kinds: collections.Counter[tuple[str, int]]) -> int:
    return sum(n for (kind, status), n in kinds.items() if kind in WRITES and 200 <= status < 300)


def summary(tally: Tally) -> str:
    histogram = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    rounds = ", ".join(f"{r.who} {'passed' if r.passed else 'FAILED'}" for r in tally.rounds)
    kinds = sorted({kind for kind, _ in tally.kinds})
    per_kind = "\n".join(
        f"  {kind}: " + ", ".join(f"{s}: {n}" for (k, s), n in sorted(tally.kinds.items()) if k == kind)
        for kind in kinds)
    return (f"requests: {tally.requests}\nstatuses: {histogram}\nby operation:\n{per_kind}\n"
            f"successful writes (2xx create, update, delete, batch): {successful_writes(tally.kinds)}\n"
            f"rounds: {rounds}")


def log_findings(gw: SessionGateway, *tokens: str) -> list[scan_logs.Finding]:
    """scripts/scan_logs.py over the session's logs: its credentials, the auth core's keys, mailed tokens."""
    assert gw.workdir is not None and gw.auth_db is not None
    known = scan_logs.Secrets([*tokens, *gw.secrets.values(), *scan_logs.key_material(gw.auth_db),
                               *scan_logs.mailed_tokens(gw.mail_api_url)])
    files = scan_logs.log_files(gw.workdir)
    assert gw.log in files and len(known) > 0, files
    return scan_logs.scan(files, known)
