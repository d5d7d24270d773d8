"""A real gateway process with every credential set, in front of a real CDI stand-in: for whole sessions.

The log scan (tests/integration/test_log_secrets.py) and the fuzzer (tests/integration/test_fuzz.py,
scripts/fuzz.py) need the same thing: ``python -m worker.asgi`` logging at INFO, signing realtime and
storage tokens, with every secret a fresh random value the caller knows, so it can look for them.
Centrifugo and S3 point at a closed loopback port: tokens and URLs are signed locally, and a publish
that cannot reach Centrifugo stays in the outbox (and is logged, which the scan wants to see).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.gateway import serve
from tests.support.mailpit import start_mailpit
from tests.support.paths import CONFIG, free_port
from tests.support.process import stop_process
from tests.support.standin import start_standin


@dataclass(frozen=True)
class SessionGateway:
    url: str
    log: Path
    #: binding name -> its value, for every credential the gateway was given
    secrets: dict[str, str]
    #: the folder every process of the session logs into (gateway, auth stand-in, Mailpit)
    workdir: Path | None = None
    #: Mailpit's HTTP API, where the gateway's mail (and the tokens in it) can be read
    mail_api_url: str = ""
    #: the auth stand-in's store (its signing keys and refresh-token key)
    auth_db: Path | None = None

    @property
    def admin_key(self) -> str:
        return self.secrets["TELESTACK_ADMIN_KEY"]


@contextlib.contextmanager
def session_gateway(workdir: Path, log_level: str = "INFO") -> Iterator[SessionGateway]:
    standin = start_standin(workdir)
    mailpit = start_mailpit(workdir)  # a real mail server: verification and reset answer as on the stack
    closed = f"http://127.0.0.1:{free_port()}"
    credentials = {
        "TELESTACK_ADMIN_KEY": "admin-" + secrets.token_hex(16),
        "TELESTACK_AUTH_API_KEY": standin.api_key,
        "TELESTACK_CENTRIFUGO_API_KEY": "cfapi-" + secrets.token_hex(16),
        "TELESTACK_CENTRIFUGO_TOKEN_SECRET": "cfsecret-" + secrets.token_hex(16),
        "TELESTACK_S3_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
        "TELESTACK_S3_SECRET_ACCESS_KEY": "s3secret-" + secrets.token_hex(16),
    }
    settings = {
        **credentials,
        "TELESTACK_AUTH_URL": standin.url,
        "TELESTACK_DB_PATH": str(workdir / "gateway.sqlite3"),
        "TELESTACK_CONFIG_DIR": str(CONFIG),
        "TELESTACK_CENTRIFUGO_API_URL": closed,
        "TELESTACK_CENTRIFUGO_WS_URL": "ws://127.0.0.1:1/connection/websocket",
        "TELESTACK_S3_ENDPOINT": closed,
        "TELESTACK_S3_BUCKET": "files",
        "TELESTACK_LOG_LEVEL": log_level,
        "TELESTACK_SMTP_HOST": "127.0.0.1",
        "TELESTACK_SMTP_PORT": str(mailpit.smtp_port),
        "TELESTACK_SMTP_SECURITY": "none",
        "TELESTACK_SMTP_FROM": "TelestackDB <no-reply@localhost>",
        "TELESTACK_AUTH_ACTION_URL": "http://localhost:5173/auth/action",
    }
    proc = None
    try:
        proc, url = serve(workdir, settings)
        port = url.rsplit(":", 1)[1]
        yield SessionGateway(url, workdir / f"gateway-{port}.log", credentials, workdir, mailpit.api_url,
                             standin.db_path)
    finally:
        stop_process(proc)
        standin.stop()
        mailpit.stop()
