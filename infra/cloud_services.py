"""The service specs of a cloud stack (target docker), in the same :class:`ServiceSpec` shape.

Centrifugo and SeaweedFS are the local stack's specs (:mod:`infra.services`) in
the environment's pinned images; the cloud-only ones are built here: Redis
(Centrifugo's engine with more than one replica), MinIO and its bucket job,
PostgreSQL and SuperTokens Core; the mail relay is :mod:`infra.mail_relay`'s.
:mod:`infra.render_docker` runs them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pulumi

from infra import services
from infra.cloud_bucket_rules import minio_cors_env
from infra.environment import ContainerSettings
from infra.mail_relay import mail_relay
from infra.services import S3_PREVIOUS_ENV
from infra.settings import CloudRefs, StackSettings
from infra.spec import HealthCheck, Port, ServiceSpec

#: the docker host address PostgreSQL is published on (docker.postgres.host_port): loopback only
AUTH_DB_HOST_IP = "127.0.0.1"
#: SuperTokens Core's start budget (JVM start + schema creation on a fraction of a CPU); an estimate for
#: cpus 0.5, not a measurement: nothing here runs the image
SUPERTOKENS_START_SECONDS = 180


def _pinned(spec: ServiceSpec, container: ContainerSettings) -> ServiceSpec:
    """The spec with the environment's pinned image (tag + digest) instead of its default."""
    return dataclasses.replace(spec, image=container.image.ref)


def http_probe(tool: str, port: int, path: str) -> tuple[str, ...]:
    """A health probe by ``curl`` or ``wget``, whichever the image ships, failing on an HTTP error."""
    url = f"http://127.0.0.1:{port}{path}"
    if tool == "curl":
        return ("curl", "-fsS", "-o", "/dev/null", url)
    if tool == "wget":
        return ("wget", "-q", "-O", "/dev/null", url)
    raise ValueError(f"no HTTP probe with {tool!r}")


def _with_http_probe(spec: ServiceSpec, tool: str) -> ServiceSpec:
    """The spec whose HTTP health check Docker runs with ``tool``."""
    assert spec.health and spec.health.kind == "http"
    probe = http_probe(tool, spec.port(spec.health.port).number, spec.health.path)
    return dataclasses.replace(spec, health=dataclasses.replace(spec.health, command=probe))


def redis(s: StackSettings) -> ServiceSpec:
    """Centrifugo's Redis engine (docker.centrifugo.replicas > 1): private, no persistence needed."""
    assert s.environment.docker and s.environment.docker.redis
    return ServiceSpec(
        name="redis", program="redis-server", args=("--save", "", "--appendonly", "no"),
        ports=(Port("redis", 6379),),
        health=HealthCheck(port="redis", kind="tcp", command=("redis-cli", "-p", "6379", "ping")),
        image=s.environment.docker.redis.image.ref,
    )


def centrifugo(s: StackSettings) -> ServiceSpec:
    """The local stack's Centrifugo spec (incl. a token-key rotation's previous key) in the pinned image;
    with replicas > 1 its Redis engine is switched on by env."""
    docker_settings = s.environment.docker
    assert docker_settings
    # the image has no ENTRYPOINT (CMD ["centrifugo"]): the command names the binary; alpine's wget probes
    spec = _with_http_probe(_pinned(services.centrifugo(s), docker_settings.centrifugo), "wget")
    if docker_settings.centrifugo.replicas > 1:
        engine = {"CENTRIFUGO_ENGINE_TYPE": "redis", "CENTRIFUGO_ENGINE_REDIS_ADDRESS": "redis://redis:6379"}
        spec = dataclasses.replace(spec, env={**spec.env, **engine}, depends_on=(*spec.depends_on, "redis"))
    return spec


def seaweedfs(s: StackSettings) -> ServiceSpec:
    """The local stack's SeaweedFS spec in the pinned image, as the image's entrypoint expects it.

    The command starts with ``mini`` (no ``weed``): the entrypoint routes it to ``weed mini`` after
    dropping root to its ``seaweed`` user, so the data volume is the image's ``/data``. ``-ip`` is what
    the master advertises to clients of its volume servers, so it is the container's name on the
    private network (an address other containers resolve); ``-ip.bind`` stays 0.0.0.0.
    """
    assert s.environment.docker and s.environment.docker.storage
    spec = _pinned(services.seaweedfs(s), s.environment.docker.storage)
    args = tuple(f"-ip={spec.name}" if a == "-ip=${host}" else a for a in spec.args)
    assert args != spec.args, "services.seaweedfs passes -ip=${host}"
    # the volume at the image's /data, which its Dockerfile gives the seaweed user: a new volume copies
    # that ownership (elsewhere it would be root's, and the entrypoint only fixes /data itself)
    return _with_http_probe(dataclasses.replace(spec, program="", args=args, data_mount="/data"), "curl")


def minio(s: StackSettings, refs: CloudRefs) -> ServiceSpec:
    """MinIO single node with its own root pair (telestack:minioRootUser/Password); the stack's S3 keys are
    an ordinary user the minio-bucket job keeps, so rotating them never restarts MinIO."""
    st, docker_settings = s.environment.storage, s.environment.docker
    assert docker_settings and docker_settings.storage
    assert refs.minio_root_user is not None, "load_cloud_refs reads the root pair when storage.kind is minio"
    return ServiceSpec(
        name="minio", program="minio",
        args=("server", "${data}", "--address", f":{st.port}", "--console-address", "127.0.0.1:9001"),
        secret_env={"MINIO_ROOT_USER": refs.minio_root_user, "MINIO_ROOT_PASSWORD": refs.minio_root_password},
        env=minio_cors_env(s.environment.allowed_origins),  # MinIO's CORS is server-wide, not per bucket
        ports=(Port("s3", st.port, "storage.port", public=True),),
        health=HealthCheck(port="s3", path="/minio/health/live",
                           command=http_probe("curl", st.port, "/minio/health/live")),
        data_dir=True, image=docker_settings.storage.image.ref,
    )


def minio_app_policy(bucket: str) -> str:
    """Name of the stack's bucket-scoped policy: also the marker of the users the job manages (and prunes)."""
    return f"telestack-app-{bucket}"


#: env of the minio-bucket job holding the stack's current S3 pair (previous pair: S3_PREVIOUS_ENV)
MINIO_APP_ENV = ("TELESTACK_S3_ACCESS_KEY_ID", "TELESTACK_S3_SECRET_ACCESS_KEY")
#: the job's script; its @NAME@ tokens are filled per bucket (:func:`_minio_bucket_script`)
MINIO_BUCKET_SCRIPT = Path(__file__).with_name("minio_bucket.sh")


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
    script = MINIO_BUCKET_SCRIPT.read_text(encoding="utf-8")
    for token, value in values.items():
        script = script.replace(token, value)
    return script


def minio_bucket(s: StackSettings, refs: CloudRefs) -> ServiceSpec:
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
        secret_env[S3_PREVIOUS_ENV[0]] = sec.s3_access_key_id_previous
        secret_env[S3_PREVIOUS_ENV[1]] = sec.s3_secret_access_key_previous
    # MinIO's server image ships mc; its entrypoint would prefix any command with `minio`, so this job
    # (and only it) replaces the entrypoint with a shell
    return ServiceSpec(
        name="minio-bucket", program="", entrypoint=("sh",),
        args=("-c", _minio_bucket_script(st.bucket, st.port)),
        secret_env=secret_env, image=docker_settings.storage.image.ref, depends_on=("minio",),
    )


def postgres(s: StackSettings, refs: CloudRefs) -> ServiceSpec:
    """PostgreSQL for SuperTokens Core: data on a named volume; private, or with ``docker.postgres.host_port``
    also on the docker host's 127.0.0.1 only (scripts/ops backup/restore of the auth store)."""
    docker_settings = s.environment.docker
    assert docker_settings
    host_port = docker_settings.postgres.host_port or 0
    # program "": the image's CMD (`postgres`) through its docker-entrypoint.sh, which runs initdb with
    # POSTGRES_USER/DB/PASSWORD on an empty PGDATA and drops root before starting the server. During
    # initdb its temporary server listens on no TCP address, so the probe passes only for the real one.
    return ServiceSpec(
        name="postgres", program="",
        env={"POSTGRES_USER": "supertokens", "POSTGRES_DB": "supertokens", "PGDATA": "${data}/pgdata"},
        secret_env={"POSTGRES_PASSWORD": refs.postgres_password},
        ports=(Port("pg", 5432, "docker.postgres.host_port", host_port=host_port, host_ip=AUTH_DB_HOST_IP),),
        health=HealthCheck(port="pg", kind="tcp",
                           command=("pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "supertokens")),
        data_dir=True, image=docker_settings.postgres.image.ref,
    )


def supertokens(s: StackSettings, refs: CloudRefs) -> ServiceSpec:
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
        # the core is a JVM that creates its tables on first start: on a fraction of a CPU that takes
        # minutes, not the provider's default 60 s (render_docker.wait_timeout derives the wait from this)
        health=HealthCheck(port="http", path="/hello", start_seconds=SUPERTOKENS_START_SECONDS,
                           command=http_probe("curl", env.auth.port, "/hello")),
        image=docker_settings.supertokens.image.ref, depends_on=("postgres",),
    )


def cloud_specs(s: StackSettings, refs: CloudRefs) -> list[ServiceSpec]:
    """Every container service of a cloud environment, dependencies first."""
    env = s.environment
    assert env.docker
    specs: list[ServiceSpec] = []
    if env.docker.centrifugo.replicas > 1:
        specs.append(redis(s))
    specs.append(centrifugo(s))
    if env.storage.kind == "seaweedfs":
        assert env.docker and env.docker.storage
        specs.append(seaweedfs(s))
    elif env.storage.kind == "minio":
        specs += [minio(s, refs), minio_bucket(s, refs)]
    specs += [postgres(s, refs), supertokens(s, refs)]
    if env.mail is not None:
        specs.append(mail_relay(s, refs))
    return specs


def container_settings(s: StackSettings, name: str) -> ContainerSettings:
    """Replicas and limits of a spec: its own ``docker.<section>``, honoured as written.

    infra/environment_rules.py (check_cloud) refuses ``replicas > 1`` for the sections that run as one
    container (SINGLE_CONTAINER), so nothing here overrides the file.
    """
    d = s.environment.docker
    assert d
    by_name = {"centrifugo": d.centrifugo, "supertokens": d.supertokens, "postgres": d.postgres,
               "redis": d.redis, "seaweedfs": d.storage, "minio": d.storage, "minio-bucket": d.storage,
               "mail-relay": d.mailpit}
    found = by_name.get(name)
    assert found, f"no docker settings for {name}"
    return found
