"""The cloud stack (target docker): its containers on a Docker host, and the edge on Cloudflare.

:func:`deploy` renders :func:`infra.cloud_services.cloud_specs` as containers
(:mod:`infra.render_docker`), then D1 and the gateway Worker (:class:`infra.edge.Edge`)
with the gateway's bindings (:mod:`infra.gateway_bindings`), and returns the
stack outputs under the same names as the local stack's.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pulumi

from infra import cloud_bucket_rules, edge
from infra.cloud_services import AUTH_DB_HOST_IP, cloud_specs, container_settings
from infra.endpoints import cloud_endpoints
from infra.gateway_bindings import gateway_bindings
from infra.render_docker import render_services
from infra.settings import CloudRefs, StackSettings, load_cloud_refs
from infra.worker_bundle import build_bundle


def deploy(s: StackSettings) -> dict[str, Any]:
    """A cloud stack (target docker): the containers, then D1 and the gateway Worker; returns the outputs."""
    env = s.environment
    assert env.cloudflare
    refs = s.cloud or load_cloud_refs(env, str(s.env_file))
    assert env.docker
    specs = cloud_specs(s, refs)
    limits = {spec.name: container_settings(s, spec.name) for spec in specs}
    services_by_name = render_services(specs, limits, prefix=f"telestack-{s.env_name}",
                                       publish_ip=env.docker.publish_ip, restart=env.docker.restart)
    cf = env.cloudflare
    endpoints = cloud_endpoints(env)
    public = endpoints.client_outputs(env)
    config_dir = s.root / "config"
    bindings = gateway_bindings(env, s.secrets, endpoints)
    gateway = edge.Edge("edge", edge.EdgeArgs(
        account_id=refs.account_id, zone_id=refs.zone_id, api_token=refs.api_token,
        worker_name=cf.worker_name, database_name=cf.database_name,
        bundle=build_bundle(config_dir=config_dir), collections_json=edge.read_collections(config_dir),
        migrations=edge.read_migrations(config_dir),
        plain_vars=bindings.plain,
        secret_vars=bindings.secret,
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
        **mail_outputs(s),
        **cloud_bucket_rules.deploy(s, refs, endpoints, services_by_name),
    }


def mail_outputs(s: StackSettings) -> dict[str, Any]:
    """With mail: the relay's URL (the local stack's output name: where a stack's mail can be read) and its
    key, a Pulumi secret (the smoke suite reads the relay's stored copy of its own mail with it)."""
    mail = s.environment.mail
    if mail is None:
        return {}
    return {"mail_ui_url": mail.public_url, "mail_relay_key": pulumi.Output.secret(s.secrets.mail_relay_key)}


def auth_db_url(password: str, host_port: int, database: str) -> str:
    return (f"postgresql://supertokens:{urllib.parse.quote(password, safe='')}@{AUTH_DB_HOST_IP}:{host_port}/"
            f"{database}")


def auth_db_output(s: StackSettings, refs: CloudRefs) -> dict[str, Any]:
    """``auth_db_url`` (a Pulumi secret: it holds the password) when PostgreSQL is published on the host;
    it names the database SuperTokens uses now, so the next backup dumps what is live."""
    assert s.environment.docker
    host_port = s.environment.docker.postgres.host_port
    if host_port is None:
        return {}
    url = pulumi.Output.from_input(refs.postgres_password).apply(
        lambda pw: auth_db_url(pw, host_port, refs.auth_database_name))
    return {"auth_db_url": pulumi.Output.secret(url)}
