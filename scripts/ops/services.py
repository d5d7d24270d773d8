"""Stopping and starting a stack's services around a switch-over.

Local stack: each service is a supervised process with a pid file; stopping is
SIGTERM to that pid, starting again is ``pulumi up`` (the local renderer
restarts a service whose process is gone). A cloud stack's database switch is
a config change + ``pulumi up`` instead, so it needs no stop at all.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.stack import Pulumi


class ServiceControl(Protocol):
    def running(self, service: str) -> bool: ...

    def stop(self, service: str) -> None: ...

    def start(self, services: list[str]) -> None: ...


def pid_of(path: Path) -> int | None:
    """The live pid a pid file names: the local renderer's JSON ``{"pid", "start_time"}`` (start
    time checked, so a recycled pid is never signalled) or a bare number."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text.startswith("{"):
        from infra.local_process import running_pid

        return running_pid(str(path))
    try:
        return int(text)
    except ValueError:
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; its parent just has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class PidFileControl:
    """Local stack services by pid file; ``start`` re-applies the stack."""

    stack: str
    pid_files: dict[str, str]
    console: Console
    pulumi: Pulumi = field(default_factory=Pulumi)
    timeout: float = 30.0

    def running(self, service: str) -> bool:
        pid = pid_of(Path(self.pid_files[service])) if service in self.pid_files else None
        return pid is not None and alive(pid)

    def stop(self, service: str) -> None:
        if service not in self.pid_files:
            raise OpsError(
                f"no pid file known for service {service!r}: cannot stop it safely", ExitStatus.USAGE
            )
        pid = pid_of(Path(self.pid_files[service]))
        if pid is None or not alive(pid):
            return
        self.console.progress(f"stopping {service} (pid {pid})")
        try:  # the local renderer makes each service a process-group leader: stop its children too
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.timeout
        while alive(pid):
            if time.monotonic() > deadline:
                raise OpsError(f"{service} (pid {pid}) did not stop within {self.timeout:.0f}s")
            time.sleep(0.1)

    def start(self, services: list[str]) -> None:
        if not self.stack:
            self.console.warn(
                f"{', '.join(services)} stopped and no --stack given: start them again yourself "
                "(scripts/up, or however you run them)"
            )
            return
        self.console.progress(f"starting {', '.join(services)} again: pulumi up --stack {self.stack}")
        self.pulumi.up(self.stack)
