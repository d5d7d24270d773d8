"""The cloud program under recording Pulumi mocks: what it registered and exported, for tests to assert on.

:func:`run_stack` runs :func:`infra.cloud_stack.deploy` (what infra/__main__.py calls for target
``docker``) for a shipped environment with fixed fake secrets (:data:`SECRETS`, none of which may ever
appear outside a Pulumi secret); the rest reads a registration the way the assertions need it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

from infra import cloud_stack
from infra.environment import Environment
from infra.secret_keys import (
    CLOUD_SECRET_KEYS,
    MAIL_SECRET_KEYS,
    MINIO_SECRET_KEYS,
    PREVIOUS_SECRET_KEYS,
    SECRET_KEYS,
    SMTP_SECRET_KEYS,
)
from infra.settings import ROOT, Secrets, StackSettings, load_environment, stack_secrets

ENVIRONMENTS = ("dev", "staging", "prod")
#: a shipped environment with cloud mail added (tests/support/environment_files.py CLOUD_MAIL): the
#: variant the generic cloud-stack tests run too, so the mail relay meets every one of their rules
MAIL_VARIANT = "dev+mail"
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
ZONE_ID = "fedcba9876543210fedcba9876543210"
#: every secret value the program receives; none may ever show up outside a Pulumi secret
SECRETS = {
    key: f"SECRET-{key}-do-not-leak"
    for key in (*SECRET_KEYS, *CLOUD_SECRET_KEYS, *MINIO_SECRET_KEYS, *MAIL_SECRET_KEYS, *SMTP_SECRET_KEYS)
}
API_TOKEN = "SECRET-cloudflare-api-token-do-not-leak"
#: a rotation's overlap window (scripts/ops rotate-secrets): Secrets field -> the value being rotated out
PREVIOUS = {
    field: f"SECRET-{key}-do-not-leak" for key, field in PREVIOUS_SECRET_KEYS.items()
}
UNTIL = {
    "admin_key_previous_valid_until": 1767225600,
    "centrifugo_token_secret_previous_valid_until": 1767229200,
}


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""

    def __str__(self) -> str:
        return self.urn


@dataclass
class Recorder(pulumi.runtime.Mocks):
    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        urn = f"urn:pulumi:{pulumi.get_stack()}::telestack::{args.typ}::{args.name}"
        self.resources.append(Registered(args.typ, args.name, args.inputs, urn))
        outputs = dict(args.inputs)
        if args.typ == "cloudflare:index/worker:Worker":
            outputs["subdomain"] = {"enabled": True, "url": f"https://{args.inputs['name']}.team.workers.dev"}
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = f"sha256:{args.name}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}

    def of_type(self, suffix: str) -> list[Registered]:
        return [r for r in self.resources if r.typ.endswith(suffix)]

    def one(self, suffix: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(suffix) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {suffix} {name or ''}, got {[r.name for r in found]}"
        return found[0]


@dataclass
class Stack:
    recorder: Recorder
    outputs: dict[str, Any]
    environment: Environment


def fake_secrets(rotating: bool = False) -> Secrets:
    """:data:`SECRETS` as Pulumi secrets; ``rotating``: with a rotation window's :data:`PREVIOUS` values."""
    window: dict[str, Any] = {}
    if rotating:
        window = {field: pulumi.Output.secret(value) for field, value in PREVIOUS.items()} | UNTIL
    # the mail relay key too: only an environment with mail uses it (as load() reads it only when set)
    read = (*SECRET_KEYS, *MAIL_SECRET_KEYS)
    return dataclasses.replace(stack_secrets({k: pulumi.Output.secret(SECRETS[k]) for k in read}), **window)


def cloud_stack_settings(env_name: str, environment: Environment, rotating: bool = False) -> StackSettings:
    secrets = fake_secrets(rotating)
    return StackSettings(
        stack=env_name,
        env_name=env_name,
        env_file=ROOT / f"config/environments/{env_name}.yaml",
        environment=environment,
        secrets=secrets,
        root=ROOT,
        state_dir=ROOT / ".telestack",
    )


def run_stack(
    env_name: str,
    change: Callable[[Environment], Environment] | None = None,
    *,
    rotating: bool = False,
    config: dict[str, str] | None = None,
) -> Stack:
    """Run the cloud program for an environment under mocks; returns what it registered and exported.

    ``rotating``: secrets in a rotation's overlap window; ``config``: stack-config overrides.
    """
    _, environment = load_environment(env_name)
    if change:
        environment = change(environment)
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="telestack", stack=env_name, preview=False)
    pulumi.runtime.set_all_config(
        {
            "telestack:cloudflareAccountId": ACCOUNT_ID,
            "telestack:cloudflareZoneId": ZONE_ID,
            "cloudflare:apiToken": API_TOKEN,
            "telestack:postgresPassword": SECRETS["postgresPassword"],
            **{f"telestack:{k}": SECRETS[k] for k in MINIO_SECRET_KEYS},  # storage.kind minio
            # mail (the relay's key, the SMTP provider's login)
            **{f"telestack:{k}": SECRETS[k] for k in (*MAIL_SECRET_KEYS, *SMTP_SECRET_KEYS)},
        }
        | (config or {}),
        ["cloudflare:apiToken", "telestack:postgresPassword",
         *(f"telestack:{k}" for k in (*MINIO_SECRET_KEYS, *MAIL_SECRET_KEYS, *SMTP_SECRET_KEYS))],
    )
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        outputs = cloud_stack.deploy(cloud_stack_settings(env_name, environment, rotating))
        names = list(outputs)
        return pulumi.Output.all(*[pulumi.Output.from_input(outputs[n]) for n in names]).apply(
            lambda values: resolved.update(zip(names, values, strict=True))
        )

    program()
    return Stack(recorder, resolved, environment)


def with_mail(environment: Environment) -> Environment:
    """The dev environment with :data:`~tests.support.environment_files.CLOUD_MAIL` (its file, re-read)."""
    import yaml

    from infra.settings import parse_environment
    from tests.support.environment_files import environment_doc, with_cloud_mail

    assert environment.cloudflare and environment.cloudflare.worker_name.endswith("dev")
    return parse_environment(yaml.safe_dump(with_cloud_mail(environment_doc("dev"))), "dev.yaml")


def run_variant(name: str, *, rotating: bool = False) -> Stack:
    """:func:`run_stack` for a shipped environment's name or :data:`MAIL_VARIANT`."""
    if name == MAIL_VARIANT:
        return run_stack("dev", with_mail, rotating=rotating)
    return run_stack(name, rotating=rotating)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def walk_plain(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string reachable from ``value`` that is NOT inside a Pulumi secret wrapper."""
    if isinstance(value, dict):
        if is_secret(value):
            return
        for k, v in value.items():
            yield from walk_plain(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from walk_plain(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if is_secret(value):
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def containers(stack: Stack) -> dict[str, Registered]:
    """Container name -> its registration (messages print the URN)."""
    return {r.inputs["name"]: r for r in stack.recorder.of_type("docker:index/container:Container")}


def worker_bindings(stack: Stack) -> dict[str, dict[str, Any]]:
    version = stack.recorder.one("workerVersion:WorkerVersion")
    return {b["name"]: b for b in unwrap(version.inputs["bindings"])}


def container_env(container: Registered) -> dict[str, str]:
    """A container's env entries as a mapping (values unwrapped from Pulumi secrets)."""
    return dict(entry.split("=", 1) for entry in unwrap(container.inputs["envs"]))


def of_service(stack: Stack, service: str) -> list[Registered]:
    return [c for name, c in containers(stack).items() if name.split("-", 2)[2].startswith(service)]


def declared_defaults() -> dict[str, str]:
    """What `pulumi` passes for every declared key the stack does not set: its default, as text."""
    import yaml

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return {k: str(v["default"]) for k, v in project["config"].items() if "default" in v}
