"""The edge on Cloudflare: the D1 database (with its migrations) and the gateway Worker.

Deploys, per environment:

- ``D1Database`` and its schema: :class:`infra.d1_migrations.D1Migrations` applies
  ``config/migrations/*.sql`` plus the collections' index migrations through the D1 HTTP API;
- ``Worker`` + ``WorkerVersion`` (the modules of :mod:`infra.worker_bundle`, the collections
  among them; bindings: D1 as ``DB``, plain vars, secret text for keys) +
  ``WorkersDeployment`` sending 100 % of traffic to that version;
- a custom domain or a route when configured, and the outbox-drain cron trigger.

``EdgeArgs.database_id`` (stack config ``telestack:d1DatabaseId``, set by ``scripts/ops restore``
on a cloud stack) points the ``DB`` binding and the migrations at a restored D1 instead of the
managed one. The managed ``D1Database`` stays in the stack, data and all: unsetting the key
(``pulumi config rm`` + ``up``) is the rollback.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra.d1_migrations import D1Migrations
from infra.worker_bundle import VERSION_TAG_LIMIT, Bundle, binding

with warnings.catch_warnings():
    # the SDK announces its own deprecated resources (Access*, ...) at import; none is used here
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_cloudflare as cloudflare

ROOT = Path(__file__).resolve().parents[1]


def read_collections(config_dir: Path = ROOT / "config") -> str:
    """The collections' JSON text for the D1 migrations (their indexes): the text the Worker bundle's
    ``telestack_config`` module and the local gateway carry (``config_files.collections_json``)."""
    from worker.adapters.config_files import collections_json

    return collections_json(config_dir)


def read_migrations(config_dir: Path = ROOT / "config") -> list[tuple[str, str]]:
    """``(name, SQL)`` pairs exactly as the local stack and ops name them (recorded in ``_migrations``)."""
    from worker.adapters.config_files import load_migrations

    return load_migrations(config_dir)


# --- the edge component ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeArgs:
    account_id: pulumi.Input[str]
    worker_name: str
    database_name: str
    #: the Worker's modules, ``telestack_config.py`` (built from the same config/) among them
    bundle: Bundle
    #: the collections' JSON, for the index migrations (the Worker reads its copy from the bundle)
    collections_json: str
    migrations: Sequence[tuple[str, str]]
    api_token: pulumi.Input[str]
    #: binding name -> value (plain_text)
    plain_vars: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    #: binding name -> value (secret_text; wrapped as a Pulumi secret here in any case)
    secret_vars: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    zone_id: pulumi.Input[str] | None = None
    custom_domain: str = ""
    route: str = ""
    workers_dev: bool = True
    read_replication: str = "disabled"
    location_hint: str = ""
    outbox_cron: str = ""
    observability: bool = True
    #: a D1 (uuid) restored outside Pulumi to bind instead of the managed database; "" = the managed one
    database_id: str = ""


def worker_bindings(database_id: pulumi.Input[str], args: EdgeArgs) -> list[dict[str, Any]]:
    """The version's bindings in Cloudflare's metadata shape, sorted by name (stable inputs)."""
    out = [binding("DB", "d1", database_id)]
    out += [binding(k, "plain_text", v) for k, v in args.plain_vars.items()]
    out += [binding(k, "secret_text", pulumi.Output.secret(v)) for k, v in args.secret_vars.items()]
    return sorted(out, key=lambda b: b["name"])


def version_tag(bundle: Bundle) -> str:
    """The version's tag: the bundle's content hash, cut to Cloudflare's limit for ``workers/tag``."""
    return bundle.content_hash[:VERSION_TAG_LIMIT]


class Edge(pulumi.ComponentResource):
    """D1 + migrations + the gateway Worker, its deployment, domain/route and cron trigger."""

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("telestack:infra:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The database; read replication and location hint from the environment file.
        self.database = cloudflare.D1Database(
            f"{name}-db", account_id=args.account_id, name=args.database_name,
            read_replication=cloudflare.D1DatabaseReadReplicationArgs(mode=args.read_replication),
            primary_location_hint=args.location_hint or None, opts=child)

        # The database in use: the managed one, or a restored one the stack config names (kept apart, so
        # the managed database is never deleted by a restore and unsetting the key rolls back).
        self.database_id: pulumi.Output[str] = (
            pulumi.Output.from_input(args.database_id) if args.database_id else self.database.id)

        # Its schema, applied before any Worker version can serve traffic.
        self.migrations = D1Migrations(
            f"{name}-migrations", account_id=args.account_id, database_id=self.database_id,
            api_token=args.api_token, migrations=args.migrations, collections_json=args.collections_json,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.database]))

        # The Worker (name, workers.dev subdomain, observability) ...
        self.worker = cloudflare.Worker(
            f"{name}-worker", account_id=args.account_id, name=args.worker_name,
            subdomain=cloudflare.WorkerSubdomainArgs(enabled=args.workers_dev, previews_enabled=False),
            observability=cloudflare.WorkerObservabilityArgs(enabled=args.observability), opts=child)

        # ... one immutable version per content hash of the bundle ...
        bundle = args.bundle
        bindings = worker_bindings(self.database_id, args)
        self.version = cloudflare.WorkerVersion(
            f"{name}-version", account_id=args.account_id, worker_id=self.worker.id,
            main_module=bundle.main_module, compatibility_date=bundle.compatibility_date,
            compatibility_flags=list(bundle.compatibility_flags),
            modules=[cloudflare.WorkerVersionModuleArgs(**m.as_args()) for m in bundle.modules],
            bindings=[cloudflare.WorkerVersionBindingArgs(**b) for b in bindings],
            annotations=cloudflare.WorkerVersionAnnotationsArgs(workers_tag=version_tag(bundle),
                                                                workers_message="telestack deploy"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.migrations]))

        # ... serving all traffic.
        self.deployment = cloudflare.WorkersDeployment(
            f"{name}-deployment", account_id=args.account_id, script_name=self.worker.name,
            strategy="percentage",
            versions=[cloudflare.WorkersDeploymentVersionArgs(percentage=100, version_id=self.version.id)],
            opts=child)
        after_deploy = pulumi.ResourceOptions(parent=self, depends_on=[self.deployment])

        self.domain = None
        if args.custom_domain:
            self.domain = cloudflare.WorkersCustomDomain(
                f"{name}-domain", account_id=args.account_id, hostname=args.custom_domain,
                service=self.worker.name, zone_id=args.zone_id, opts=after_deploy)
        self.route = None
        if args.route:
            self.route = cloudflare.WorkersRoute(
                f"{name}-route", zone_id=args.zone_id, pattern=args.route, script=self.worker.name,
                opts=after_deploy)
        self.cron = None
        if args.outbox_cron:
            # The outbox drain: Default.scheduled in worker/entry.py publishes events a request left behind.
            self.cron = cloudflare.WorkersCronTrigger(
                f"{name}-outbox-drain", account_id=args.account_id, script_name=self.worker.name,
                schedules=[cloudflare.WorkersCronTriggerScheduleArgs(cron=args.outbox_cron)],
                opts=after_deploy)

        self.url = self._url(args)
        self.register_outputs({"url": self.url, "database_id": self.database_id,
                               "version_id": self.version.id})

    def _url(self, args: EdgeArgs) -> pulumi.Output[str]:
        if args.custom_domain:
            return pulumi.Output.from_input(f"https://{args.custom_domain}")
        if args.route:
            return pulumi.Output.from_input("https://" + args.route.lstrip("*.").split("/", 1)[0])
        return self.worker.subdomain.apply(_subdomain_url)


def _subdomain_url(subdomain: Any) -> str:
    url = getattr(subdomain, "url", None) if subdomain is not None else None
    if isinstance(subdomain, Mapping):
        url = subdomain.get("url")
    return str(url or "")  # the provider reports it once the account has a workers.dev subdomain
