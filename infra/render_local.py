"""Local renderer: each service spec becomes a supervised process on the loopback address.

Layout under the state folder (``.telestack/`` unless ``TELESTACK_STATE_DIR``):
``run/<service>/`` config files and pid file, ``logs/<service>.log``,
``data/<service>/`` persistent data.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from infra.local_process import LocalProcess
from infra.spec import HealthCheck, ServiceSpec, substitute

#: where toolchain binaries are looked up before PATH (scripts/toolchain.sh links them here)
BIN_DIR = Path(os.environ.get("TELESTACK_BIN") or Path.home() / ".cache/telestack/bin/current")
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class LocalPaths:
    root: Path
    state_dir: Path
    host: str
    start_timeout: int

    def config_dir(self, name: str) -> Path:
        return self.state_dir / "run" / name

    def data_dir(self, name: str) -> Path:
        return self.state_dir / "data" / name

    def log_file(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"


def resolve_program(program: str, root: Path) -> str:
    """Absolute path of a spec's program: the project's Python, or a toolchain/venv binary."""
    if program == "python":
        return (
            str(root / ".venv" / "bin" / "python") if (root / ".venv/bin/python").exists() else sys.executable
        )
    search = os.pathsep.join([str(BIN_DIR), str(root / ".venv" / "bin"), os.environ.get("PATH", "")])
    found = shutil.which(program, path=search)
    if not found:
        raise FileNotFoundError(f"{program} not found in {BIN_DIR}, .venv/bin or PATH: run scripts/bootstrap")
    return found


def process_props(spec: ServiceSpec, paths: LocalPaths) -> dict[str, Any]:
    """The dynamic resource's inputs for one spec (placeholders filled, paths absolute)."""
    values = {
        "host": paths.host,
        "config": str(paths.config_dir(spec.name)),
        "data": str(paths.data_dir(spec.name)),
    }
    props: dict[str, Any] = {
        "name": spec.name,
        "argv": [resolve_program(spec.program, paths.root), *(substitute(a, values) for a in spec.args)],
        "cwd": str(paths.root if spec.repo_cwd else paths.config_dir(spec.name)),
        "env": {k: substitute(v, values) for k, v in spec.env.items()},
        "files": {k: substitute(v, values) for k, v in spec.files.items()},
        "config_dir": values["config"],
        "data_dir": values["data"] if spec.data_dir else "",
        "host": paths.host,
        "ports": {p.name: {"number": p.number, "setting": p.setting} for p in spec.ports},
        "health": None,
        "pid_file": str(paths.config_dir(spec.name) / "pid"),
        "log_file": str(paths.log_file(spec.name)),
        "start_timeout": paths.start_timeout,
        "stop_timeout": STOP_TIMEOUT_S,
    }
    if spec.health:
        h = spec.health
        props["health"] = _check(h)
    if spec.ready:  # absent otherwise, so adding the key restarts no service that has none
        props["ready"] = [_check(r) for r in spec.ready]
    return props


def _check(h: HealthCheck) -> dict[str, Any]:
    check: dict[str, Any] = {"kind": h.kind, "port": h.port, "path": h.path, "ok_status": list(h.ok_status)}
    if h.volume_port:
        check["volume_port"] = h.volume_port
    return check


class LocalService(pulumi.ComponentResource):
    """One service spec as a supervised local process."""

    def __init__(
        self, name: str, spec: ServiceSpec, paths: LocalPaths, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("telestack:local:Service", name, None, opts)
        props = process_props(spec, paths)
        props["secret_env"] = pulumi.Output.secret(dict(spec.secret_env)) if spec.secret_env else {}
        self.process = LocalProcess(f"{name}-process", props, pulumi.ResourceOptions(parent=self))
        self.log_file = props["log_file"]
        self.register_outputs({"pid": self.process.pid, "log_file": self.log_file})


def render(specs: Sequence[ServiceSpec], paths: LocalPaths) -> Mapping[str, LocalService]:
    """Every spec as a :class:`LocalService`, started after the services it depends on."""
    services: dict[str, LocalService] = {}
    for spec in specs:
        deps = [services[d] for d in spec.depends_on if d in services]
        services[spec.name] = LocalService(spec.name, spec, paths, pulumi.ResourceOptions(depends_on=deps))
    return services
