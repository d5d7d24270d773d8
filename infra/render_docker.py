"""Docker renderer: service specs as containers on a Docker host.

The provider talks to ``DOCKER_HOST`` (local socket, or ``ssh://user@host``).
Per environment: one private bridge network, a named volume per stateful
service, a pinned :class:`RemoteImage` per image, and per spec (x replicas) a
container with the spec's health check, restart policy and resource limits.
Only ports a spec marks ``public`` are published (replica *i* on port + *i*;
only Centrifugo and SuperTokens Core take ``replicas``, infra/environment_rules.py refuses it
elsewhere); PostgreSQL, Redis and SeaweedFS' internal ports stay on the private network.
Secrets reach containers only as Pulumi-secret environment entries.
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


def _health(spec: ServiceSpec) -> docker.ContainerHealthcheckArgs | None:
    """Docker health check from the spec: an HTTP GET on the spec's path, or a TCP connect."""
    if spec.health is None:
        return None
    port = spec.port(spec.health.port).number
    tcp = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'"
    if spec.health.kind == "tcp":
        test = ["CMD-SHELL", tcp]
    else:
        # images differ in what they ship: use the first HTTP client present, else a TCP connect
        url = f"http://127.0.0.1:{port}{spec.health.path}"
        script = (f"if command -v wget >/dev/null; then wget -q -O /dev/null {url}; "
                  f"elif command -v curl >/dev/null; then curl -fsS -o /dev/null {url}; else {tcp}; fi")
        test = ["CMD-SHELL", script]
    return docker.ContainerHealthcheckArgs(tests=test, interval="10s", timeout="5s", retries=6,
                                           start_period="30s")


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
                  "data": f"{DATA_DIR}/{spec.name}"}
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
                entrypoints=[spec.program] if spec.program else None,
                command=[substitute(a, values) for a in spec.args] or None,
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
