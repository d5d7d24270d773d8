"""Where the repository, its config and the built binaries are, for every test."""

from __future__ import annotations

import os
import random
import shutil
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
BIN_DIR = Path(os.environ.get("TELESTACK_BIN", Path.home() / ".cache/telestack/bin/current"))


def binary(name: str) -> str:
    """Path of a toolchain binary (built by scripts/toolchain.sh) or from the venv; fails loudly if absent."""
    search = os.pathsep.join([str(BIN_DIR), str(ROOT / ".venv/bin"), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if not found:
        pytest.fail(f"{name} not found: run scripts/bootstrap first (looked in {BIN_DIR} and PATH)")
    return found


#: test servers take ports from here: below the kernel's ephemeral range (32768-60999 on Linux), which
#: the Pulumi engine, its plugins and every client socket draw from while a stack comes up
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never handed out twice in this test session.

    Ports from the ephemeral range (bind to 0) can be taken again a moment later by any process
    that binds to 0 - the Pulumi engine and its plugins do, while the stack they start is coming up.
    """
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        port = rng.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {_PORT_RANGE}")
