"""One ``allowed_origins`` list per environment: validated by key, and what the gateway, Centrifugo and the
bucket get from it agree, for every shipped environment, read from the artifacts the stack deploys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import cloud_bucket_rules, local_stack, render_local, services, storage_rules
from infra.config_error import StackConfigError
from infra.endpoints import local_endpoints
from infra.settings import ROOT, load_environment, parse_environment
from tests.support.cloud_stack import (
    ENVIRONMENTS,
    container_env,
    of_service,
    run_stack,
    unwrap,
    worker_bindings,
)
from tests.support.environment_files import environment_doc, refused
from tests.support.stack_settings import stack_settings
from worker import settings as gateway_settings

ALL = ["local", *ENVIRONMENTS]


def test_every_environment_is_checked() -> None:
    shipped = {p.stem for p in (ROOT / "config/environments").glob("*.yaml")}
    assert shipped == set(ALL)
    for name in ALL:
        assert load_environment(name)[1].allowed_origins, f"{name}: a browser app needs an origin"


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [
    "http://localhost:3000/", "http://localhost:3000/app", "https://App.example.com", "ftp://example.com",
    "localhost:3000", "http://localhost:99999", "null", "https://example.com?x=1", "",
])
def test_a_value_that_is_no_origin_is_refused_by_key(origin: str) -> None:
    doc = environment_doc("staging")
    doc["allowed_origins"] = ["https://app.staging.telestack.example.com", origin]
    refused(doc, r"allowed_origins\[1\]: ")


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://app.example.com", "http://127.0.0.1:5173",
                                    "http://[::1]:3000", "https://a-b.c.example.co.uk"])
def test_origins_are_accepted(origin: str) -> None:

    doc = environment_doc("staging")
    doc["allowed_origins"] = [origin]
    assert parse_environment(yaml.safe_dump(doc), "x.yaml").allowed_origins == (origin,)


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_wildcard_is_refused_on_every_cloud_target(name: str) -> None:
    doc = environment_doc(name)
    doc["allowed_origins"] = ["*"]
    refused(doc, r"allowed_origins\[0\]: '\*' \(every site\) is refused on a cloud target")


def test_the_wildcard_is_accepted_alone_on_the_local_target() -> None:

    doc = environment_doc("local")
    doc["allowed_origins"] = ["*"]
    assert parse_environment(yaml.safe_dump(doc), "x.yaml").allowed_origins == ("*",)
    doc["allowed_origins"] = ["http://localhost:3000", "*"]
    refused(doc, r"allowed_origins\[1\]: '\*' already allows every origin")


def test_an_origin_listed_twice_is_refused() -> None:
    doc = environment_doc("local")
    doc["allowed_origins"] = ["http://localhost:3000", "http://localhost:3000"]
    refused(doc, r"allowed_origins\[1\]: 'http://localhost:3000' is listed twice")


def test_the_old_per_service_lists_are_refused_with_a_pointer() -> None:
    doc = environment_doc("dev")
    doc["realtime"]["allowed_origins"] = ["https://app.dev.telestack.example.com"]
    refused(doc, r"realtime\.allowed_origins: no longer a setting: set allowed_origins \(top level\)")


def test_a_storage_yaml_with_its_own_origins_is_refused(tmp_path: Path) -> None:
    storage_doc = storage_rules.load_rules(ROOT / "config")
    storage_doc["cors"] = {**storage_doc["cors"], "allowed_origins": ["https://x.example.com"]}
    (tmp_path / "storage.yaml").write_text(yaml.safe_dump(storage_doc))
    with pytest.raises(StackConfigError, match=r"^config/storage\.yaml: cors\.allowed_origins: no longer a "
                                              r"setting.*allowed_origins"):
        storage_rules.load_rules(tmp_path)


# --- the three agree -----------------------------------------------------------------------------


def _gateway_origins(plain: dict[str, str]) -> tuple[str, ...]:
    """What the gateway reads from its bindings (worker/settings.py), not what the stack meant to send."""
    parsed = gateway_settings.from_mapping({**plain, "ADMIN_KEY": "k", "COLLECTIONS": "{}"})
    return parsed.cors_allowed_origins


class _LocalMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.created[args.name] = dict(args.inputs)
        return f"{args.name}-id", {**args.inputs, "notes": [], "cors": True, "lifecycle": True}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def local_mocks(monkeypatch: pytest.MonkeyPatch) -> _LocalMocks:
    monkeypatch.setattr(render_local, "resolve_program", lambda program, root: f"/opt/bin/{program}")
    mocks = _LocalMocks()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


@pulumi.runtime.test
def test_local_gateway_centrifugo_and_bucket_agree(local_mocks: _LocalMocks, tmp_path: Path) -> Any:
    s = stack_settings({}, state=tmp_path)
    expected = s.environment.allowed_origins
    outputs = local_stack.deploy(s)
    gateway_env = services.gateway(s, local_endpoints(s.environment), ()).env
    centrifugo = json.loads(services.centrifugo(s).files["config.json"])

    def check(_: Any) -> None:
        rules = local_mocks.created["bucket-rules"]
        bucket_cors, _ = storage_rules.bucket_rules(rules["rules"], rules["origins"])
        gateway = _gateway_origins({k.removeprefix("TELESTACK_"): v for k, v in gateway_env.items()})
        assert gateway == tuple(centrifugo["client"]["allowed_origins"]) == expected
        assert tuple(bucket_cors["CORSRules"][0]["AllowedOrigins"]) == expected

    return pulumi.Output.from_input(outputs["bucket_rules"]).apply(check)


def _centrifugo_origins(stack: Any) -> tuple[str, ...]:
    (container, *_) = of_service(stack, "centrifugo")
    uploads = {u["file"]: u["content"] for u in unwrap(container.inputs["uploads"])}
    (config,) = [c for f, c in uploads.items() if f.endswith("/config.json")]
    return tuple(json.loads(config)["client"]["allowed_origins"])


def _bucket_origins(stack: Any) -> tuple[str, ...]:
    """The origins the S3 server enforces, from whichever resource carries them on this target."""
    kind = stack.environment.storage.kind
    if kind == "minio":
        (minio,) = [c for c in of_service(stack, "minio") if not c.inputs["name"].endswith("-bucket")]
        raw = container_env(minio)["MINIO_API_CORS_ALLOW_ORIGIN"]
        rules = stack.recorder.one("telestack:BucketRules", "bucket-rules").inputs
        assert unwrap(rules)["put_cors"] is False, "MinIO's bucket CORS call is not implemented"
        return tuple(raw.split(","))
    if cloud_bucket_rules.r2_bucket(stack.environment.storage.endpoint):
        cors = unwrap(stack.recorder.one("r2BucketCors:R2BucketCors").inputs)
        (rule,) = cors["rules"]
        return tuple(rule["allowed"]["origins"])
    rules = unwrap(stack.recorder.one("telestack:BucketRules", "bucket-rules").inputs)
    cors_cfg, _ = storage_rules.bucket_rules(rules["rules"], rules["origins"])
    return tuple(cors_cfg["CORSRules"][0]["AllowedOrigins"])


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_cloud_gateway_centrifugo_and_bucket_agree(name: str) -> None:
    stack = run_stack(name)
    expected = stack.environment.allowed_origins
    plain = {n: b["text"] for n, b in worker_bindings(stack).items() if b["type"] == "plain_text"}
    assert _gateway_origins(plain) == expected
    assert _centrifugo_origins(stack) == expected
    assert _bucket_origins(stack) == expected
    assert re.fullmatch(r"[^,\s]+(,[^,\s]+)*", plain["CORS_ALLOWED_ORIGINS"]), "comma-separated"
