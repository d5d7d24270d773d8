"""Docker renderer: the same service specs the local renderer runs, as containers on a Docker host.

The provider talks to ``DOCKER_HOST`` (local socket, or ``ssh://user@host``).
Per environment: one private bridge network, a named volume per stateful
service, a pinned :class:`RemoteImage` per image, and per spec (x replicas) a
container with the spec's health check, restart policy and resource limits.
Only ports a spec marks ``public`` are published (replica *i* on port + *i*;
only Centrifugo and SuperTokens Core take ``replicas``, infra/settings.py refuses it elsewhere);
PostgreSQL, Redis and SeaweedFS' internal ports stay on the private network.
Secrets reach containers only as Pulumi-secret environment entries.

Specs shared with the local stack come from :mod:`infra.services`
(Centrifugo, SeaweedFS); the cloud-only ones (MinIO, SuperTokens Core,
PostgreSQL, Redis) are built here in the same :class:`ServiceSpec` shape.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from infra import services
from infra.settings import CloudRefs, ContainerSettings, Settings
from infra.spec import HealthCheck, Port, ServiceSpec, substitute

CONFIG_DIR = "/etc/telestack"
DATA_DIR = "/data"
#: address services bind inside a container (the network is private; publishing decides exposure)
CONTAINER_HOST = "0.0.0.0"  # noqa: S104
#: the docker host address PostgreSQL is published on (docker.postgres.host_port): loopback only
AUTH_DB_HOST_IP = "127.0.0.1"


# --- cloud specs ---------------------------------------------------------------------------------


def _pinned(spec: ServiceSpec, container: ContainerSettings) -> ServiceSpec:
    """The spec with the environment's pinned image (tag + digest) instead of its default."""
    return dataclasses.replace(spec, image=container.image.ref)


def redis(s: Settings) -> ServiceSpec:
    """Centrifugo's Redis engine (docker.centrifugo.replicas > 1): private, no persistence needed."""
    assert s.environment.docker and s.environment.docker.redis
    return ServiceSpec(
        name="redis", program="redis-server", args=("--save", "", "--appendonly", "no"),
        ports=(Port("redis", 6379),), health=HealthCheck(port="redis", kind="tcp"),
        image=s.environment.docker.redis.image.ref,
    )


def centrifugo(s: Settings) -> ServiceSpec:
    """The local stack's Centrifugo spec (incl. a token-key rotation's previous key) in the pinned image;
    with replicas > 1 its Redis engine is switched on by env."""
    docker_settings = s.environment.docker
    assert docker_settings
    spec = _pinned(services.centrifugo(s), docker_settings.centrifugo)
    if docker_settings.centrifugo.replicas > 1:
        engine = {"CENTRIFUGO_ENGINE_TYPE": "redis", "CENTRIFUGO_ENGINE_REDIS_ADDRESS": "redis://redis:6379"}
        spec = dataclasses.replace(spec, env={**spec.env, **engine}, depends_on=(*spec.depends_on, "redis"))
    return spec


def minio(s: Settings, refs: CloudRefs) -> ServiceSpec:
    """MinIO single node with its own root pair (telestack:minioRootUser/Password); the stack's S3 keys are
    an ordinary user the minio-bucket job keeps, so rotating them never restarts MinIO."""
    st, docker_settings = s.environment.storage, s.environment.docker
    assert docker_settings and docker_settings.storage
    assert refs.minio_root_user is not None, "load_cloud_refs reads the root pair when storage.kind is minio"
    return ServiceSpec(
        name="minio", program="minio",
        args=("server", "${data}", "--address", f":{st.port}", "--console-address", "127.0.0.1:9001"),
        secret_env={"MINIO_ROOT_USER": refs.minio_root_user, "MINIO_ROOT_PASSWORD": refs.minio_root_password},
        ports=(Port("s3", st.port, "storage.port", public=True),),
        health=HealthCheck(port="s3", path="/minio/health/live"),
        data_dir=True, image=docker_settings.storage.image.ref,
    )


def minio_app_policy(bucket: str) -> str:
    """Name of the stack's bucket-scoped policy: also the marker of the users the job manages (and prunes)."""
    return f"telestack-app-{bucket}"


#: env of the minio-bucket job holding the stack's current S3 pair (previous pair: services.S3_PREVIOUS_ENV)
MINIO_APP_ENV = ("TELESTACK_S3_ACCESS_KEY_ID", "TELESTACK_S3_SECRET_ACCESS_KEY")
#: the job (POSIX sh). Keys are only ever "$VAR" references and reach `mc` on stdin (`mc alias set` and
#: `mc admin user add` read them there when not given), so no key is in any argv. `mc ... --json` prints
#: one object per line when piped (indented on a terminal); the loop parses both, without jq.
_MINIO_BUCKET_SCRIPT = r"""set -eu
policy='@POLICY@'
n=0
until printf '%s\n%s\n' "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" | mc alias set s3 @URL@ >/dev/null; do
  n=$((n + 1))
  if [ "$n" -ge 30 ]; then echo 'minio-bucket: MinIO down or refusing telestack:minioRootUser' >&2; exit 1; fi
  sleep 2
done
if [ "$TELESTACK_S3_ACCESS_KEY_ID" = "$MINIO_ROOT_USER" ]; then
  echo 'minio-bucket: telestack:s3AccessKeyId is the MinIO root user; give MinIO a root user of its own' >&2
  exit 1
fi
mc mb --ignore-existing 's3/@BUCKET@'
printf '%s\n' '@POLICY_JSON@' > /tmp/telestack-app-policy.json
mc admin policy create s3 "$policy" /tmp/telestack-app-policy.json >/dev/null
app_user() {  # create the user or update its secret, then attach the stack's policy (both idempotent)
  printf '%s\n%s\n' "$1" "$2" | mc admin user add s3 >/dev/null
  mc admin policy attach s3 "$policy" --user "$1" >/dev/null
  echo "minio-bucket: app user $1 ($3)"
}
app_user "$TELESTACK_S3_ACCESS_KEY_ID" "$TELESTACK_S3_SECRET_ACCESS_KEY" current
prev="${TELESTACK_S3_PREVIOUS_ACCESS_KEY_ID:-}"
if [ -n "$prev" ]; then
  app_user "$prev" "$TELESTACK_S3_PREVIOUS_SECRET_ACCESS_KEY" 'previous, until rotate-secrets --finish'
fi
users=$(mc admin user list s3 --json)
user='' attached=''
while IFS= read -r line; do
  case $line in *'"accessKey"'*) user=${line#*'"accessKey"'}; user=${user#*'"'}; user=${user%%'"'*} ;; esac
  case $line in *'"policyName"'*)
    attached=${line#*'"policyName"'}; attached=${attached#*'"'}; attached=${attached%%'"'*} ;;
  esac
  case $line in *'}'*)
    if [ -n "$user" ] && [ "$attached" = "$policy" ] && [ "$user" != "$TELESTACK_S3_ACCESS_KEY_ID" ] \
        && [ "$user" != "$prev" ]; then
      mc admin user rm s3 "$user" >/dev/null
      echo "minio-bucket: removed app user $user (rotated out)"
    fi
    user='' attached='' ;;
  esac
done <<EOF
$users
EOF
"""


def _minio_bucket_script(bucket: str, port: int) -> str:
    """The job's script for one bucket: its policy allows the object and listing calls on that bucket only."""
    on_bucket = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    on_objects = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                  "s3:ListMultipartUploadParts"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": on_bucket, "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Effect": "Allow", "Action": on_objects, "Resource": [f"arn:aws:s3:::{bucket}/*"]},
    ]}, separators=(",", ":"))
    # the bucket name is [a-z0-9.-] (settings checks it) and the JSON holds no quote: safe in '...'
    values = {"@POLICY_JSON@": policy, "@POLICY@": minio_app_policy(bucket), "@BUCKET@": bucket,
              "@URL@": f"http://minio:{port}"}
    script = _MINIO_BUCKET_SCRIPT
    for token, value in values.items():
        script = script.replace(token, value)
    return script


def minio_bucket(s: Settings, refs: CloudRefs) -> ServiceSpec:
    """One-shot job (``mc``, root pair): the bucket, the stack's bucket-scoped policy, and its app users.

    The app users are the current S3 pair and, during a rotation window, the previous pair too; any other
    user holding the stack's policy (:func:`minio_app_policy`) is removed, so after ``rotate-secrets
    --finish`` the next ``pulumi up`` refuses the old key. Both pairs are inputs (secret env), so a
    changed or removed pair replaces the container: the job runs again on exactly those changes.
    """
    st, docker_settings = s.environment.storage, s.environment.docker
    assert docker_settings and docker_settings.storage
    sec = s.secrets
    secret_env = {"MINIO_ROOT_USER": refs.minio_root_user, "MINIO_ROOT_PASSWORD": refs.minio_root_password,
                  MINIO_APP_ENV[0]: sec.s3_access_key_id, MINIO_APP_ENV[1]: sec.s3_secret_access_key}
    if sec.s3_access_key_id_previous is not None:  # a rotation window: keep the old pair as a second user
        secret_env[services.S3_PREVIOUS_ENV[0]] = sec.s3_access_key_id_previous
        secret_env[services.S3_PREVIOUS_ENV[1]] = sec.s3_secret_access_key_previous
    return ServiceSpec(
        name="minio-bucket", program="sh", args=("-c", _minio_bucket_script(st.bucket, st.port)),
        secret_env=secret_env, image=docker_settings.storage.image.ref, depends_on=("minio",),
    )


def postgres(s: Settings, refs: CloudRefs) -> ServiceSpec:
    """PostgreSQL for SuperTokens Core: data on a named volume; private, or with ``docker.postgres.host_port``
    also on the docker host's 127.0.0.1 only (scripts/ops backup/restore of the auth store)."""
    docker_settings = s.environment.docker
    assert docker_settings
    host_port = docker_settings.postgres.host_port or 0
    return ServiceSpec(
        name="postgres", program="postgres",
        env={"POSTGRES_USER": "supertokens", "POSTGRES_DB": "supertokens", "PGDATA": "${data}/pgdata"},
        secret_env={"POSTGRES_PASSWORD": refs.postgres_password},
        ports=(Port("pg", 5432, "docker.postgres.host_port", host_port=host_port, host_ip=AUTH_DB_HOST_IP),),
        health=HealthCheck(port="pg", kind="tcp"),
        data_dir=True, image=docker_settings.postgres.image.ref,
    )


def supertokens(s: Settings, refs: CloudRefs) -> ServiceSpec:
    """SuperTokens Core (PostgreSQL image): published for the gateway Worker, which sends the API key.

    The image's entrypoint writes ``API_KEYS`` into the core's ``api_keys`` (a comma-separated list):
    during an auth key rotation's window it is "new,previous", as the local stand-in's.
    """
    env, docker_settings = s.environment, s.environment.docker
    assert docker_settings
    api_keys = s.secrets.auth_api_key
    if s.secrets.auth_api_key_previous is not None:
        api_keys = pulumi.Output.concat(api_keys, ",", s.secrets.auth_api_key_previous)
    return ServiceSpec(
        name="supertokens", program="",  # the image's own entrypoint starts the core
        env={"POSTGRESQL_HOST": "postgres", "POSTGRESQL_PORT": "5432", "POSTGRESQL_USER": "supertokens",
             "POSTGRESQL_DATABASE_NAME": refs.auth_database_name, "SUPERTOKENS_PORT": str(env.auth.port)},
        secret_env={"POSTGRESQL_PASSWORD": refs.postgres_password, "API_KEYS": api_keys},
        ports=(Port("http", env.auth.port, "auth.port", public=True),),
        health=HealthCheck(port="http", path="/hello"),
        image=docker_settings.supertokens.image.ref, depends_on=("postgres",),
    )


def cloud_specs(s: Settings, refs: CloudRefs) -> list[ServiceSpec]:
    """Every container service of a cloud environment, dependencies first."""
    env = s.environment
    assert env.docker
    specs: list[ServiceSpec] = []
    if env.docker.centrifugo.replicas > 1:
        specs.append(redis(s))
    specs.append(centrifugo(s))
    if env.storage.kind == "seaweedfs":
        assert env.docker and env.docker.storage
        specs.append(_pinned(services.seaweedfs(s), env.docker.storage))
    elif env.storage.kind == "minio":
        specs += [minio(s, refs), minio_bucket(s, refs)]
    specs += [postgres(s, refs), supertokens(s, refs)]
    return specs


def container_settings(s: Settings, name: str) -> ContainerSettings:
    """Replicas and limits of a spec: its own ``docker.<section>``, honoured as written.

    infra/settings.py (check_cloud) refuses ``replicas > 1`` for the sections that run as one
    container (SINGLE_CONTAINER), so nothing here overrides the file.
    """
    d = s.environment.docker
    assert d
    by_name = {"centrifugo": d.centrifugo, "supertokens": d.supertokens, "postgres": d.postgres,
               "redis": d.redis, "seaweedfs": d.storage, "minio": d.storage, "minio-bucket": d.storage}
    found = by_name.get(name)
    assert found, f"no docker settings for {name}"
    return found


# --- rendering ----------------------------------------------------------------------------------


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


def render_services(s: Settings, specs: Sequence[ServiceSpec]) -> Mapping[str, DockerService]:
    """The environment's network, images and one :class:`DockerService` per spec (dependencies first)."""
    d = s.environment.docker
    assert d
    prefix = f"telestack-{s.env_name}"
    network = docker.Network("network", name=f"{prefix}-net", driver="bridge")
    images: dict[str, docker.RemoteImage] = {}
    rendered: dict[str, DockerService] = {}
    for spec in specs:
        if spec.image not in images:
            images[spec.image] = docker.RemoteImage(f"image-{_image_key(spec.image)}", name=spec.image,
                                                    keep_locally=True)
        deps: list[Any] = [rendered[n] for n in spec.depends_on if n in rendered]
        rendered[spec.name] = DockerService(
            spec.name, spec, container_settings(s, spec.name), network=network, image=images[spec.image],
            prefix=prefix, publish_ip=d.publish_ip, restart=d.restart,
            opts=pulumi.ResourceOptions(depends_on=deps),
        )
    return rendered


def _image_key(ref: str) -> str:
    """Resource name of an image: its repository, so a new tag or digest updates the same resource."""
    repository = ref.split("@", 1)[0].rsplit(":", 1)[0]
    return repository.replace("/", "-").replace("_", "-").lower()


# --- the cloud stack ----------------------------------------------------------------------------


def _api_url(ws_url: str) -> str:
    """Centrifugo's HTTP API on the same public host as its WebSocket endpoint."""
    scheme, rest = ws_url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme in ('wss', 'https') else 'http'}://{host}/api"


def render(s: Settings) -> dict[str, Any]:
    """A cloud stack (target docker): containers + the edge; returns the stack outputs (local names)."""
    from infra import edge, settings
    from infra.worker_bundle import build_bundle

    env = s.environment
    assert env.cloudflare
    refs = s.cloud or settings.load_cloud_refs(env, str(s.env_file))
    services_by_name = render_services(s, cloud_specs(s, refs))
    cf = env.cloudflare
    s3_endpoint = env.storage.endpoint or env.storage.public_endpoint
    public = {
        "gateway_url": "",
        "centrifugo_ws_url": env.realtime.public_ws_url,
        "centrifugo_api_url": _api_url(env.realtime.public_ws_url),
        "s3_endpoint": env.storage.public_endpoint or s3_endpoint,
        "s3_bucket": env.storage.bucket,
        "s3_region": env.storage.region,
        "auth_url": env.auth.public_url,
    }
    collections_json = edge.read_collections(s.root / "config")
    sec = s.secrets
    secret_vars = {
        "ADMIN_KEY": sec.admin_key,
        "AUTH_API_KEY": sec.auth_api_key,
        "CENTRIFUGO_API_KEY": sec.centrifugo_api_key,
        "CENTRIFUGO_TOKEN_SECRET": sec.centrifugo_token_secret,
        "S3_ACCESS_KEY_ID": sec.s3_access_key_id,
        "S3_SECRET_ACCESS_KEY": sec.s3_secret_access_key,
    }
    plain_vars = {
        "AUTH_URL": public["auth_url"],
        "CENTRIFUGO_API_URL": public["centrifugo_api_url"],
        "CENTRIFUGO_WS_URL": public["centrifugo_ws_url"],
        "S3_ENDPOINT": s3_endpoint,
        "S3_PUBLIC_ENDPOINT": public["s3_endpoint"],
        "S3_BUCKET": env.storage.bucket,
        "S3_REGION": env.storage.region,
        "OUTBOX_DRAIN_PER_REQUEST": str(env.gateway.outbox_drain_per_request),
        **services.gateway_options(env),
    }
    if sec.admin_key_previous is not None:  # an admin key rotation's window (scripts/ops rotate-secrets)
        secret_vars["ADMIN_KEY_PREVIOUS"] = sec.admin_key_previous
        plain_vars["ADMIN_KEY_PREVIOUS_UNTIL"] = str(sec.admin_key_previous_valid_until)
    gateway = edge.Edge("edge", edge.EdgeArgs(
        account_id=refs.account_id, zone_id=refs.zone_id, api_token=refs.api_token,
        worker_name=cf.worker_name, database_name=cf.database_name, bundle=build_bundle(),
        collections_json=collections_json, migrations=edge.read_migrations(s.root / "config"),
        plain_vars=plain_vars,
        secret_vars=secret_vars,
        custom_domain=cf.custom_domain, route=cf.route, workers_dev=cf.workers_dev,
        read_replication=cf.d1_read_replication, location_hint=cf.d1_location_hint,
        outbox_cron=cf.outbox_cron, observability=cf.observability,
        database_id=refs.d1_database_id,
    ))
    return {
        **public,
        "gateway_url": gateway.url,
        "d1_database_id": gateway.database_id,
        "cloudflare_account_id": refs.account_id,  # with d1_database_id: what scripts/ops needs to reach D1
        "worker_version_id": gateway.version.id,
        "services": sorted(services_by_name),
        # exported so `pulumi up` awaits them: a failed job fails the deploy (job_succeeded)
        "jobs": {name: pulumi.Output.all(*svc.job_exit_codes)
                 for name, svc in sorted(services_by_name.items()) if svc.job_exit_codes},
        **auth_db_output(s, refs),
    }


def auth_db_url(password: str, host_port: int, database: str) -> str:
    return (f"postgresql://supertokens:{urllib.parse.quote(password, safe='')}@{AUTH_DB_HOST_IP}:{host_port}/"
            f"{database}")


def auth_db_output(s: Settings, refs: CloudRefs) -> dict[str, Any]:
    """``auth_db_url`` (a Pulumi secret: it holds the password) when PostgreSQL is published on the host;
    it names the database SuperTokens uses now, so the next backup dumps what is live."""
    assert s.environment.docker
    host_port = s.environment.docker.postgres.host_port
    if host_port is None:
        return {}
    url = pulumi.Output.from_input(refs.postgres_password).apply(
        lambda pw: auth_db_url(pw, host_port, refs.auth_database_name))
    return {"auth_db_url": pulumi.Output.secret(url)}
