"""The SuperTokens CDI stand-in as a real process on a free loopback port, with a temp SQLite store.

    SUPERTOKENS_API_KEYS=<key> python -m infra.standins.supertokens --host 127.0.0.1 --port P --db PATH

The api key travels in the environment (never argv). :func:`start_standin`
waits for ``GET /hello`` and the fixture stops the process by its PID.
Setting ``TELESTACK_CDI_URL`` (+ ``TELESTACK_CDI_API_KEY``) points the
``cdi`` fixture at a real SuperTokens Core instead.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.paths import ROOT, free_port
from tests.support.process import Process, answers, start_process, stop_process


@dataclass
class Standin:
    url: str
    api_key: str
    db_path: Path
    env: dict[str, str]
    process: Process | None = None
    #: False when the target is a real core (TELESTACK_CDI_URL): stand-in-only tests skip
    is_standin: bool = True

    def stop(self) -> None:
        """Stop by PID only (other helpers may run stand-ins too)."""
        stop_process(self.process)

    def restart(self) -> None:
        """Stop and start again on the same port and SQLite file (persistence checks)."""
        self.stop()
        self.process = _start(self.url, self.db_path, self.env)


def _start(url: str, db_path: Path, env: dict[str, str]) -> Process:
    """Run the stand-in on ``url``'s port and wait until it answers as itself.

    ``GET /hello`` alone is not proof: another test session on this machine (or a server it started)
    can take the port between :func:`free_port` and our bind, and any stand-in answers ``Hello``.
    Then ours exits (address in use) while the other one answers, and the tests talk to a server
    that may stop at any moment. Only ours accepts our API key, so readiness asks for that.
    """
    port = url.rsplit(":", 1)[1]
    module = [sys.executable, "-m", "infra.standins.supertokens"]
    api_key = env.get("SUPERTOKENS_API_KEYS", "").split(",")[0]
    return start_process(
        [*module, "--host", "127.0.0.1", "--port", port, "--db", str(db_path)],
        log=db_path.parent / "standin.log",
        ready=lambda: answers(url + "/hello") and _accepts_key(url, api_key),
        what="stand-in",
        env=env,
        cwd=ROOT,
        interval=0.05,
    )


#: Argon2id at OWASP's minimum (19 MiB, t=2, p=1) instead of the core's 85 MiB default: still memory-hard,
#: ~8x cheaper, so suites that sign in a lot stay quick on a shared 2-core box
TEST_ARGON2 = {"argon2_memory_kb": "19456", "argon2_iterations": "2", "argon2_parallelism": "1"}


def _accepts_key(url: str, api_key: str) -> bool:
    """Whether the server on ``url`` accepts ``api_key`` (it is the stand-in we started with it)."""
    if not api_key:
        return True
    try:
        r = httpx.get(url + "/apiversion", headers={"api-key": api_key}, timeout=1, trust_env=False)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def start_standin(data_dir: Path, **settings: str) -> Standin:
    """Start a stand-in; ``settings`` become ``SUPERTOKENS_<NAME>`` env vars.

    e.g. ``start_standin(d, refresh_token_rotation_grace_period="0")``; pass
    ``argon2_memory_kb="87795"`` etc. to get the core's defaults back.
    """
    settings = {**TEST_ARGON2, **settings}
    api_key = "standin-" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERTOKENS_")}
    env["SUPERTOKENS_API_KEYS"] = api_key
    env.update({f"SUPERTOKENS_{k.upper()}": v for k, v in settings.items()})
    url = f"http://127.0.0.1:{free_port()}"
    db_path = data_dir / "supertokens.sqlite3"
    return Standin(url=url, api_key=api_key, db_path=db_path, env=env, process=_start(url, db_path, env))


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Standin]:
    """A fresh stand-in per test (its own port and SQLite file)."""
    s = start_standin(tmp_path)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cdi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    """The CDI under test: a real core when TELESTACK_CDI_URL is set, else one stand-in per module."""
    url = os.environ.get("TELESTACK_CDI_URL", "").rstrip("/")
    if url:
        yield Standin(
            url=url,
            api_key=os.environ.get("TELESTACK_CDI_API_KEY", ""),
            db_path=Path(),
            env={},
            is_standin=False,
        )
        return
    s = start_standin(tmp_path_factory.mktemp("cdi"))
    yield s
    s.stop()
