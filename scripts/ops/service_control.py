"""Stopping and starting a stack's services around a switch-over.

Local stack: each service is a supervised process with a pid file written by
infra/local_process.py; stopping it is that module's own stop (its whole process
group, SIGKILL after the timeout, then a wait until its ports are free), and
starting again is ``pulumi up`` (the local renderer restarts a service whose
process is gone). A cloud stack's database switch is a config change + ``pulumi up``
instead, so it needs no stop at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from infra.local_process import running_pid, stop_recorded
from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.stack import Pulumi


class ServiceControl(Protocol):
    def running(self, service: str) -> bool: ...

    def stop(self, service: str) -> None: ...

    def start(self, services: list[str]) -> None: ...


@dataclass
class PidFileControl:
    """Local stack services by pid file; ``start`` re-applies the stack."""

    stack: str
    pid_files: dict[str, str]
    console: Console
    pulumi: Pulumi = field(default_factory=Pulumi)
    timeout: float = 30.0

    def running(self, service: str) -> bool:
        return service in self.pid_files and running_pid(self.pid_files[service]) is not None

    def stop(self, service: str) -> None:
        if service not in self.pid_files:
            raise OpsError(
                f"no pid file known for service {service!r}: cannot stop it safely", ExitStatus.USAGE
            )
        pid = running_pid(self.pid_files[service])
        if pid is None:
            return
        self.console.progress(f"stopping {service} (pid {pid})")
        stop_recorded(self.pid_files[service], self.timeout)

    def start(self, services: list[str]) -> None:
        if not self.stack:
            self.console.warn(
                f"{', '.join(services)} stopped and no --stack given: start them again yourself "
                "(scripts/up, or however you run them)"
            )
            return
        self.console.progress(f"starting {', '.join(services)} again: pulumi up --stack {self.stack}")
        self.pulumi.up(self.stack)
