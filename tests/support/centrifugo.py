"""A real Centrifugo v6 on a free loopback port, configured by infra/centrifugo_config.py.

The config file is generated exactly as the stack generates it; the API key and the
token HMAC key are generated per server and passed by environment, as in the stack.
The server can be stopped and started again on the same port and keys (the
"Centrifugo down, then back" tests); it is always stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import centrifugo_config
from tests.support.paths import CONFIG, binary, free_port
from tests.support.process import Process, answers, start_process, stop_process


def centrifugo_binary() -> str:
    """The toolchain build, or a fallback build in $TELESTACK_CENTRIFUGO (e.g. while toolchain.sh runs)."""
    fallback = os.environ.get("TELESTACK_CENTRIFUGO")
    if fallback and Path(fallback).exists():
        return fallback
    return binary("centrifugo")


@dataclass
class Centrifugo:
    port: int
    api_key: str
    token_secret: str
    workdir: Path
    config_file: Path
    process: Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def env(self) -> dict[str, str]:
        """Secrets by environment, exactly the names the stack uses."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("CENTRIFUGO_")}
        base["CENTRIFUGO_HTTP_API_KEY"] = self.api_key
        base["CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY"] = self.token_secret
        return base

    def argv(self) -> list[str]:
        return [centrifugo_binary(), "--config", str(self.config_file)]

    def start(self, timeout: float = 30.0) -> None:
        self.process = start_process(
            self.argv(),
            log=self.workdir / "centrifugo.log",
            ready=lambda: answers(f"{self.base_url}/health"),
            what="centrifugo",
            env=self.env(),
            cwd=self.workdir,
            timeout=timeout,
        )

    def stop(self) -> None:
        stop_process(self.process)

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        """Centrifugo that hangs: its port accepts connections and never answers; the real server after.

        Nothing is accepted from the backlog, so a client's request waits until its own timeout,
        or until the block ends and the closed socket resets the connection.
        """
        self.stop()
        with socket.socket() as silent:
            silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            silent.bind(("127.0.0.1", self.port))
            silent.listen(64)
            yield
        self.start()

    def api(self, method: str, params: Mapping[str, Any], *, key: str | None = None) -> tuple[int, Any]:
        """Call the server API synchronously (tests' own checks); returns (HTTP status, decoded body)."""
        req = urllib.request.Request(
            f"{self.api_url}/{method}",
            data=json.dumps(params).encode(),
            method="POST",
            headers={"content-type": "application/json", "x-api-key": self.api_key if key is None else key},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, raw.decode(errors="replace")


def start_centrifugo(workdir: Path, access: Mapping[str, str] | None = None) -> Centrifugo:
    """Write the config generated from the repo's config/ (as the stack does), start, wait for /health."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if access is None:
        access = centrifugo_config.load_collection_access(CONFIG)
    doc = centrifugo_config.build_config(
        access, centrifugo_config.load_options(CONFIG), port=port, allowed_origins=("http://127.0.0.1",)
    )
    config_file = workdir / "centrifugo.json"
    config_file.write_text(json.dumps(doc, indent=2))
    server = Centrifugo(
        port=port,
        api_key=secrets.token_urlsafe(24),
        token_secret=secrets.token_urlsafe(32),
        workdir=workdir,
        config_file=config_file,
    )
    server.start()
    return server


@pytest.fixture
def centrifugo(tmp_path: Path) -> Iterator[Centrifugo]:
    """A fresh Centrifugo per test (it starts in well under a second), stopped by PID at teardown."""
    server = start_centrifugo(tmp_path / "centrifugo")
    try:
        yield server
    finally:
        server.stop()
