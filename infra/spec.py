"""One declarative service spec per stateful component, shared by both renderers.

``render_local`` turns a spec into a supervised process on the loopback
address; ``render_docker`` turns the same spec into a container. Anything
that differs between the two is a placeholder the renderer substitutes in
``args``, ``env`` values and config-file contents:

- ``${host}``   address the service binds (127.0.0.1 locally, 0.0.0.0 in a container)
- ``${config}`` directory holding the spec's config files
- ``${data}``   the service's persistent data directory (a volume in Docker)

Secrets never appear in ``args``, ``env`` or ``files``: they go in
``secret_env`` as Pulumi secret outputs and reach the process as environment
variables only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Any, Literal


@dataclass(frozen=True)
class Port:
    """A listening port; ``setting`` is where a user changes it (named in port-in-use errors)."""

    name: str
    number: int
    setting: str = ""
    #: reachable by clients (published in Docker); the rest stay on the private network
    public: bool = False
    #: Docker only: publish on this host port at ``host_ip`` alone (e.g. PostgreSQL on the docker host's
    #: 127.0.0.1 for scripts/ops), whatever the environment's publish_ip; 0 = not published this way
    host_port: int = 0
    host_ip: str = ""


@dataclass(frozen=True)
class HealthCheck:
    """How a renderer knows the service is serving: an HTTP GET on a named port, or a TCP connect.

    ``seaweedfs_volumes`` (local renderer only, see infra/seaweedfs_registration.py): the master on
    ``port`` lists the volume server on ``volume_port`` with every volume that server loaded.
    """

    port: str
    kind: Literal["http", "tcp", "seaweedfs_volumes"] = "http"
    path: str = "/"
    ok_status: tuple[int, ...] = (200,)
    #: Docker only: the probe Docker runs inside the container (exec form). Which binary can probe is a
    #: fact of the image (tests/contracts/images/images.yaml), so the spec names it; required there
    command: tuple[str, ...] = ()
    #: how long the service may take to start before failed probes count (Docker's start period)
    start_seconds: int = 30
    #: ``seaweedfs_volumes`` only: name of the volume server's port
    volume_port: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    #: program and arguments: ``program`` is a toolchain binary name (``centrifugo``, ``weed``) or
    #: ``python`` (the project's interpreter). The docker renderer passes ``[program, *args]`` (just
    #: ``args`` when ``program`` is "") as the container's command, to the image's own entrypoint
    program: str
    args: tuple[str, ...] = ()
    #: Docker only: replaces the image's ENTRYPOINT. None keeps it, and with it the image's init
    #: (initdb and the POSTGRES_* variables, dropping root); set it only for a job that must run a shell
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: env var -> secret (``pulumi.Output[str]``); never written to a file or log
    secret_env: Mapping[str, Any] = field(default_factory=dict)
    #: file name (relative to ``${config}``) -> content, non-secret
    files: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    health: HealthCheck | None = None
    #: local renderer only: further checks that must pass too before the service counts as started
    #: (``health`` says it answers; these say it can serve what it already stores)
    ready: tuple[HealthCheck, ...] = ()
    #: the service keeps state in ``${data}`` (a named volume in Docker)
    data_dir: bool = False
    #: Docker only: where the volume is mounted (``${data}``); "" = /data/<name>. An image that steps down
    #: to its own user needs its data directory, which it owns, so a new volume copies that ownership
    data_mount: str = ""
    #: container image for the docker renderer, pinned by tag (and digest when configured)
    image: str = ""
    #: names of specs that must be healthy before this one starts
    depends_on: tuple[str, ...] = ()
    #: run from the repository root (python modules of this repo)
    repo_cwd: bool = False

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no port {name!r}")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Fill ``${host}``/``${config}``/``${data}``; other ``$`` text is left alone."""
    return Template(text).safe_substitute(values)
