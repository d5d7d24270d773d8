"""Where the repository, its config and the built binaries are, for every test."""

from __future__ import annotations

import os
import shutil
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
