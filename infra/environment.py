"""The environment-file schema: one frozen dataclass per section of ``config/environments/<env>.yaml``.

A field's annotation is its type, a field without a default is required, and
``metadata`` carries range checks and formats (checked by :mod:`infra.validator`).
Cloud-only sections are optional fields (``None`` = absent), so adding one never
breaks an existing environment file. Cross-key rules live in
:mod:`infra.environment_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.config_error import StackConfigError

#: field metadata of a TCP port setting (1..65535)
PORT: dict[str, Any] = {"format": "port"}


@dataclass(frozen=True)
class GatewaySettings:
    """The gateway (ASGI server locally, the Worker in the cloud)."""

    port: int = field(default=8787, metadata=PORT)
    #: outbox events published per request after its own write
    outbox_drain_per_request: int = field(default=20, metadata={"min": 0, "max": 1000})
    #: public URL when served behind a domain (cloud); empty = http://<bind_host>:<port>
    public_url: str = field(default="", metadata={"format": "url"})


@dataclass(frozen=True)
class RealtimeSettings:
    """Centrifugo v6."""

    port: int = field(default=8000, metadata=PORT)
    #: public WebSocket URL (cloud); empty = ws://<bind_host>:<port>/connection/websocket
    public_ws_url: str = field(default="", metadata={"format": "url"})


@dataclass(frozen=True)
class SeaweedPorts:
    """Every port `weed mini` opens (gRPC ports explicit: the default is http+10000)."""

    master: int = field(default=9333, metadata=PORT)
    master_grpc: int = field(default=19333, metadata=PORT)
    volume: int = field(default=8080, metadata=PORT)
    volume_grpc: int = field(default=18080, metadata=PORT)
    filer: int = field(default=8888, metadata=PORT)
    filer_grpc: int = field(default=18888, metadata=PORT)
    s3_grpc: int = field(default=18333, metadata=PORT)
    webdav: int = field(default=7333, metadata=PORT)
    admin: int = field(default=23646, metadata=PORT)
    admin_grpc: int = field(default=24646, metadata=PORT)  # weed: 33646, an ephemeral port


@dataclass(frozen=True)
class StorageSettings:
    """S3 object storage: SeaweedFS locally; SeaweedFS, MinIO or an external endpoint in the cloud."""

    bucket: str = field(default="telestack", metadata={"format": "bucket"})
    region: str = "us-east-1"
    port: int = field(default=8333, metadata=PORT)
    kind: Literal["seaweedfs", "minio", "external"] = "seaweedfs"
    #: external S3 endpoint (kind=external), e.g. https://<account>.r2.cloudflarestorage.com
    endpoint: str = field(default="", metadata={"format": "url"})
    #: URL clients use for presigned requests; empty = the endpoint
    public_endpoint: str = field(default="", metadata={"format": "url"})
    seaweedfs: SeaweedPorts = field(default_factory=SeaweedPorts)
    #: lifetime of presigned URLs, s (gateway STORAGE_URL_TTL; S3 caps X-Amz-Expires at 7 days);
    #: None = the gateway's default
    url_ttl: int | None = field(default=None, metadata={"min": 1, "max": 7 * 24 * 3600})
    #: largest upload the gateway signs, bytes (gateway STORAGE_MAX_UPLOAD_BYTES; S3's single PUT
    #: limit is 5 GiB); None = the gateway's default
    max_upload_bytes: int | None = field(default=None, metadata={"min": 1, "max": 5 * 1024**3})


@dataclass(frozen=True)
class AuthSettings:
    """SuperTokens Core (the CDI stand-in locally)."""

    port: int = field(default=3567, metadata=PORT)
    #: public URL of SuperTokens Core (cloud: the Worker calls it); empty = http://<bind_host>:<port>
    public_url: str = field(default="", metadata={"format": "url"})
    #: access-token lifetime the gateway asks of the core, s (gateway AUTH_ACCESS_TOKEN_VALIDITY;
    #: the core's own bound is 1..86400000); None = the gateway's default
    access_token_validity: int | None = field(default=None, metadata={"min": 1, "max": 86_400_000})
    #: required ``iss`` claim (gateway AUTH_ISSUER); empty = SuperTokens session tokens, which carry none
    issuer: str = field(default="", metadata={"format": "issuer"})


@dataclass(frozen=True)
class SmtpProviderSettings:
    """The environment's SMTP provider: a cloud stack's mail relay hands it every message (cloud only).

    Its credentials are not here: they are the stack secrets ``telestack:smtpUsername`` and
    ``telestack:smtpPassword`` (required unless ``auth`` is ``none``).
    """

    host: str = field(metadata={"format": "smtp_host"})
    port: int = field(default=587, metadata=PORT)
    #: ``starttls`` (upgrade after connecting, port 587) or ``tls`` (implicit TLS, port 465): the
    #: credentials and every reset link cross the internet, so there is no clear-text mode
    security: Literal["starttls", "tls"] = "starttls"
    #: SMTP AUTH mechanism the relay uses with the credentials (``none``: the provider trusts the address)
    auth: Literal["plain", "login", "none"] = "plain"


@dataclass(frozen=True)
class MailSettings:
    """Verification and reset mail.

    Local target: Mailpit, supervised like the other services; the gateway sends to it over SMTP and
    every mail shows in its web UI. Cloud target: the Worker has no SMTP client, so it posts each
    message to the stack's mail relay (a Mailpit container, infra/mail_relay.py) over HTTP, which
    relays it to ``provider`` (docs/runbooks.md "Configure SMTP").
    """

    #: the app page mailed links open, with ``?action=...&token=...`` (gateway AUTH_ACTION_URL)
    action_url: str = field(metadata={"format": "url"})
    #: the From header of the gateway's mail (gateway SMTP_FROM)
    from_address: str = field(default="TelestackDB <no-reply@localhost>", metadata={"format": "sender"})
    #: Mailpit's SMTP port (local: the gateway sends there; cloud: the relay's, bound to its container's
    #: loopback only) and its web UI / HTTP API port (cloud: the relay's send API, published)
    smtp_port: int = field(default=1025, metadata=PORT)
    ui_port: int = field(default=8025, metadata=PORT)
    #: cloud: the relay's public URL (the Worker posts to ``<it>/api/v1/send``; gateway MAIL_RELAY_URL)
    public_url: str = field(default="", metadata={"format": "url"})
    #: cloud: the SMTP provider the relay hands each message to; refused on the local target
    provider: SmtpProviderSettings | None = None


@dataclass(frozen=True)
class OAuthProviderSettings:
    """One identity provider (gateway OAUTH_PROVIDERS; the rules are worker/oidc_providers.py's).

    A provider named ``google`` or ``github`` takes that preset unless ``preset`` says otherwise; any
    other name is a generic OpenID Connect provider found by its ``issuer``. The client secret is not
    here: it is the stack secret ``telestack:oauthClientSecrets`` (JSON ``{name: secret}``).
    """

    client_id: str
    preset: Literal["", "google", "github"] = ""
    kind: Literal["", "oidc", "github"] = ""
    #: OpenID Connect: the exact issuer; its discovery document gives the endpoints and keys
    issuer: str = field(default="", metadata={"format": "url"})
    #: empty = the preset's, or ["openid", "email"]
    scopes: tuple[str, ...] = ()
    token_auth: Literal["", "client_secret_basic", "client_secret_post"] = ""
    #: GitHub-shaped providers only (the preset fills them in for github.com)
    authorization_url: str = field(default="", metadata={"format": "url"})
    token_url: str = field(default="", metadata={"format": "url"})
    api_base_url: str = field(default="", metadata={"format": "url"})


@dataclass(frozen=True)
class OAuthSettings:
    """Sign-in through identity providers (``/v1/auth/oauth/...``, docs/api.md)."""

    #: the app pages a sign-in may return to, matched exactly (gateway OAUTH_REDIRECT_URIS)
    redirect_uris: tuple[str, ...] = ()
    providers: dict[str, OAuthProviderSettings] = field(default_factory=dict)


# --- cloud environments (target docker) ---------------------------------------------------------


@dataclass(frozen=True)
class ImageSettings:
    """A container image pinned by tag and, when set, by digest (``repository:tag@sha256:...``)."""

    repository: str
    tag: str
    digest: str = field(default="", metadata={"format": "digest"})

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class ContainerSettings:
    """One containerised service: its image, how many replicas, and its resource limits."""

    image: ImageSettings
    replicas: int = field(default=1, metadata={"min": 1, "max": 64})
    cpus: float = field(default=1.0, metadata={"min": 0.1, "max": 64})
    memory_mb: int = field(default=512, metadata={"min": 32, "max": 262144})


@dataclass(frozen=True)
class PostgresSettings(ContainerSettings):
    """SuperTokens Core's PostgreSQL container, optionally reachable from the docker host itself."""

    #: publish 5432 on the docker host's 127.0.0.1 at this port (never on publish_ip), so scripts/ops
    #: backup/restore reach the auth store (from the host, or through an SSH tunnel); the stack then
    #: outputs the secret ``auth_db_url``. None = PostgreSQL stays on the private network only.
    host_port: int | None = field(default=None, metadata=PORT)


@dataclass(frozen=True)
class DockerSettings:
    """The Docker host's containers (DOCKER_HOST picks the host; it is not a setting)."""

    centrifugo: ContainerSettings
    supertokens: ContainerSettings
    postgres: PostgresSettings
    #: Centrifugo's Redis engine: required when centrifugo.replicas > 1, refused otherwise
    redis: ContainerSettings | None = None
    #: the S3 server's image (MinIO or SeaweedFS by storage.kind); absent when storage.kind = external
    storage: ContainerSettings | None = None
    #: the mail relay's image (Mailpit): required with ``mail``, refused without it
    mailpit: ContainerSettings | None = None
    #: host address published ports bind (0.0.0.0, or 127.0.0.1 behind a reverse proxy on the host)
    publish_ip: str = field(default="0.0.0.0", metadata={"format": "host"})  # noqa: S104
    restart: Literal["unless-stopped", "always", "on-failure"] = "unless-stopped"


@dataclass(frozen=True)
class CloudflareSettings:
    """The edge: D1 database and gateway Worker. Ids are referenced by stack-config key, never inlined."""

    worker_name: str = field(metadata={"format": "worker"})
    database_name: str = field(metadata={"format": "worker"})
    #: stack config key (namespace telestack) holding the account id
    account_id_config: str = "cloudflareAccountId"
    #: stack config key holding the zone id; required with a route or custom domain
    zone_id_config: str = ""
    #: serve the gateway on this hostname (a Workers custom domain in the zone)
    custom_domain: str = field(default="", metadata={"format": "domain"})
    #: or on a route pattern in the zone, e.g. example.com/api/*
    route: str = field(default="", metadata={"format": "route"})
    #: also serve on <worker>.<account subdomain>.workers.dev
    workers_dev: bool = True
    d1_read_replication: Literal["disabled", "auto"] = "disabled"
    d1_location_hint: Literal["", "wnam", "enam", "weur", "eeur", "apac", "oc"] = ""
    #: cron schedule of the outbox drain (a safety net; requests drain too); empty = none
    outbox_cron: str = field(default="*/5 * * * *", metadata={"format": "cron"})
    #: Workers Logs / traces for the gateway
    observability: bool = True


@dataclass(frozen=True)
class Environment:
    """One environment file, validated."""

    #: which renderer realises the service specs: local processes or Docker containers
    target: Literal["local", "docker"]
    #: browser origins (``scheme://host[:port]``) allowed to call the gateway, open Centrifugo's WebSocket
    #: and use presigned storage URLs: the one list behind all three (checked by
    #: :func:`infra.environment_rules.check_origins`); empty = no browser app
    allowed_origins: tuple[str, ...] = ()
    #: address every local service binds (loopback only on shared machines)
    bind_host: str = field(default="127.0.0.1", metadata={"format": "host"})
    #: seconds a service may take to answer its health check after start
    start_timeout: int = field(default=60, metadata={"min": 1, "max": 900})
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: verification and reset mail (local Mailpit, or the cloud relay to a provider); None = no mail
    mail: MailSettings | None = None
    #: cloud stacks only (target docker): the edge on Cloudflare and the containers
    cloudflare: CloudflareSettings | None = None
    docker: DockerSettings | None = None
    #: sign-in through identity providers; None = email/password only
    oauth: OAuthSettings | None = None


#: Keys older environment files may still set -> where their meaning went. Each had a second,
#: conflicting source or no effect at all, so it is refused with this pointer, not ignored.
REMOVED_KEYS: dict[str, str] = {
    "domain": "it was never used; the public names are cloudflare.custom_domain (or cloudflare.route), "
              "realtime.public_ws_url, storage.public_endpoint and auth.public_url",
    "realtime.replicas": "set docker.centrifugo.replicas (only docker targets run Centrifugo as containers)",
    "realtime.allowed_origins": "set allowed_origins (top level): one list feeds the gateway's CORS, "
                                "Centrifugo's allowed origins and the bucket CORS rules",
    "realtime.version": "the version is the image: set docker.centrifugo.image.tag (docker targets); "
                        "the local stack runs the Centrifugo scripts/toolchain.sh builds",
}


def refuse_removed_keys(data: Any) -> None:
    """Raise on the first :data:`REMOVED_KEYS` entry ``data`` (a parsed environment file) still sets."""
    for key, hint in REMOVED_KEYS.items():
        section: Any = data
        *parents, leaf = key.split(".")
        for part in parents:
            section = section.get(part) if isinstance(section, Mapping) else None
        if isinstance(section, Mapping) and leaf in section:
            raise StackConfigError(f"{key}: no longer a setting: {hint}")
