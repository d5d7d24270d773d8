"""The cloud stacks' resource graph under Pulumi mocks, for every shipped environment.

Each test runs the real program path (``cloud_stack.deploy``, what infra/__main__.py calls for
target ``docker``) against a recording ``Mocks`` and asserts on what it registered: each expected
resource once, names, bindings, dependencies, the Worker's modules, secrets only as Pulumi secrets,
only client-facing ports published, and that a version bump touches only its own service.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest

from infra import render_docker, services, worker_bundle
from infra.cloud_services import cloud_specs
from infra.config_error import StackConfigError
from infra.endpoints import cloud_endpoints
from infra.environment import ContainerSettings, Environment
from infra.gateway_bindings import gateway_bindings
from infra.secret_keys import SECRET_KEYS
from infra.settings import ROOT, CloudRefs, load_environment
from infra.worker_bundle import CONFIG_MODULE, MAIN_MODULE, PYTHON
from tests.support.cloud_stack import (
    ACCOUNT_ID,
    API_TOKEN,
    ENVIRONMENTS,
    MAIL_VARIANT,
    PREVIOUS,
    SECRETS,
    UNTIL,
    ZONE_ID,
    Recorder,
    Stack,
    cloud_stack_settings,
    container_env,
    containers,
    declared_defaults,
    fake_secrets,
    is_secret,
    of_service,
    run_stack,
    run_variant,
    unwrap,
    walk_plain,
    worker_bindings,
)
from worker import settings as gateway_settings

#: one Worker environment variable (a plain_text binding) holds at most 5 KB ("Environment variable size",
#: developers.cloudflare.com/workers/platform/limits), counted here in bytes, rounded down
PLAIN_TEXT_LIMIT_BYTES = 5000


@pytest.fixture(scope="module", params=[*ENVIRONMENTS, MAIL_VARIANT])
def stack(request: pytest.FixtureRequest) -> Stack:
    return run_variant(request.param)


# --- edge --------------------------------------------------------------------------------------


def test_edge_resources_exist_once_with_environment_names(stack: Stack) -> None:
    cf = stack.environment.cloudflare
    assert cf
    rec = stack.recorder
    db = rec.one("D1Database")
    assert db.inputs["name"] == cf.database_name, f"{db}: {db.inputs['name']}"
    assert db.inputs["accountId"] == ACCOUNT_ID, str(db)
    assert db.inputs["readReplication"] == {"mode": cf.d1_read_replication}, str(db)
    worker = rec.one("cloudflare:index/worker:Worker")
    assert worker.inputs["name"] == cf.worker_name, str(worker)
    rec.one("workerVersion:WorkerVersion")
    deployment = rec.one("workersDeployment:WorkersDeployment")
    assert deployment.inputs["versions"] == [{"percentage": 100, "versionId": "edge-version-id"}], str(
        deployment
    )
    assert deployment.inputs["strategy"] == "percentage"
    cron = rec.one("workersCronTrigger:WorkersCronTrigger")
    assert cron.inputs["schedules"] == [{"cron": cf.outbox_cron}], str(cron)
    assert cron.inputs["scriptName"] == cf.worker_name
    domains = rec.of_type("workersCustomDomain:WorkersCustomDomain")
    assert [d.inputs["hostname"] for d in domains] == ([cf.custom_domain] if cf.custom_domain else [])
    for d in domains:
        assert d.inputs["zoneId"] == ZONE_ID and d.inputs["service"] == cf.worker_name, str(d)
    assert len(rec.of_type("workersRoute:WorkersRoute")) == (1 if cf.route else 0)
    rec.one("pulumi-python:dynamic:Resource", "edge-migrations")


def test_worker_modules_are_exactly_the_worker_sources(stack: Stack) -> None:
    version = stack.recorder.one("workerVersion:WorkerVersion")
    modules = {m["name"]: m for m in version.inputs["modules"]}
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "worker").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    own = {name for name in modules if name.startswith("worker/")}
    assert own == expected, f"{version}: worker modules differ: {sorted(own ^ expected)}"
    for name in expected:
        assert modules[name]["contentType"] == PYTHON, f"{version}: {name} is {modules[name]['contentType']}"
    assert version.inputs["mainModule"] == MAIN_MODULE
    assert "python_workers" in version.inputs["compatibilityFlags"], version.name
    assert version.inputs["compatibilityDate"] >= "2025-09-29", "needs Pyodide 0.28 / Python 3.13"
    generated = {MAIN_MODULE, CONFIG_MODULE}
    assert generated <= set(modules), f"{version}: {sorted(generated - set(modules))} not uploaded"
    vendored = {n.split("/", 1)[0] for n in modules if not n.startswith("worker/") and n not in generated}
    assert vendored == {"fastjsonschema"}, f"{version}: {sorted(vendored)}"
    assert all(m["contentType"] == PYTHON for m in modules.values()), "workerd ignores requirement modules"


def test_version_tag_fits_the_documented_limit_and_names_the_bundle(stack: Stack) -> None:
    """Cloudflare's version upload documents ``annotations["workers/tag"]`` with maxLength 20
    (tests/contracts/cloudflare/openapi.json, workers_version-post); the old 64-character tag broke it."""
    contract = json.loads((ROOT / "tests/contracts/cloudflare/openapi.json").read_text())
    metadata = contract["components"]["requestBodies"]["workers_version-post"]["content"][
        "multipart/form-data"]["schema"]["properties"]["metadata"]
    limit = metadata["properties"]["annotations"]["properties"]["workers/tag"]["maxLength"]
    version = stack.recorder.one("workerVersion:WorkerVersion")
    tag = version.inputs["annotations"]["workersTag"]
    assert 0 < len(tag) <= limit, f"{version}: workers_tag {tag!r} is over {limit} characters"
    assert worker_bundle.build_bundle().content_hash.startswith(tag), version


def test_worker_bindings(stack: Stack) -> None:
    version = stack.recorder.one("workerVersion:WorkerVersion")
    raw = version.inputs["bindings"]
    if is_secret(raw):  # Pulumi may mark the whole list secret because it holds secrets: fine, never less
        raw = raw["value"]
    bindings = {b["name"]: b for b in raw}
    assert bindings["DB"] == {"name": "DB", "type": "d1", "id": "edge-db-id"}, f"{version}: D1 binding"
    env = stack.environment
    # the expectation is the one mapping both targets use, with secret-ness as the gateway declares it
    mapped = gateway_bindings(env, fake_secrets(), cloud_endpoints(env))
    secret_names = gateway_settings.secret_binding_names()
    assert not set(mapped.plain) & secret_names and set(mapped.secret) <= secret_names
    plain = set(mapped.plain)
    secret = set(mapped.secret)
    # the collections travel as a module (test_worker_modules_are_exactly_the_worker_sources), not a binding
    assert set(bindings) == {"DB"} | plain | secret, f"{version}: {sorted(bindings)}"
    for name in plain:
        assert bindings[name]["type"] == "plain_text" and isinstance(bindings[name]["text"], str), name
        size = len(bindings[name]["text"].encode())
        assert size <= PLAIN_TEXT_LIMIT_BYTES, f"{version}: {name} is {size} bytes, over Cloudflare's limit"
    for name in secret:
        assert bindings[name]["type"] == "secret_text", f"{version}: {name}"
        assert is_secret(version.inputs["bindings"]) or is_secret(
            bindings[name]["text"]
        ), f"{version}: {name} is not a Pulumi secret"
    for name, text in mapped.plain.items():
        assert bindings[name]["text"] == text, f"{version}: {name}"
    assert bindings["CENTRIFUGO_WS_URL"]["text"] == env.realtime.public_ws_url
    assert bindings["AUTH_URL"]["text"] == env.auth.public_url
    assert bindings["S3_BUCKET"]["text"] == env.storage.bucket


def test_edge_dependencies(stack: Stack) -> None:
    """Migrations wait for the database; the version waits for the migrations (schema before code)."""
    # The mock monitor does not expose depends_on; the component wires it and the D1 id flows by input.
    migrations = stack.recorder.one("pulumi-python:dynamic:Resource", "edge-migrations")
    assert (
        migrations.inputs["database_id"] == "edge-db-id"
    ), "edge-migrations must target the stack's database"
    assert migrations.inputs["account_id"] == ACCOUNT_ID
    names = [m["name"] for m in migrations.inputs["migrations"]]
    assert names == sorted(names) and names[:2] == ["0001_documents", "0002_outbox"], names
    order = [r.name for r in stack.recorder.resources]
    assert order.index("edge-db") < order.index("edge-migrations") < order.index("edge-version"), order


# --- containers --------------------------------------------------------------------------------


def test_expected_containers_once(stack: Stack) -> None:
    env = stack.environment
    prefix = (
        f"telestack-{stack.recorder.one('docker:index/network:Network').inputs['name'][:-4].split('-', 1)[1]}"
    )
    names = set(containers(stack))
    assert env.docker
    rt = env.docker.centrifugo.replicas
    expected = {f"{prefix}-centrifugo" + (f"-{i}" if rt > 1 else "") for i in range(rt)}
    st = env.docker.supertokens.replicas if env.docker else 1
    expected |= {f"{prefix}-supertokens" + (f"-{i}" if st > 1 else "") for i in range(st)}
    expected |= {f"{prefix}-postgres"}
    if rt > 1:
        expected.add(f"{prefix}-redis")
    if env.storage.kind == "seaweedfs":
        expected.add(f"{prefix}-seaweedfs")
    if env.storage.kind == "minio":
        expected |= {f"{prefix}-minio", f"{prefix}-minio-bucket"}
    if env.mail is not None:
        expected.add(f"{prefix}-mail-relay")
    assert names == expected, f"containers differ: {sorted(names ^ expected)}"
    volumes = {v.inputs["name"] for v in stack.recorder.of_type("docker:index/volume:Volume")}
    stateful = (
        {"postgres"}
        | ({"seaweedfs"} if env.storage.kind == "seaweedfs" else set())
        | ({"minio"} if env.storage.kind == "minio" else set())
    )
    assert volumes == {f"{prefix}-{s}-data" for s in stateful}, sorted(volumes)


def test_containers_are_pinned_limited_checked_and_on_the_private_network(stack: Stack) -> None:
    network = stack.recorder.one("docker:index/network:Network")
    images = {
        r.name: r.inputs["name"] for r in stack.recorder.of_type("docker:index/remoteImage:RemoteImage")
    }
    for ref in images.values():
        assert ":" in ref.split("/")[-1] and not ref.endswith(":latest"), f"image {ref} is not pinned by tag"
    for name, c in containers(stack).items():
        assert c.inputs["networksAdvanced"][0]["name"] == network.inputs["name"], f"{c}: not on the network"
        assert c.inputs["memory"] > 0 and float(c.inputs["cpus"]) > 0, f"{c}: no resource limits"
        assert c.inputs["image"].startswith("sha256:image-"), f"{c}: image not from a pinned RemoteImage"
        if name.endswith("-minio-bucket"):
            assert c.inputs["restart"] == "no" and c.inputs["mustRun"] is False, name
            continue
        assert c.inputs["restart"] == stack.environment.docker.restart, f"{c}: restart policy"
        assert c.inputs["healthcheck"]["tests"], f"{c}: no health check"


#: image repositories that no longer serve pulls: MinIO removed minio/minio and minio/mc from Docker Hub
#: (September 2026); "pull access denied" would fail `pulumi up` at the RemoteImage
GONE_REPOSITORIES = ("minio/minio", "minio/mc", "docker.io/minio/minio", "docker.io/minio/mc")


def test_no_image_comes_from_a_repository_that_is_gone(stack: Stack) -> None:
    for r in stack.recorder.of_type("docker:index/remoteImage:RemoteImage"):
        repository = r.inputs["name"].split("@", 1)[0].rsplit(":", 1)[0]
        assert repository not in GONE_REPOSITORIES, f"{r}: {r.inputs['name']} can no longer be pulled"


def test_pulumi_up_waits_for_each_service_as_long_as_its_start_period(stack: Stack) -> None:
    """The provider's default wait (60 s) is shorter than SuperTokens' JVM start on a fraction of a CPU:
    every waited-for container gets its start period plus Docker's retries."""
    for name, c in containers(stack).items():
        if name.endswith("-minio-bucket"):
            continue
        check = c.inputs["healthcheck"]
        start = int(check["startPeriod"].removesuffix("s"))
        retries, interval = check["retries"], int(check["interval"].removesuffix("s"))
        assert c.inputs["wait"] is True and c.inputs["waitTimeout"] >= start + retries * interval, c
        if "-supertokens" in name:
            assert start >= 120, f"{c}: {start} s to start a JVM on {c.inputs['cpus']} CPU"


def test_seaweedfs_advertises_its_name_on_the_network_and_binds_all(stack: Stack) -> None:
    """`-ip` is what the master hands to clients of its volume servers: 0.0.0.0 is no address to
    connect to; the container's network alias is."""
    for name, c in containers(stack).items():
        if not name.endswith("-seaweedfs"):
            continue
        command = c.inputs["command"]
        aliases = c.inputs["networksAdvanced"][0]["aliases"]
        ip = [a for a in command if a.startswith("-ip=")]
        assert ip == ["-ip=seaweedfs"] and "seaweedfs" in aliases, f"{c}: {ip}, aliases {aliases}"
        assert "-ip.bind=0.0.0.0" in command, c
        assert command[0] == "mini", f"{c}: the image's entrypoint routes `mini`, not {command[0]!r}"


def test_only_client_facing_ports_are_published(stack: Stack) -> None:
    env = stack.environment
    public_ports = {
        "centrifugo": env.realtime.port,
        "supertokens": env.auth.port,
        "seaweedfs": env.storage.port,
        "minio": env.storage.port,
        **({"mail-relay": env.mail.ui_port} if env.mail else {}),  # the Worker posts mail there
    }
    for name, c in containers(stack).items():
        service = name.split("-", 2)[2].rsplit("-", 1)[0] if name[-1].isdigit() else name.split("-", 2)[2]
        published = [p["internal"] for p in c.inputs.get("ports") or []]
        if service in public_ports:
            assert published == [public_ports[service]], f"{c}: published {published}"
        elif service == "postgres":  # docker.postgres.host_port: the host's loopback only (ops backups)
            ports = c.inputs.get("ports") or []
            assert all(p["ip"] == "127.0.0.1" for p in ports), f"{c}: published {ports}"
        else:
            assert published == [], f"{c}: {service} must stay on the private network, published {published}"


def test_centrifugo_uses_redis_engine_with_replicas(stack: Stack) -> None:
    for name, c in containers(stack).items():
        if "-centrifugo" not in name:
            continue
        envs = unwrap(c.inputs["envs"])  # a list holding secrets may be marked secret as a whole
        assert stack.environment.docker
        if stack.environment.docker.centrifugo.replicas > 1:
            assert "CENTRIFUGO_ENGINE_TYPE=redis" in envs, f"{c}: replicas without the Redis engine"
        else:
            assert not any(e.startswith("CENTRIFUGO_ENGINE_TYPE") for e in envs), name


def test_no_secret_is_a_plain_input_or_output(stack: Stack) -> None:
    leaks = [SECRETS[k] for k in SECRETS] + [API_TOKEN]
    for r in stack.recorder.resources:
        for path, text in walk_plain(r.inputs):
            for secret in leaks:
                assert secret not in text, f"{r.urn} {path} holds a secret in plain text"
    for name, value in stack.outputs.items():
        # Pulumi secret outputs (test_cloud_stack_auth_store.py and test_mail_relay.py check that they are)
        if name in ("auth_db_url", "mail_relay_key"):
            continue
        assert not any(secret in str(value) for secret in leaks), f"output {name} holds a secret"


def test_outputs_have_the_local_stacks_names(stack: Stack) -> None:
    required = {"gateway_url", "centrifugo_ws_url", "s3_endpoint", "s3_bucket", "auth_url", "d1_database_id"}
    assert required <= set(stack.outputs), sorted(required - set(stack.outputs))
    env = stack.environment
    cf = env.cloudflare
    assert cf
    expected_gateway = (
        f"https://{cf.custom_domain}" if cf.custom_domain else f"https://{cf.worker_name}.team.workers.dev"
    )
    assert stack.outputs["gateway_url"] == expected_gateway
    assert stack.outputs["d1_database_id"] == "edge-db-id"
    assert stack.outputs["s3_bucket"] == env.storage.bucket
    assert stack.outputs["centrifugo_ws_url"].startswith("wss://")


# --- change isolation --------------------------------------------------------------------------


@pytest.fixture
def frozen_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both runs of a comparison see the same worker/ tree, even while someone edits it mid-test."""
    bundle = worker_bundle.build_bundle()
    monkeypatch.setattr(worker_bundle, "build_bundle", lambda **_: bundle)


def _by_urnless_key(stack: Stack) -> dict[tuple[str, str], Any]:
    return {(r.typ, r.name): unwrap(r.inputs) for r in stack.recorder.resources}


@pytest.mark.parametrize("service", ["centrifugo", "supertokens", "postgres"])
def test_changing_one_service_version_changes_only_that_service(service: str, frozen_tree: None) -> None:
    def bump(env: Environment) -> Environment:
        assert env.docker
        current: ContainerSettings = getattr(env.docker, service)
        image = dataclasses.replace(current.image, tag=current.image.tag + "-next")
        docker = dataclasses.replace(env.docker, **{service: dataclasses.replace(current, image=image)})
        return dataclasses.replace(env, docker=docker)

    before = _by_urnless_key(run_stack("staging"))
    after = _by_urnless_key(run_stack("staging", bump))
    assert set(before) == set(after), "a version bump must not add or remove resources"
    changed = {key for key in before if before[key] != after[key]}
    assert changed, f"bumping {service} changed nothing"
    for typ, name in changed:
        owner = name.split("-")[0] if not name.startswith("image-") else name
        assert service in owner, f"bumping {service} also changed urn:...::{typ}::{name}"


def test_unchanged_tree_yields_identical_inputs(frozen_tree: None) -> None:
    first, second = _by_urnless_key(run_stack("dev")), _by_urnless_key(run_stack("dev"))
    assert first == second, "two runs over the same tree must register identical inputs (no diff)"


def test_program_entry_composes_the_cloud_stack_in_preview() -> None:
    """infra/__main__.py (what `pulumi preview --stack dev` runs) builds the cloud stack from config."""
    import runpy

    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="telestack", stack="dev", preview=True)
    config = {f"telestack:{k}": v for k, v in SECRETS.items()}
    config |= {"telestack:cloudflareAccountId": ACCOUNT_ID, "cloudflare:apiToken": API_TOKEN}
    pulumi.runtime.set_all_config(config, [k for k in config if k != "telestack:cloudflareAccountId"])

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")

    program()
    for suffix in ("D1Database", "workerVersion:WorkerVersion", "workersDeployment:WorkersDeployment",
                   "workersCronTrigger:WorkersCronTrigger", "docker:index/network:Network"):
        recorder.one(suffix)
    assert recorder.one("D1Database").inputs["name"] == "telestack-dev"


# --- secret rotation (scripts/ops rotate-secrets) ----------------------------------------------


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_rotation_window_reaches_every_cloud_component(env_name: str) -> None:
    stack = run_stack(env_name, rotating=True)
    env = stack.environment
    version = stack.recorder.one("workerVersion:WorkerVersion")
    bindings = worker_bindings(stack)
    # the Worker accepts the old admin key until the window's end
    previous = bindings["ADMIN_KEY_PREVIOUS"]
    assert previous["type"] == "secret_text" and previous["text"] == PREVIOUS["admin_key_previous"], version
    raw = version.inputs["bindings"]  # the list as a whole may be secret (it holds secrets); never less
    if not is_secret(raw):
        assert is_secret({b["name"]: b for b in raw}["ADMIN_KEY_PREVIOUS"]["text"]), version
    until = str(UNTIL["admin_key_previous_valid_until"])
    assert bindings["ADMIN_KEY_PREVIOUS_UNTIL"] == {"name": "ADMIN_KEY_PREVIOUS_UNTIL", "type": "plain_text",
                                                    "text": until}, version
    # SuperTokens Core: api_keys "new,previous" (the core's list format), on every replica
    cores = of_service(stack, "supertokens")
    assert cores and all(
        container_env(c)["API_KEYS"] == f"{SECRETS['authApiKey']},{PREVIOUS['auth_api_key_previous']}"
        for c in cores
    ), [c.urn for c in cores]
    # Centrifugo: the previous HMAC key and its deadline, on every replica
    for c in of_service(stack, "centrifugo"):
        envs = container_env(c)
        assert envs["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY"] == PREVIOUS[
            "centrifugo_token_secret_previous"
        ], c
        assert envs["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY_VALID_UNTIL"] == str(
            UNTIL["centrifugo_token_secret_previous_valid_until"]
        ), c
    # S3: SeaweedFS gets a second identity whose file names env vars; MinIO a second user (the minio-bucket
    # job, tests/infra/test_cloud_services.py); an external S3 has nothing to render
    for c in of_service(stack, "seaweedfs"):
        envs = container_env(c)
        ak, sk = services.S3_PREVIOUS_ENV
        assert envs[ak] == PREVIOUS["s3_access_key_id_previous"], c
        assert envs[sk] == PREVIOUS["s3_secret_access_key_previous"], c
        (upload,) = c.inputs["uploads"]
        assert upload["file"] == f"{render_docker.CONFIG_DIR}/seaweedfs/{services.S3_IDENTITIES}", c
        assert f"-s3.config={upload['file']}" in c.inputs["command"], c
        identity = json.loads(upload["content"])["identities"][0]
        # the docker renderer's placeholder pass (${host}/${config}/${data}) leaves ${VAR} references alone
        assert identity["credentials"] == [{"accessKey": f"${{{ak}}}", "secretKey": f"${{{sk}}}"}], c
    for c in of_service(stack, "minio"):
        envs = container_env(c)
        if c.inputs["name"].endswith("-minio-bucket"):
            assert envs[services.S3_PREVIOUS_ENV[0]] == PREVIOUS["s3_access_key_id_previous"], c
        else:
            assert not any("PREVIOUS" in key for key in envs), f"{c}: the server holds only its root pair"
    assert bool(of_service(stack, "seaweedfs")) == (env.storage.kind == "seaweedfs")
    # and none of the rotated-out values is ever plain
    for r in stack.recorder.resources:
        for path, text in walk_plain(r.inputs):
            assert not any(v in text for v in PREVIOUS.values()), f"{r.urn} {path} holds a previous secret"


def test_previous_values_are_secret_env_of_the_cloud_specs() -> None:
    """Spec level (the mocks collapse a list holding one secret into one secret, hiding a plain entry)."""
    _, environment = load_environment("dev")
    s = cloud_stack_settings("dev", environment, rotating=True)
    refs = CloudRefs(account_id=ACCOUNT_ID, zone_id=None, api_token=pulumi.Output.secret(API_TOKEN),
                              postgres_password=pulumi.Output.secret(SECRETS["postgresPassword"]))
    specs = {spec.name: spec for spec in cloud_specs(s, refs)}
    expected = {
        "centrifugo": {"CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY"},
        "seaweedfs": set(services.S3_PREVIOUS_ENV),
        "supertokens": {"API_KEYS"},
    }
    for name, keys in expected.items():
        assert keys <= set(specs[name].secret_env), f"{name}: {sorted(specs[name].secret_env)}"
        assert not keys & set(specs[name].env), f"{name}: a previous secret in plain env"
        for key in keys:
            assert isinstance(specs[name].secret_env[key], pulumi.Output), f"{name}.{key} is not an Output"


def test_outside_a_rotation_nothing_extra(stack: Stack) -> None:
    bindings = worker_bindings(stack)
    assert not {"ADMIN_KEY_PREVIOUS", "ADMIN_KEY_PREVIOUS_UNTIL"} & set(bindings)
    for name, c in containers(stack).items():
        envs = container_env(c)
        assert not [k for k in envs if "PREVIOUS" in k], f"{c}: {sorted(envs)}"
        if "-supertokens" in name:
            assert envs["API_KEYS"] == SECRETS["authApiKey"], c
        if name.endswith("-seaweedfs"):
            assert json.loads(c.inputs["uploads"][0]["content"]) == {"identities": []}, c


# --- optional gateway settings ------------------------------------------------------------------


def test_optional_gateway_settings_become_plainworker_bindings(frozen_tree: None) -> None:
    def tune(env: Environment) -> Environment:
        return dataclasses.replace(
            env,
            auth=dataclasses.replace(env.auth, access_token_validity=600, issuer="https://issuer.example.com"),
            storage=dataclasses.replace(env.storage, url_ttl=300, max_upload_bytes=1048576),
        )

    bindings = worker_bindings(run_stack("dev", tune))
    expected = {"AUTH_ACCESS_TOKEN_VALIDITY": "600", "AUTH_ISSUER": "https://issuer.example.com",
                "STORAGE_URL_TTL": "300", "STORAGE_MAX_UPLOAD_BYTES": "1048576"}
    for key, value in expected.items():
        assert bindings[key] == {"name": key, "type": "plain_text", "text": value}, bindings.get(key)
    untouched = worker_bindings(run_stack("dev"))
    assert not set(expected) & set(untouched), "unset keys must leave the gateway's defaults alone"


# --- stack config the program reads (Pulumi.yaml declares each with an empty default) ------------


@pytest.mark.parametrize(
    ("env_name", "key", "message"),
    [
        ("dev", "telestack:cloudflareAccountId",
         r"telestack:cloudflareAccountId: not set \(.*dev\.yaml: cloudflare\.account_id_config names it\)"),
        ("staging", "telestack:cloudflareZoneId",
         r"telestack:cloudflareZoneId: not set \(.*staging\.yaml: cloudflare\.zone_id_config names it\)"),
        ("dev", "telestack:postgresPassword", r"telestack:postgresPassword: not set .*scripts/secrets\.py"),
    ],
)
def test_empty_declared_default_is_unset_and_named(env_name: str, key: str, message: str) -> None:
    assert declared_defaults()[key] == "", f"Pulumi.yaml must declare {key} with an empty default"
    with pytest.raises(StackConfigError, match=message):
        run_stack(env_name, config={key: ""})


def test_cloudflare_id_must_look_like_one() -> None:
    with pytest.raises(StackConfigError, match=r"AccountId: 'me@example\.com' is not a Cloudflare"):
        run_stack("dev", config={"telestack:cloudflareAccountId": "me@example.com"})


def test_program_entry_reports_a_missing_cloud_key_in_one_line() -> None:
    """`pulumi preview` on a fresh cloud stack: declared defaults only -> a RunError naming the key."""
    import runpy

    pulumi.runtime.set_mocks(Recorder(), project="telestack", stack="dev", preview=True)
    config = declared_defaults() | {f"telestack:{k}": SECRETS[k] for k in SECRET_KEYS}
    config |= {"cloudflare:apiToken": API_TOKEN}
    secret = [f"telestack:{k}" for k in SECRET_KEYS] + ["cloudflare:apiToken"]
    pulumi.runtime.set_all_config(config, secret)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")

    one_line = r"^telestack:postgresPassword: not set [^\n]*scripts/secrets\.py"
    with pytest.raises(pulumi.RunError, match=one_line):
        program()
