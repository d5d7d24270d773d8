"""Schemathesis against a session gateway: one round per credential, and the gateway's own tally.

A round is ``st run <gateway>/v1/openapi.json`` from the fuzzing venv (scripts/fuzz_setup.sh) with
tests/integration/schemathesis.toml, every operation, positive and negative data, authenticated
as a freshly signed-in user or with the admin key. What the gateway answered is counted from its
INFO log (one ``METHOD /path -> status`` line per request), so the figures are the server's.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.paths import ROOT
from tests.support.session_gateway import SessionGateway

FUZZ_VENV = Path(os.environ.get("TELESTACK_FUZZ_VENV", Path.home() / ".cache/telestack/fuzz"))
CONFIG = ROOT / "tests/integration/schemathesis.toml"
_ANSWER = re.compile(r" -> (\d{3})$", re.MULTILINE)
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


def user_token(gw: SessionGateway) -> str:
    """A fresh user's access token (a round may sign it out: the next round signs in anew)."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    r = httpx.post(f"{gw.url}/v1/auth/signup", json={"email": email, "password": "fuzz-" + uuid.uuid4().hex},
                   timeout=30, trust_env=False)
    r.raise_for_status()
    return str(r.json()["access_token"])


def run_round(st: Path, gw: SessionGateway, who: str, out: Path, *, max_examples: int, seed: int,
              workers: int = 2, max_time: int | None = None) -> Round:
    """One Schemathesis run as ``who`` ("user" or "admin"); its report goes to ``out``."""
    token = gw.admin_key if who == "admin" else user_token(gw)
    argv = [str(st), "--config-file", str(CONFIG), "run", f"{gw.url}/v1/openapi.json",
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


def summary(tally: Tally) -> str:
    histogram = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    rounds = ", ".join(f"{r.who} {'passed' if r.passed else 'FAILED'}" for r in tally.rounds)
    return f"requests: {tally.requests}\nstatuses: {histogram}\nrounds: {rounds}"
