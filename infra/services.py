"""The service specs of a stack, one function per component, built from settings.

Specs are target-neutral (see infra/spec.py); URLs that differ per target are
computed by :func:`local_endpoints` for the local target. A component whose
code is not in the repository yet is skipped with a warning, so the stack
still comes up with what exists.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from dataclasses import dataclass

from infra.settings import Environment, Secrets, Settings, SettingsError
from infra.spec import HealthCheck, Port, ServiceSpec

#: SQLite files under each service's data dir (the gateway's D1, the stand-in's store)
GATEWAY_DB = "gateway.sqlite3"
AUTH_DB = "supertokens.sqlite3"
#: SeaweedFS static identities file (under ``${config}``); it names env vars, never holds a key
S3_IDENTITIES = "s3-identities.json"
#: env vars carrying the S3 pair being rotated out, referenced as ``${VAR}`` from :data:`S3_IDENTITIES`
S3_PREVIOUS_ENV = ("TELESTACK_S3_PREVIOUS_ACCESS_KEY_ID", "TELESTACK_S3_PREVIOUS_SECRET_ACCESS_KEY")
#: the spec's default image: the Centrifugo scripts/toolchain.sh builds for the local stack; docker
#: stacks run ``docker.centrifugo.image`` instead (the one version setting of a cloud stack)
CENTRIFUGO_IMAGE = "centrifugo/centrifugo:v6.9.1"


@dataclass(frozen=True)
class Endpoints:
    """Where clients and the gateway reach each service."""

    gateway_url: str
    centrifugo_api_url: str
    centrifugo_ws_url: str
    s3_endpoint: str
    s3_public_endpoint: str
    auth_url: str


def local_endpoints(env: Environment) -> Endpoints:
    host = env.bind_host if ":" not in env.bind_host else f"[{env.bind_host}]"
    s3 = env.storage.endpoint or f"http://{host}:{env.storage.port}"
    return Endpoints(
        gateway_url=env.gateway.public_url or f"http://{host}:{env.gateway.port}",
        centrifugo_api_url=f"http://{host}:{env.realtime.port}/api",
        centrifugo_ws_url=env.realtime.public_ws_url
        or f"ws://{host}:{env.realtime.port}/connection/websocket",
        s3_endpoint=s3,
        s3_public_endpoint=env.storage.public_endpoint or s3,
        auth_url=f"http://{host}:{env.auth.port}",
    )


def gateway_options(env: Environment) -> dict[str, str]:
    """Optional gateway settings the environment file sets (key -> text); absent = the gateway's default.

    Both targets use this one mapping: the local gateway as ``TELESTACK_<KEY>`` env, the Worker as
    plain-text bindings, so a key can never reach one target and not the other.
    """
    values = {
        "AUTH_ACCESS_TOKEN_VALIDITY": env.auth.access_token_validity,
        "AUTH_ISSUER": env.auth.issuer or None,
        "STORAGE_URL_TTL": env.storage.url_ttl,
        "STORAGE_MAX_UPLOAD_BYTES": env.storage.max_upload_bytes,
    }
    return {key: str(value) for key, value in values.items() if value is not None}


def _setting(s: Settings, key: str) -> str:
    return f"{s.env_file.name}: {key}"


def centrifugo(s: Settings) -> ServiceSpec:
    """Centrifugo v6: config file from config/ (non-secret), API key and token secret via env."""
    rt = s.environment.realtime
    try:
        from infra import centrifugo_config  # the realtime owner's generator
    except ImportError:
        config = json.dumps(_minimal_centrifugo_config(s.environment), indent=2)
    else:
        try:
            config = centrifugo_config.render(s)
        except centrifugo_config.ConfigError as exc:
            raise SettingsError(f"config/: {exc}") from None
    secret_env = {
        "CENTRIFUGO_HTTP_API_KEY": s.secrets.centrifugo_api_key,
        "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": s.secrets.centrifugo_token_secret,
    }
    previous = s.secrets.centrifugo_token_secret_previous
    if previous is not None:  # a token-key rotation (scripts/ops) is in its overlap window
        until = str(s.secrets.centrifugo_token_secret_previous_valid_until)
        secret_env["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY"] = previous
        secret_env["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY_VALID_UNTIL"] = until
    return ServiceSpec(
        name="centrifugo",
        program="centrifugo",
        args=("--config", "${config}/config.json"),
        files={"config.json": config},
        secret_env=secret_env,
        ports=(Port("http", rt.port, _setting(s, "realtime.port"), public=True),),
        health=HealthCheck(port="http", path="/health"),
        image=CENTRIFUGO_IMAGE,
    )


def _minimal_centrifugo_config(env: Environment) -> dict[str, object]:
    """Fallback until infra/centrifugo_config.py exists: HTTP API + WebSocket + health only."""
    return {
        "http_server": {"address": "${host}", "port": env.realtime.port},
        "client": {"allowed_origins": list(env.realtime.allowed_origins)},
        "health": {"enabled": True},
        "channel": {"without_namespace": {"presence": False}},
    }


def seaweedfs(s: Settings) -> ServiceSpec:
    """SeaweedFS `weed mini`: S3 with the stack's identity (env), bucket created, every port explicit."""
    st = s.environment.storage
    sw = st.seaweedfs
    ports = [Port("s3", st.port, _setting(s, "storage.port"), public=True)]
    ports += [
        Port(f.name, getattr(sw, f.name), _setting(s, f"storage.seaweedfs.{f.name}"))
        for f in dataclasses.fields(sw)
    ]
    p = {port.name: port.number for port in ports}
    secret_env = {  # `weed` turns these into its admin identity and then checks every signature
        "AWS_ACCESS_KEY_ID": s.secrets.s3_access_key_id,
        "AWS_SECRET_ACCESS_KEY": s.secrets.s3_secret_access_key,
    }
    if s.secrets.s3_access_key_id_previous is not None:  # a rotation's overlap window
        secret_env[S3_PREVIOUS_ENV[0]] = s.secrets.s3_access_key_id_previous
        secret_env[S3_PREVIOUS_ENV[1]] = s.secrets.s3_secret_access_key_previous
    return ServiceSpec(
        name="seaweedfs",
        program="weed",
        args=(
            "mini",
            "-dir=${data}",
            "-ip=${host}",
            "-ip.bind=${host}",
            f"-bucket={st.bucket}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-webdav.port={p['webdav']}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            "-master.telemetry=false",
            # always explicit: `weed mini` re-applies flags of the previous run from <dir>/mini.options
            # when they are not given, so a file passed only during a window would outlive it
            f"-s3.config=${{config}}/{S3_IDENTITIES}",
        ),
        files={S3_IDENTITIES: s3_identities(s.secrets)},
        secret_env=secret_env,
        ports=tuple(ports),
        health=HealthCheck(port="s3", path="/healthz"),
        data_dir=True,
        image="chrislusf/seaweedfs:4.48",
    )


def s3_identities(secrets: Secrets) -> str:
    """SeaweedFS ``-s3.config`` document: the previous S3 pair's identity during a rotation, else none.

    The current pair is the env identity (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY). SeaweedFS
    >= 4.48 expands ``${VAR}`` in a static file's credentials from its own environment, so the
    previous pair reaches it the same way, as secret env; the file itself holds no key.
    """
    identities: list[dict[str, object]] = []
    if secrets.s3_access_key_id_previous is not None:
        ak, sk = S3_PREVIOUS_ENV
        identities.append(
            {
                "name": "telestack-previous",
                "credentials": [{"accessKey": f"${{{ak}}}", "secretKey": f"${{{sk}}}"}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        )
    return json.dumps({"identities": identities}, indent=2) + "\n"


def supertokens_standin(s: Settings) -> ServiceSpec | None:
    """The SuperTokens CDI stand-in (local/CI only: SuperTokens Core is not obtainable here)."""
    if importlib.util.find_spec("infra.supertokens_standin.__main__") is None:
        return None
    port = s.environment.auth.port
    api_keys = s.secrets.auth_api_key
    if s.secrets.auth_api_key_previous is not None:  # overlap window: the core's list is "new,old"
        import pulumi

        api_keys = pulumi.Output.concat(api_keys, ",", s.secrets.auth_api_key_previous)
    return ServiceSpec(
        name="auth",
        program="python",
        args=(
            "-m",
            "infra.supertokens_standin",
            "--host",
            "${host}",
            "--port",
            str(port),
            "--db",
            f"${{data}}/{AUTH_DB}",
        ),
        secret_env={"SUPERTOKENS_API_KEYS": api_keys},
        ports=(Port("http", port, _setting(s, "auth.port")),),
        health=HealthCheck(port="http", path="/hello"),  # the core's health endpoint, no API key
        data_dir=True,
        repo_cwd=True,
    )


def gateway(s: Settings, endpoints: Endpoints, depends_on: tuple[str, ...]) -> ServiceSpec | None:
    """The gateway Worker code under CPython (uvicorn) against a SQLite file: the local D1."""
    if importlib.util.find_spec("worker.asgi") is None:
        return None
    env = s.environment
    sec = s.secrets
    secret_env = {
        "TELESTACK_ADMIN_KEY": sec.admin_key,
        "TELESTACK_AUTH_API_KEY": sec.auth_api_key,
        "TELESTACK_CENTRIFUGO_API_KEY": sec.centrifugo_api_key,
        "TELESTACK_CENTRIFUGO_TOKEN_SECRET": sec.centrifugo_token_secret,
        "TELESTACK_S3_ACCESS_KEY_ID": sec.s3_access_key_id,
        "TELESTACK_S3_SECRET_ACCESS_KEY": sec.s3_secret_access_key,
    }
    if sec.admin_key_previous is not None:  # overlap window: the old admin key, until the deadline
        secret_env["TELESTACK_ADMIN_KEY_PREVIOUS"] = sec.admin_key_previous
        secret_env["TELESTACK_ADMIN_KEY_PREVIOUS_UNTIL"] = str(sec.admin_key_previous_valid_until)
    return ServiceSpec(
        name="gateway",
        program="python",
        args=("-m", "worker.asgi"),
        env={
            "TELESTACK_HOST": "${host}",
            "TELESTACK_PORT": str(env.gateway.port),
            "TELESTACK_DB_PATH": f"${{data}}/{GATEWAY_DB}",
            "TELESTACK_CONFIG_DIR": str(s.root / "config"),
            "TELESTACK_AUTH_URL": endpoints.auth_url if "auth" in depends_on else "",
            "TELESTACK_CENTRIFUGO_API_URL": endpoints.centrifugo_api_url,
            "TELESTACK_CENTRIFUGO_WS_URL": endpoints.centrifugo_ws_url,
            "TELESTACK_S3_ENDPOINT": endpoints.s3_endpoint,
            "TELESTACK_S3_PUBLIC_ENDPOINT": endpoints.s3_public_endpoint,
            "TELESTACK_S3_BUCKET": env.storage.bucket,
            "TELESTACK_S3_REGION": env.storage.region,
            "TELESTACK_OUTBOX_DRAIN_PER_REQUEST": str(env.gateway.outbox_drain_per_request),
            **{f"TELESTACK_{key}": value for key, value in gateway_options(env).items()},
        },
        secret_env=secret_env,
        ports=(Port("http", env.gateway.port, _setting(s, "gateway.port"), public=True),),
        # 503 = serving, with a dependency reported down in the body: the stack still comes up
        health=HealthCheck(port="http", path="/v1/health", ok_status=(200, 503)),
        data_dir=True,
        depends_on=depends_on,
        repo_cwd=True,
    )


def local_stack(s: Settings) -> tuple[list[ServiceSpec], list[str]]:
    """Specs of the local target in start order, and a warning per component skipped."""
    warnings: list[str] = []
    specs = [centrifugo(s), seaweedfs(s)]
    auth = supertokens_standin(s)
    if auth:
        specs.append(auth)
    else:
        warnings.append("auth: infra/supertokens_standin is not in the repository yet; skipped")
    gw = gateway(s, local_endpoints(s.environment), tuple(spec.name for spec in specs))
    if gw:
        specs.append(gw)
    else:
        warnings.append("gateway: worker/asgi.py is not in the repository yet; skipped")
    return specs, warnings
