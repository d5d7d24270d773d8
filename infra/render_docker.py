"""Docker renderer: service specs as containers on a Docker host.

The provider talks to ``DOCKER_HOST`` (local socket, or ``ssh://user@host``).
Per environment: one private bridge network, a named volume per stateful
service, a pinned :class:`RemoteImage` per image, and per spec (x replicas) a
container with the spec's health check, restart policy and resource limits.
Only ports a spec marks ``public`` are published (replica *i* on port + *i*;
only Centrifugo and SuperTokens Core take ``replicas``, infra/environment_rules.py refuses it
elsewhere); PostgreSQL, Redis and SeaweedFS' internal ports stay on the private network.
Secrets reach containers only as Pulumi-secret environment entries.

Each image keeps its own ENTRYPOINT (PostgreSQL's initdb and ``POSTGRES_*``, the images' step down
from root): the spec's program and args become the command it receives, and health probes run in
exec form with a binary the image ships (tests/contracts/images/images.yaml lists both per image).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.environment import ContainerSettings
from infra.spec import ServiceSpec, substitute

CONFIG_DIR = "/etc/telestack"
DATA_DIR = "/data"
#: address services bind inside a container (the network is private; publishing decides exposure)
CONTAINER_HOST = "0.0.0.0"  # noqa: S104


#: Docker's probe cadence: every ``_INTERVAL_S``, ``_RETRIES`` failures in a row after the start period
_INTERVAL_S = 10
_RETRIES = 6


def _health(spec: ServiceSpec) -> docker.ContainerHealthcheckArgs | None:
    """Docker health check from the spec's probe command, run in exec form (no shell needed)."""
    if spec.health is None:
        return None
    if not spec.health.command:
        raise ValueError(f"{spec.name}: a health check in Docker needs a probe command the image ships "
                         f"(HealthCheck.command)")
    return docker.ContainerHealthcheckArgs(tests=["CMD", *spec.health.command], interval=f"{_INTERVAL_S}s",
                                           timeout="5s", retries=_RETRIES,
                                           start_period=f"{spec.health.start_seconds}s")


def wait_timeout(spec: ServiceSpec) -> int | None:
    """Seconds `pulumi up` waits for the container to turn healthy: its start period, then every retry.

    The provider's default (60 s) is shorter than a JVM's start on half a CPU, and a timeout fails the
    deploy of a container that was about to become healthy.
    """
    if spec.health is None:
        return None
    return spec.health.start_seconds + _INTERVAL_S * _RETRIES + 10


def command(spec: ServiceSpec, values: Mapping[str, str]) -> list[str] | None:
    """The container's command: ``[program, *args]`` (just ``args`` without a program), placeholders
    filled; None leaves the image's own CMD."""
    argv = [spec.program] if spec.program else []
    argv += [substitute(a, values) for a in spec.args]
    return argv or None


def container_env(spec: ServiceSpec, values: Mapping[str, str]) -> list[pulumi.Input[str]]:
    """``KEY=value`` entries: plain ones as text, secret ones as Pulumi secrets (never plain)."""
    plain: list[pulumi.Input[str]] = [f"{k}={substitute(v, values)}" for k, v in sorted(spec.env.items())]
    secret = [pulumi.Output.secret(pulumi.Output.concat(k, "=", v))
              for k, v in sorted(spec.secret_env.items())]
    return [*plain, *secret]


class DockerService(pulumi.ComponentResource):
    """One service spec as ``replicas`` containers on the private network."""

    def __init__(self, name: str, spec: ServiceSpec, limits: ContainerSettings, *, network: docker.Network,
                 image: docker.RemoteImage, prefix: str, publish_ip: str, restart: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("telestack:docker:Service", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values = {"host": CONTAINER_HOST, "config": f"{CONFIG_DIR}/{spec.name}",
                  "data": spec.data_mount or f"{DATA_DIR}/{spec.name}"}
        self.volume = None
        volumes = None
        if spec.data_dir:
            self.volume = docker.Volume(f"{name}-data", name=f"{prefix}-{spec.name}-data", opts=child)
            volumes = [docker.ContainerVolumeArgs(volume_name=self.volume.name,
                                                  container_path=values["data"])]
        network_attachment = docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[spec.name])
        one_shot = not spec.ports  # a job (e.g. bucket creation): runs once, not restarted
        self.containers: list[docker.Container] = []
        for i in range(limits.replicas):
            suffix = f"-{i}" if limits.replicas > 1 else ""
            self.containers.append(docker.Container(
                f"{name}{suffix}",
                name=f"{prefix}-{spec.name}{suffix}",
                image=image.image_id,
                # the image's own ENTRYPOINT stays (its init) unless the spec replaces it
                entrypoints=list(spec.entrypoint) if spec.entrypoint is not None else None,
                command=command(spec, values),
                envs=container_env(spec, values),
                uploads=_uploads(spec, values),
                volumes=volumes,
                networks_advanced=[network_attachment],
                ports=[docker.ContainerPortArgs(internal=p.number, external=(p.host_port or p.number) + i,
                                                ip=p.host_ip or publish_ip)
                       for p in spec.ports if p.public or p.host_port] or None,
                healthcheck=_health(spec),
                restart="no" if one_shot else restart,
                must_run=not one_shot,
                attach=one_shot or None,  # `pulumi up` waits for a job and records its exit_code
                wait=bool(spec.health) and not one_shot,
                wait_timeout=wait_timeout(spec) if spec.health and not one_shot else None,
                memory=limits.memory_mb,
                memory_swap=limits.memory_mb,
                cpus=f"{limits.cpus:g}",
                labels=[docker.ContainerLabelArgs(label="org.telestack.service", value=spec.name)],
                # fixed names and host ports: the provider's default create-before-delete replacement
                # would collide with the old container ("name already in use", pulumi-docker#1356)
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            ))
        #: a job's exit code, raising RunError (which fails `pulumi up`) when it is not 0
        check = functools.partial(job_succeeded, f"{prefix}-{spec.name}")
        self.job_exit_codes = [c.exit_code.apply(check) for c in self.containers] if one_shot else []
        self.register_outputs({"containers": [c.name for c in self.containers]})


def job_succeeded(container: str, code: int | None) -> int:
    """A one-shot job (the MinIO bucket/users job) that failed must fail the deploy, not pass silently."""
    if code not in (None, 0):
        raise pulumi.RunError(f"job container {container} exited with code {code}: "
                              f"`docker logs {container}` on the docker host says why")
    return code or 0


def _uploads(spec: ServiceSpec, values: Mapping[str, str]) -> list[docker.ContainerUploadArgs] | None:
    """The spec's (non-secret) config files, written into ``${config}`` before the container starts."""
    files = sorted(spec.files.items())
    return [docker.ContainerUploadArgs(file=f"{values['config']}/{f}", content=substitute(c, values))
            for f, c in files] or None


def render_services(specs: Sequence[ServiceSpec], limits: Mapping[str, ContainerSettings], *, prefix: str,
                    publish_ip: str, restart: str) -> Mapping[str, DockerService]:
    """A private network, the images and one :class:`DockerService` per spec (dependencies first).

    ``limits``: each spec's replicas and resource limits, by spec name; ``prefix`` names every
    container, volume and the network (one environment per Docker host namespace).
    """
    network = docker.Network("network", name=f"{prefix}-net", driver="bridge")
    images: dict[str, docker.RemoteImage] = {}
    rendered: dict[str, DockerService] = {}
    for spec in specs:
        if spec.image not in images:
            images[spec.image] = docker.RemoteImage(f"image-{_image_key(spec.image)}", name=spec.image,
                                                    keep_locally=True)
        deps: list[Any] = [rendered[n] for n in spec.depends_on if n in rendered]
        rendered[spec.name] = DockerService(
            spec.name, spec, limits[spec.name], network=network, image=images[spec.image],
            prefix=prefix, publish_ip=publish_ip, restart=restart,
            opts=pulumi.ResourceOptions(depends_on=deps),
        )
    return rendered


def _image_key(ref: str) -> str:
    """Resource name of an image: its repository, so a new tag or digest updates the same resource."""
    repository = ref.split("@", 1)[0].rsplit(":", 1)[0]
    return repository.replace("/", "-").replace("_", "-").lower()
