"""Cross-key rules of an environment, per target: what a single key's type and range cannot say.

:func:`check_local` (target local) and :func:`check_cloud` (target docker) run
after :func:`infra.validator.build` has checked each key on its own; errors name
the key to change.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from infra.config_error import StackConfigError
from infra.environment import Environment, SeaweedPorts


def local_ports(env: Environment) -> dict[int, str]:
    """Port -> setting key for every port the local target binds; duplicates are an error."""
    seen: dict[int, str] = {}
    pairs = [("gateway.port", env.gateway.port), ("realtime.port", env.realtime.port),
             ("storage.port", env.storage.port), ("auth.port", env.auth.port)]
    pairs += [(f"storage.seaweedfs.{f.name}", getattr(env.storage.seaweedfs, f.name))
              for f in dataclasses.fields(SeaweedPorts)]
    if env.mail is not None:
        pairs += [("mail.smtp_port", env.mail.smtp_port), ("mail.ui_port", env.mail.ui_port)]
    for key, port in pairs:
        if port in seen:
            raise StackConfigError(f"{key}: port {port} is already used by {seen[port]}")
        seen[port] = key
    return seen


#: a browser origin as the ``Origin`` header carries it: lower-case scheme and host, a port only when
#: given, nothing after it (a path or a trailing slash never matches any request's Origin)
_ORIGIN = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
                     r"|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
#: the wildcard origin: every site
ANY_ORIGIN = "*"


def check_origins(env: Environment, *, wildcard: bool) -> None:
    """``allowed_origins``: each an origin (``scheme://host[:port]``) listed once; ``*`` only if ``wildcard``.

    Three servers match these against the browser's ``Origin`` header (the gateway, Centrifugo, the S3
    server), so anything that could never equal an ``Origin`` is refused here rather than silently unused.
    """
    seen: set[str] = set()
    for i, origin in enumerate(env.allowed_origins):
        key = f"allowed_origins[{i}]"
        if origin == ANY_ORIGIN:
            if not wildcard:
                raise StackConfigError(f"{key}: '*' (every site) is refused on a cloud target: its users' "
                                       "tokens are real; list the app's origins")
            if len(env.allowed_origins) > 1:
                raise StackConfigError(f"{key}: '*' already allows every origin; list nothing else with it")
        else:
            m = _ORIGIN.fullmatch(origin)
            if m is None:
                raise StackConfigError(f"{key}: {origin!r} is not an origin: scheme://host[:port] in lower "
                                       "case, http or https, no path and no trailing slash")
            if m.group("port") is not None and not 1 <= int(m.group("port")) <= 65535:
                raise StackConfigError(f"{key}: {origin!r}: port out of range 1..65535")
        if origin in seen:
            raise StackConfigError(f"{key}: {origin!r} is listed twice")
        seen.add(origin)


def check_local(env: Environment) -> None:
    """Cross-key rules of a local environment: every port distinct, every service on a loopback address,
    ``allowed_origins`` well-formed (``*`` allowed: only this machine's pages reach a loopback stack)."""
    local_ports(env)
    check_origins(env, wildcard=True)
    check_oauth(env, cloud=False)
    if env.mail is not None:
        for key in ("provider", "public_url"):
            if getattr(env.mail, key):
                raise StackConfigError(f"mail.{key}: cloud targets only (the local gateway sends to its own "
                                       "Mailpit, whose web UI shows every mail); remove it")
    if not ipaddress.ip_address(env.bind_host).is_loopback:
        raise StackConfigError(f"bind_host: {env.bind_host} is not a loopback address (local target)")


#: docker sections that run as exactly one container -> why (``replicas > 1`` is refused, not ignored).
#: Only ``centrifugo`` (Redis engine) and ``supertokens`` (stateless, one PostgreSQL) scale by replicas.
SINGLE_CONTAINER: dict[str, str] = {
    "postgres": "PostgreSQL runs as one container (scale it as a managed instance or primary + "
                "standby; docs/cloud.md)",
    "redis": "Centrifugo's Redis engine runs as one container (use Redis Cluster/Sentinel outside the "
             "stack to grow; docs/cloud.md)",
    "storage": "the S3 server runs as one node (distributed MinIO/SeaweedFS or an external S3 to grow; "
               "docs/cloud.md)",
    "mailpit": "the mail relay runs as one container (the Worker posts to one URL; it keeps no queue)",
}
#: the Centrifugo major version whose config format infra/centrifugo_config.py writes
CENTRIFUGO_MAJOR = "6"


#: image repositories a pull no longer reaches -> where the same images are served. MinIO removed
#: minio/minio and minio/mc from Docker Hub in September 2026; quay.io serves the same releases.
UNSERVED_REPOSITORIES = {
    "minio/minio": "quay.io/minio/minio",
    "docker.io/minio/minio": "quay.io/minio/minio",
    "minio/mc": "quay.io/minio/mc",
    "docker.io/minio/mc": "quay.io/minio/mc",
}


def check_cloud(env: Environment) -> None:
    """Cross-key rules of a cloud environment (target docker); errors name the key."""
    if env.cloudflare is None:
        raise StackConfigError("cloudflare: required key is missing (target docker deploys the edge)")
    if env.docker is None:
        raise StackConfigError("docker: required key is missing (target docker)")
    cf, docker = env.cloudflare, env.docker
    check_origins(env, wildcard=False)
    check_cloud_mail(env)
    check_oauth(env, cloud=True)
    if (cf.route or cf.custom_domain) and not cf.zone_id_config:
        raise StackConfigError("cloudflare.zone_id_config: required with a route or custom_domain")
    if not (cf.route or cf.custom_domain or cf.workers_dev):
        raise StackConfigError("cloudflare.workers_dev: the gateway needs a custom_domain, route or "
                               "workers.dev")
    if env.storage.kind == "external":
        if not env.storage.endpoint:
            raise StackConfigError("storage.endpoint: required when storage.kind is external")
        if docker.storage is not None:
            raise StackConfigError("docker.storage: must be absent when storage.kind is external")
    elif docker.storage is None:
        raise StackConfigError(f"docker.storage: required key is missing (storage.kind is "
                               f"{env.storage.kind})")
    if not (env.storage.public_endpoint or env.storage.endpoint):
        raise StackConfigError("storage.public_endpoint: required key is missing (clients, Worker use it)")
    for name in SINGLE_CONTAINER:
        container = getattr(docker, name)
        if container is not None and container.replicas > 1:
            raise StackConfigError(f"docker.{name}.replicas: {container.replicas}: {SINGLE_CONTAINER[name]}")
    if docker.centrifugo.replicas > 1 and docker.redis is None:
        raise StackConfigError("docker.redis: required when docker.centrifugo.replicas > 1 "
                            "(Centrifugo's Redis engine)")
    if docker.centrifugo.replicas == 1 and docker.redis is not None:
        raise StackConfigError("docker.redis: only used when docker.centrifugo.replicas > 1; remove it")
    for name in ("centrifugo", "redis", "storage", "supertokens", "postgres", "mailpit"):
        container = getattr(docker, name)
        moved = container and UNSERVED_REPOSITORIES.get(container.image.repository)
        if moved:
            raise StackConfigError(f"docker.{name}.image.repository: {container.image.repository} is no "
                                   f"longer served (a pull fails); use {moved}")
    tag = docker.centrifugo.image.tag
    major = re.match(r"v?(\d+)(?:[.-]|$)", tag)
    if major and major.group(1) != CENTRIFUGO_MAJOR:
        raise StackConfigError(f"docker.centrifugo.image.tag: {tag!r} is not Centrifugo v{CENTRIFUGO_MAJOR} "
                            f"(infra/centrifugo_config.py writes v{CENTRIFUGO_MAJOR}'s config format)")
    if docker.postgres.host_port is not None:  # the host also binds every published port (publish_ip)
        published = {env.realtime.port + i: "realtime.port" for i in range(docker.centrifugo.replicas)}
        published |= {env.auth.port + i: "auth.port" for i in range(docker.supertokens.replicas)}
        if env.storage.kind != "external":
            published[env.storage.port] = "storage.port"
        if env.mail is not None:
            published[env.mail.ui_port] = "mail.ui_port"
        if docker.postgres.host_port in published:
            raise StackConfigError(f"docker.postgres.host_port: port {docker.postgres.host_port} is already "
                                f"published by {published[docker.postgres.host_port]}")
    for key, value in (("realtime.public_ws_url", env.realtime.public_ws_url),
                       ("auth.public_url", env.auth.public_url)):
        if not value:
            raise StackConfigError(f"{key}: required key is missing (the Worker and clients reach it there)")


def check_cloud_mail(env: Environment) -> None:
    """``mail`` on a cloud target: the relay's image, public URL and SMTP provider, all or nothing.

    The Worker cannot speak SMTP, so mail goes through the stack's relay (infra/mail_relay.py);
    without ``mail`` the stack sends none and ``docker.mailpit`` would run for nothing.
    """
    assert env.docker is not None
    mail = env.mail
    if mail is None:
        if env.docker.mailpit is not None:
            raise StackConfigError("docker.mailpit: only used with mail (the relay of verification and "
                                   "reset mail); remove it or add a mail section")
        return
    if env.docker.mailpit is None:
        raise StackConfigError("docker.mailpit: required key is missing (with mail, a cloud stack runs "
                               "Mailpit as its mail relay: the Worker has no SMTP client)")
    if mail.provider is None:
        raise StackConfigError("mail.provider: required key is missing (the SMTP provider the relay hands "
                               "every message to: host, port, security, auth)")
    if not mail.public_url:
        raise StackConfigError("mail.public_url: required key is missing (the Worker posts mail to the "
                               "relay's send API there)")
    if mail.public_url.startswith("http://"):
        raise StackConfigError(f"mail.public_url: {mail.public_url!r}: use https (the Worker sends the "
                               "relay key and reset links there)")
    if mail.from_address.rstrip(">").endswith("@localhost"):
        raise StackConfigError(f"mail.from_address: {mail.from_address!r}: a provider refuses a localhost "
                               "sender; use an address of a domain the provider sends for")
    if mail.smtp_port == mail.ui_port:
        raise StackConfigError(f"mail.smtp_port: port {mail.smtp_port} is already used by mail.ui_port")
    published = {env.realtime.port + i: "realtime.port" for i in range(env.docker.centrifugo.replicas)}
    published |= {env.auth.port + i: "auth.port" for i in range(env.docker.supertokens.replicas)}
    if env.storage.kind != "external":
        published[env.storage.port] = "storage.port"
    if mail.ui_port in published:  # both are published on the docker host's publish_ip
        raise StackConfigError(f"mail.ui_port: port {mail.ui_port} is already published by "
                               f"{published[mail.ui_port]}")


#: an app redirect URI: absolute, any scheme (native apps register their own), no fragment (RFC 6749
#: section 3.1.2) and no comma (the binding is comma-separated)
_REDIRECT_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^\s#,]+")
_LOOPBACK_HTTP = re.compile(r"http://(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?(?:/.*)?")


def oauth_provider_entries(env: Environment) -> dict[str, dict[str, object]]:
    """``oauth.providers`` as the gateway's OAUTH_PROVIDERS reads it: only the keys the file sets."""
    if env.oauth is None:
        return {}
    out: dict[str, dict[str, object]] = {}
    for name, provider in env.oauth.providers.items():
        entry = {f.name: getattr(provider, f.name) for f in dataclasses.fields(provider)}
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in entry.items() if v not in ("", ())}
    return out


def check_oauth(env: Environment, *, cloud: bool) -> None:
    """``oauth``: providers valid by the gateway's own rules, redirect URIs exact and safe, a public callback.

    The provider rules are the gateway's (:func:`worker.oidc_providers.parse_providers`), run here with
    placeholder secrets so a mistake fails ``pulumi up`` instead of the first sign-in.
    """
    if env.oauth is None:
        return
    from worker import jsoncodec
    from worker.oidc_providers import ProviderConfigError, parse_providers

    entries = oauth_provider_entries(env)
    try:
        parse_providers(jsoncodec.dumps(entries), jsoncodec.dumps({name: "x" for name in entries}))
    except ProviderConfigError as exc:
        raise StackConfigError(str(exc).replace("OAUTH_PROVIDERS.", "oauth.providers.")) from None
    seen: set[str] = set()
    for i, uri in enumerate(env.oauth.redirect_uris):
        key = f"oauth.redirect_uris[{i}]"
        if not _REDIRECT_URI.fullmatch(uri):
            raise StackConfigError(f"{key}: {uri!r} is not an absolute URI without fragment or comma")
        if cloud and uri.startswith("http://") and not _LOOPBACK_HTTP.fullmatch(uri):
            raise StackConfigError(f"{key}: {uri!r}: plain http is only for loopback apps on a cloud target; "
                                   "the one-time code would travel unencrypted")
        if uri in seen:
            raise StackConfigError(f"{key}: {uri!r} is listed twice")
        seen.add(uri)
    if entries and not env.oauth.redirect_uris:
        raise StackConfigError("oauth.redirect_uris: required with providers (where a sign-in returns to)")
    public = env.gateway.public_url or (env.cloudflare.custom_domain if env.cloudflare else "")
    if cloud and entries and not public:
        raise StackConfigError("gateway.public_url: required with oauth.providers (each provider redirects "
                               "to <gateway.public_url>/v1/auth/oauth/<name>/callback)")
