"""The service specs of the local stack, one function per component, built from stack settings.

Specs are target-neutral (see infra/spec.py): cloud stacks run the Centrifugo
and SeaweedFS specs as containers too (infra/cloud_services.py). The auth
stand-in and the gateway process are the local stack's own: in the cloud,
SuperTokens Core and the Worker take their place.
"""

from __future__ import annotations

import dataclasses
import json

import pulumi

from infra import centrifugo_config
from infra.config_error import StackConfigError
from infra.endpoints import Endpoints, local_endpoints
from infra.gateway_bindings import gateway_bindings
from infra.settings import Secrets, StackSettings
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


def _setting(s: StackSettings, key: str) -> str:
    return f"{s.env_file.name}: {key}"


def centrifugo(s: StackSettings) -> ServiceSpec:
    """Centrifugo v6: config file from config/ (non-secret), API key and token secret via env."""
    rt = s.environment.realtime
    try:
        config = centrifugo_config.render(s)
    except centrifugo_config.ConfigError as exc:
        raise StackConfigError(f"config/: {exc}") from None
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


def seaweedfs(s: StackSettings) -> ServiceSpec:
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
        # S3 answers before the master has the volume server's heartbeat, and until then a stored
        # object reads as 500: started means the master lists every volume the server loaded
        ready=(HealthCheck(port="master", kind="seaweedfs_volumes", volume_port="volume"),),
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


def supertokens_standin(s: StackSettings) -> ServiceSpec:
    """The SuperTokens CDI stand-in (local/CI only: SuperTokens Core is not obtainable here)."""
    port = s.environment.auth.port
    api_keys = s.secrets.auth_api_key
    if s.secrets.auth_api_key_previous is not None:  # overlap window: the core's list is "new,old"
        api_keys = pulumi.Output.concat(api_keys, ",", s.secrets.auth_api_key_previous)
    return ServiceSpec(
        name="auth",
        program="python",
        args=(
            "-m",
            "infra.standins.supertokens",
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


def mailpit(s: StackSettings) -> ServiceSpec:
    """Mailpit: the local stack's SMTP server; every mail the gateway sends shows in its web UI."""
    mail = s.environment.mail
    assert mail is not None
    return ServiceSpec(
        name="mailpit",
        program="mailpit",
        args=("--smtp", f"${{host}}:{mail.smtp_port}", "--listen", f"${{host}}:{mail.ui_port}",
              "--database", "${data}/mailpit.db", "--disable-version-check"),
        ports=(Port("smtp", mail.smtp_port, _setting(s, "mail.smtp_port")),
               Port("ui", mail.ui_port, _setting(s, "mail.ui_port"), public=True)),
        health=HealthCheck(port="ui", path="/livez"),
        data_dir=True,
    )


def gateway(s: StackSettings, endpoints: Endpoints, depends_on: tuple[str, ...]) -> ServiceSpec:
    """The gateway Worker code under CPython (uvicorn) against a SQLite file: the local D1.

    Its bindings are :func:`infra.gateway_bindings.gateway_bindings`, as ``TELESTACK_<NAME>``
    env (secret ones as secret env); the rest is how the ASGI entry serves (host, port, files).
    """
    env = s.environment
    bindings = gateway_bindings(env, s.secrets, endpoints)
    return ServiceSpec(
        name="gateway",
        program="python",
        args=("-m", "worker.asgi"),
        env={
            "TELESTACK_HOST": "${host}",
            "TELESTACK_PORT": str(env.gateway.port),
            "TELESTACK_DB_PATH": f"${{data}}/{GATEWAY_DB}",
            "TELESTACK_CONFIG_DIR": str(s.root / "config"),
            **{f"TELESTACK_{name}": value for name, value in bindings.plain.items()},
        },
        secret_env={f"TELESTACK_{name}": value for name, value in bindings.secret.items()},
        ports=(Port("http", env.gateway.port, _setting(s, "gateway.port"), public=True),),
        # 503 = serving, with a dependency reported down in the body: the stack still comes up
        health=HealthCheck(port="http", path="/v1/health", ok_status=(200, 503)),
        data_dir=True,
        depends_on=depends_on,
        repo_cwd=True,
    )


def local_stack(s: StackSettings) -> list[ServiceSpec]:
    """Specs of the local target in start order (the gateway last: it reports the others' health)."""
    specs = [centrifugo(s), seaweedfs(s), supertokens_standin(s)]
    if s.environment.mail is not None:
        specs.append(mailpit(s))
    return [*specs, gateway(s, local_endpoints(s.environment), tuple(spec.name for spec in specs))]
