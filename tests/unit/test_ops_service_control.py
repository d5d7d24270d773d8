"""scripts/ops/service_control.py: services stopped through their pid files, as infra/local_process does."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.local_process import write_pid_file
from scripts.ops.console import Console, OpsError
from scripts.ops.service_control import PidFileControl
from tests.support.paths import free_port


def _control(pid_files: dict[str, str]) -> PidFileControl:
    return PidFileControl("", pid_files, Console(stdout=io.StringIO(), stderr=io.StringIO()))


def test_pid_file_control_stops_the_process_a_json_pid_file_names(tmp_path: Path) -> None:
    from infra.local_process import write_pid_file

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    pid_file = tmp_path / "pid"
    write_pid_file(str(pid_file), proc.pid)
    control = _control({"gateway": str(pid_file)})
    try:
        assert control.running("gateway")
        control.stop("gateway")
        assert proc.wait(timeout=5) != 0
        assert not control.running("gateway")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file = tmp_path / "pid"
    pid_file.write_text(json.dumps({"pid": proc.pid, "start_time": "1"}))  # some other process's start time
    control = _control({"gateway": str(pid_file)})
    try:
        assert not control.running("gateway")
        control.stop("gateway")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stopping_an_unknown_service_is_refused() -> None:
    control = _control({})
    with pytest.raises(OpsError, match="no pid file"):
        control.stop("gateway")


#: a service whose listening socket outlives its leader: the child inherits it and ignores SIGTERM
_SERVER_WITH_CHILD = """
import os, signal, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
else:
    time.sleep(60)
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_stop_returns_once_the_whole_group_is_gone_and_its_port_is_free(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER_WITH_CHILD, str(port)], start_new_session=True)
    deadline = time.monotonic() + 10
    while not _accepts(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid_file = tmp_path / "pid"
    write_pid_file(str(pid_file), proc.pid, ports={"http": port})
    control = _control({"gateway": str(pid_file)})
    control.timeout = 2.0  # the child ignores SIGTERM: SIGKILL after this
    try:
        control.stop("gateway")
        assert not _accepts(port), "stop returned while the child still held the service's port"
        assert not control.running("gateway") and not pid_file.exists()
    finally:
        proc.kill()
        proc.wait()
