"""Mailpit (real SMTP server + HTTP API) on free loopback ports, for tests that read the gateway's mail.

The binary comes from scripts/toolchain.sh (built from the Go module proxy, cached). Messages are
read through Mailpit's HTTP API (``/api/v1/search``, ``/api/v1/message/{id}``), as a developer would
read them in its web UI.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.paths import free_port
from tests.support.process import Process, answers, start_process, stop_process

_LINK = re.compile(r"https?://\S+")


def mailpit_binary() -> str:
    cache = Path(os.environ.get("TELESTACK_CACHE", Path.home() / ".cache/telestack"))
    found = shutil.which("mailpit") or str(cache / "bin/current/mailpit")
    if not Path(found).exists():
        raise RuntimeError("mailpit is not built: run scripts/toolchain.sh")
    return found


@dataclass
class Mailpit:
    smtp_port: int
    api_url: str
    process: Process

    def stop(self) -> None:
        stop_process(self.process)

    def messages_to(self, address: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.api_url}/api/v1/search", params={"query": f'to:"{address}"'}, timeout=10)
        r.raise_for_status()
        return r.json()["messages"] or []

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The full messages to ``address`` once there are ``count`` of them (newest first)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages_to(address)
            if len(found) >= count:
                urls = [f"{self.api_url}/api/v1/message/{m['ID']}" for m in found]
                return [httpx.get(url, timeout=10).json() for url in urls]
            assert time.monotonic() < deadline, f"no mail to {address} after {timeout}s"
            time.sleep(0.05)

    def link_to(self, address: str, count: int = 1) -> str:
        """The link in the newest message to ``address``."""
        text = self.wait_for(address, count)[0]["Text"]
        match = _LINK.search(text)
        assert match, f"no link in the mail: {text!r}"
        return match.group(0)


def start_mailpit(data_dir: Path) -> Mailpit:
    smtp, http = free_port(), free_port()
    api = f"http://127.0.0.1:{http}"
    proc = start_process(
        [mailpit_binary(), "--smtp", f"127.0.0.1:{smtp}", "--listen", f"127.0.0.1:{http}",
         "--database", str(data_dir / "mailpit.db"), "--disable-version-check", "--smtp-auth-accept-any",
         "--smtp-auth-allow-insecure"],
        log=data_dir / "mailpit.log", ready=lambda: answers(f"{api}/api/v1/info"), what="mailpit",
    )
    return Mailpit(smtp, api, proc)


@pytest.fixture(scope="module")
def mailpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailpit]:
    m = start_mailpit(tmp_path_factory.mktemp("mailpit"))
    yield m
    m.stop()
