"""A throwaway PostgreSQL server per test module: initdb into a temp dir, listen on 127.0.0.1 only.

Password auth (scram-sha-256) on TCP, as a cloud stack's published port asks for, so the ops code's
password handling is exercised for real; the unix socket sits in the temp dir (trust, for the
harness only). Stopped by the PID we started (fast shutdown), never by name: other helpers run
PostgreSQL too. PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` system user (the Debian package creates it).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from tests.support.paths import free_port
from tests.support.process import Process, stop_process

USER = "supertokens"


def server_bin(name: str) -> str:
    """initdb/postgres live outside PATH on Debian: the newest /usr/lib/postgresql/<major>/bin."""
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name), reverse=True
    )
    found = shutil.which(name, path=os.pathsep.join([*dirs, os.environ.get("PATH", "")]))
    if not found:
        pytest.fail(
            f"{name} not found: run scripts/bootstrap (it installs PostgreSQL) or apt-get install postgresql"
        )
    return found


@dataclass
class PostgresServer:
    port: int
    root: Path
    proc: Process
    password: str = field(repr=False)
    user: str = USER

    @property
    def socket_dir(self) -> str:
        return str(self.root / "sock")

    def url(self, dbname: str = USER) -> str:
        """What a cloud stack's ``auth_db_url`` output looks like (TCP, password in the URL)."""
        return f"postgresql://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = USER, **kwargs: Any) -> psycopg.Connection[Any]:
        """Harness access over the unix socket (trust): independent of the code under test."""
        return psycopg.connect(
            host=self.socket_dir, port=self.port, user=self.user, dbname=dbname, autocommit=True, **kwargs
        )

    def databases(self) -> set[str]:
        with self.connect("postgres") as con:
            return {r[0] for r in con.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")}

    def create_database(self, name: str) -> None:
        with self.connect("postgres") as con:
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        with self.connect("postgres") as con:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: does not wait for clients to leave
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


def _demote() -> dict[str, Any]:
    """Popen kwargs that run the server as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no 'postgres' user to run the test PostgreSQL as")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def start_postgres(prefix: str = "telestack-pg-") -> PostgresServer:
    """initdb + postgres on a free loopback port; returns once it accepts connections."""
    # our own dir under /tmp: pytest's tmp dirs are 0700 root-owned, which the demoted server cannot enter
    root = Path(tempfile.mkdtemp(prefix=prefix))
    demote = _demote()
    (root / "sock").mkdir()
    password = "pw-" + secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if demote:
        for path in (root, root / "sock", pwfile):
            os.chown(path, demote["user"], demote["group"])
    log = root / "postgres.log"
    subprocess.run(
        [
            server_bin("initdb"),
            "-D",
            str(root / "data"),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        **demote,
    )
    pwfile.unlink()
    port = free_port()
    argv = [
        server_bin("postgres"),
        "-D",
        str(root / "data"),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"unix_socket_directories={root / 'sock'}",
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
    ]

    def ready() -> bool:
        try:
            psycopg.connect(
                host=str(root / "sock"), port=port, user=USER, dbname="postgres", connect_timeout=2
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    # start_process's loop, with Popen(user=...) when demoted; the log is opened here, so the
    # server writes it through the inherited descriptor whatever user it runs as
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **demote)
    deadline = time.monotonic() + 60
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(
                f"postgres did not start; see its log:\n{log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.1)
    return PostgresServer(port=port, root=root, proc=proc, password=password)
