"""MinIO S3-key rotation: MinIO's root pair apart from the stack's app identity, and the minio-bucket
job that keeps the previous pair as a second user during a window.

The staging environment (``storage.kind: minio``) is rendered under Pulumi mocks, three times, with the
stack config ``rotate.start`` / ``rotate.finish`` produce (before, window, finished). Each rendered job
then runs for real, as Docker would run it (its entrypoint, command and env), against a stub ``mc`` on
PATH that keeps a fake MinIO's IAM state in a file: window start -> two app users; finish -> the old one
removed; a re-run -> no change; users the stack does not own are never touched.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import cloud_services, cloud_stack, services
from infra.config_error import StackConfigError
from infra.secret_keys import MINIO_SECRET_KEYS
from infra.settings import ROOT, StackSettings, environment_path, load_environment, stack_secrets
from infra.spec import substitute
from scripts.ops import rotate
from scripts.ops.console import Console
from tests.support.cloud_stack import (
    ACCOUNT_ID,
    API_TOKEN,
    Recorder,
    Registered,
    container_env,
    run_stack,
    unwrap,
    walk_plain,
)
from tests.support.ops import MemoryConfig
from tests.support.script_module import load_script

ENV_NAME = "staging"  # the shipped environment with storage.kind minio
INITIAL = {
    "adminKey": "admin-value-0000000000000000",
    "centrifugoApiKey": "centrifugo-api-value-000000",
    "centrifugoTokenSecret": "centrifugo-token-value-0000",
    "s3AccessKeyId": "TSAPPKEYBEFORE000001",
    "s3SecretAccessKey": "app-secret-before-rotation-0000000000001",
    "authApiKey": "auth-api-value-000000000000",
    "postgresPassword": "postgres-password-value-0000",
    "minioRootUser": "TSROOTUSER0000000001",
    "minioRootPassword": "root-password-never-in-argv-000000000001",
}
OURS = cloud_services.minio_app_policy("telestack-staging")


def _console() -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO())


def _render(values: Mapping[str, str], recorder: Recorder | None = None) -> Recorder:
    """The cloud program for staging under mocks, its secrets from ``values`` (stack config, no namespace)."""
    _, environment = load_environment(ENV_NAME)
    assert environment.storage.kind == "minio"
    recorder = recorder or Recorder()
    pulumi.runtime.set_mocks(recorder, project="telestack", stack=ENV_NAME, preview=False)
    secret_keys = ["postgresPassword", *MINIO_SECRET_KEYS]
    config = {f"telestack:{k}": values[k] for k in secret_keys}
    config |= {"telestack:cloudflareAccountId": ACCOUNT_ID, "telestack:cloudflareZoneId": "f" * 32,
               "cloudflare:apiToken": API_TOKEN}
    pulumi.runtime.set_all_config(config, ["cloudflare:apiToken", *(f"telestack:{k}" for k in secret_keys)])
    secrets = stack_secrets({k: pulumi.Output.secret(v) for k, v in values.items()})
    s = StackSettings(stack=ENV_NAME, env_name=ENV_NAME, env_file=environment_path(ENV_NAME),
                      environment=environment, secrets=secrets, root=ROOT, state_dir=ROOT / ".telestack")

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        outputs = cloud_stack.deploy(s)
        return pulumi.Output.all(outputs["gateway_url"], outputs["jobs"])

    program()
    return recorder


def _container(recorder: Recorder, service: str) -> Registered:
    (found,) = [r for r in recorder.of_type("docker:index/container:Container")
                if r.inputs["name"] == f"telestack-{ENV_NAME}-{service}"]
    return found


@pytest.fixture(scope="module")
def phases() -> dict[str, tuple[Recorder, dict[str, str]]]:
    """before / window / finished: what `pulumi up` renders after each rotate-secrets step (s3, minio)."""
    config = MemoryConfig(INITIAL)
    out = {"before": (_render(config.values), dict(config.values))}
    rotate.start(config, [rotate.BY_NAME["s3"]], 600, _console(), now=1000.0, storage_kind="minio")
    out["window"] = (_render(config.values), dict(config.values))
    rotate.finish(config, [rotate.BY_NAME["s3"]], _console(), now=1700.0, storage_kind="minio")
    out["finished"] = (_render(config.values), dict(config.values))
    assert config.applied == 2
    return out


# --- what is rendered ---------------------------------------------------------------------------


def test_minio_root_pair_is_its_own_and_rotation_never_touches_the_server(phases: dict[str, Any]) -> None:
    servers = [_container(rec, "minio").inputs for rec, _ in phases.values()]
    env = container_env(_container(phases["before"][0], "minio"))
    assert env["MINIO_ROOT_USER"] == INITIAL["minioRootUser"] != INITIAL["s3AccessKeyId"]
    assert env["MINIO_ROOT_PASSWORD"] == INITIAL["minioRootPassword"]
    assert not {INITIAL["s3AccessKeyId"], INITIAL["s3SecretAccessKey"]} & set(env.values()), env.keys()
    # rotating the app pair leaves the server's inputs alone: no MinIO restart
    assert all(unwrap(inputs) == unwrap(servers[0]) for inputs in servers), "MinIO's inputs changed"


def test_job_env_holds_both_pairs_in_the_window_and_only_the_current_after(phases: dict[str, Any]) -> None:
    ak, sk = cloud_services.MINIO_APP_ENV
    pak, psk = services.S3_PREVIOUS_ENV
    window_values, finished_values = phases["window"][1], phases["finished"][1]
    before = container_env(_container(phases["before"][0], "minio-bucket"))
    window = container_env(_container(phases["window"][0], "minio-bucket"))
    finished = container_env(_container(phases["finished"][0], "minio-bucket"))
    assert (before[ak], before[sk]) == (INITIAL["s3AccessKeyId"], INITIAL["s3SecretAccessKey"])
    assert pak not in before and psk not in before
    assert (window[ak], window[sk]) == (window_values["s3AccessKeyId"], window_values["s3SecretAccessKey"])
    assert (window[pak], window[psk]) == (INITIAL["s3AccessKeyId"], INITIAL["s3SecretAccessKey"])
    assert window[ak] != INITIAL["s3AccessKeyId"]
    assert finished[ak] == finished_values["s3AccessKeyId"] == window[ak]
    assert pak not in finished and psk not in finished
    for env in (before, window, finished):
        assert (env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]) == (
            INITIAL["minioRootUser"], INITIAL["minioRootPassword"])
    # docker containers are immutable: changed env = a new container = the job runs again, on each step
    assert before != window != finished


def test_no_secret_is_in_any_containers_command_and_the_job_reads_env_only(phases: dict[str, Any]) -> None:
    for phase, (recorder, values) in phases.items():
        secrets = [v for k, v in values.items() if k != "s3AccessKeyIdPreviousValidUntil"]
        for c in recorder.of_type("docker:index/container:Container"):
            argv = json.dumps([c.inputs.get("entrypoints"), c.inputs.get("command")])
            assert not [s for s in secrets if s in argv], f"{phase}: {c.urn} has a secret in its command"
            for path, text in walk_plain(c.inputs):
                assert not [s for s in secrets if s in text], f"{phase}: {c.urn} {path} holds a plain secret"
        job = _container(recorder, "minio-bucket")
        assert job.inputs["entrypoints"] == ["sh"] and job.inputs["command"][0] == "-c"
        script = job.inputs["command"][1]
        for key in container_env(job):  # every secret it gets is an env var the script references
            assert f'"${key}"' in script or f'"${{{key}:-}}"' in script, key
    scripts = {_container(rec, "minio-bucket").inputs["command"][1] for rec, _ in phases.values()}
    assert len(scripts) == 1, "the script must not depend on the keys (only its env does)"
    (script,) = scripts
    storage = load_environment(ENV_NAME)[1].storage
    assert script == cloud_services._minio_bucket_script(storage.bucket, storage.port)
    assert substitute(script, {"host": "x", "config": "y", "data": "z"}) == script


# --- the job, run ---------------------------------------------------------------------------------

STUB_MC = r'''#!{python}
"""Fake `mc`: a MinIO whose IAM state is a JSON file; each call's argv is logged (never stdin)."""
import json
import sys

STATE, LOG = {state!r}, {log!r}
argv = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(json.dumps(argv) + "\n")
with open(STATE) as f:
    state = json.load(f)
args = [a for a in argv if a != "--json"]


def fail(message):
    print("mc: <ERROR> " + message, file=sys.stderr)
    sys.exit(1)


def keys(given):  # mc reads what is not an argument from stdin, one per line
    lines = sys.stdin.read().splitlines() if len(given) < 2 else []
    return (list(given) + lines + ["", ""])[:2]


def authorized():
    if state.get("alias") != state["root"]:
        fail("Unable to initialize admin connection. Access Denied.")


users, policies = state["users"], state["policies"]
if args[:2] == ["alias", "set"]:
    if keys(args[4:6]) != state["root"]:
        fail("Unable to initialize new alias from the provided credentials. Access Denied.")
    state["alias"], state["url"] = state["root"], args[3]
elif args[:2] == ["mb", "--ignore-existing"]:
    authorized()
    state["buckets"] = sorted(set(state["buckets"]) | {args[2].split("/", 1)[1]})
elif args[:3] == ["admin", "policy", "create"]:
    authorized()
    with open(args[5]) as f:
        policies[args[4]] = json.load(f)
elif args[:3] == ["admin", "user", "add"]:
    authorized()
    access_key, secret_key = keys(args[4:6])
    if not access_key or not secret_key or access_key == state["root"][0]:
        fail("Unable to add new user")
    users.setdefault(access_key, {"policies": []})["secret"] = secret_key
elif args[:3] == ["admin", "policy", "attach"]:
    authorized()
    user = args[args.index("--user") + 1]
    if args[4] not in policies or user not in users:
        fail("Unable to make user/group policy association")
    if args[4] not in users[user]["policies"]:
        users[user]["policies"].append(args[4])
elif args[:3] == ["admin", "user", "list"] and "--json" in argv:
    authorized()
    for access_key, user in users.items():
        message = {"status": "success", "accessKey": access_key}
        if user["policies"]:
            message["policyName"] = ",".join(user["policies"])
        message["userStatus"] = "enabled"
        if user.get("groups"):
            message["memberOf"] = [{"name": g, "policies": [OURS]} for g in user["groups"]]
        compact = state["format"] == "lines"
        print(json.dumps(message, separators=(",", ":")) if compact else json.dumps(message, indent=1))
elif args[:3] in (["admin", "user", "rm"], ["admin", "user", "remove"]):
    authorized()
    if args[4] not in users:
        fail("Unable to remove " + args[4])
    del users[args[4]]
else:
    fail("unknown command " + " ".join(args))
with open(STATE, "w") as f:
    json.dump(state, f)
'''

#: users on the fake MinIO before the stack's first job run: none may be touched but "stale"
FOREIGN = {
    "ops-person": {"secret": "x" * 12, "policies": ["readwrite"]},
    "shares-our-policy-and-more": {"secret": "y" * 12, "policies": [OURS, "diagnostics"]},
    "in-a-group": {"secret": "z" * 12, "policies": [], "groups": ["auditors"]},
}
STALE = {"TSLEFTBYANOLDRUN0001": {"secret": "w" * 12, "policies": [OURS]}}


class FakeMinio:
    """The stub `mc` and its state file under ``root``."""

    def __init__(self, root: Path, fmt: str) -> None:
        self.bin, self.state, self.log = root / "bin", root / "minio.json", root / "mc.log"
        self.bin.mkdir()
        self.state.write_text(json.dumps({
            "root": [INITIAL["minioRootUser"], INITIAL["minioRootPassword"]], "format": fmt,
            "buckets": [], "policies": {}, "users": {**FOREIGN, **STALE},
        }))
        stub = self.bin / "mc"
        values = {"{python}": sys.executable, "{state!r}": repr(str(self.state)),
                  "{log!r}": repr(str(self.log)), "[OURS]": repr([OURS])}
        text = STUB_MC
        for token, value in values.items():
            text = text.replace(token, value)
        stub.write_text(text)
        stub.chmod(0o755)

    def run(self, job: Registered, shell: str) -> subprocess.CompletedProcess[str]:
        """The job as Docker runs it (entrypoint `sh`, its command, only its env), ``shell`` as `sh`."""
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", **container_env(job)}
        return subprocess.run([shell, *job.inputs["command"]], env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    def users(self) -> dict[str, Any]:
        return dict(json.loads(self.state.read_text())["users"])

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


def _app_users(users: Mapping[str, Any]) -> dict[str, str]:
    """Access key -> secret of the users holding exactly the stack's policy."""
    return {k: u["secret"] for k, u in users.items() if u["policies"] == [OURS]}


@pytest.mark.parametrize("fmt", ["lines", "indented"])  # `mc --json` piped, and on a terminal
@pytest.mark.parametrize("shell", [s for s in ("sh", "bash") if shutil.which(s)])
def test_job_keeps_both_users_in_the_window_and_removes_the_old_after_finish(
    phases: dict[str, Any], tmp_path: Path, shell: str, fmt: str
) -> None:
    minio = FakeMinio(tmp_path, fmt)
    jobs = {phase: _container(rec, "minio-bucket") for phase, (rec, _) in phases.items()}
    old = (INITIAL["s3AccessKeyId"], INITIAL["s3SecretAccessKey"])
    new = (phases["window"][1]["s3AccessKeyId"], phases["window"][1]["s3SecretAccessKey"])

    first = minio.run(jobs["before"], shell)
    assert first.returncode == 0, first.stderr
    assert _app_users(minio.users()) == dict([old]), "the first run prunes a stale user of the stack's policy"
    state = json.loads(minio.state.read_text())
    storage = load_environment(ENV_NAME)[1].storage
    assert state["buckets"] == [storage.bucket] and state["url"] == f"http://minio:{storage.port}"
    statements = state["policies"][OURS]["Statement"]
    assert {r for s in statements for r in s["Resource"]} == {
        "arn:aws:s3:::telestack-staging", "arn:aws:s3:::telestack-staging/*"}, "the policy is bucket-scoped"

    window = minio.run(jobs["window"], shell)
    assert window.returncode == 0, window.stderr
    assert _app_users(minio.users()) == dict([old, new]), "window: the old and the new pair both work"

    finished = minio.run(jobs["finished"], shell)
    assert finished.returncode == 0, finished.stderr
    assert _app_users(minio.users()) == dict([new]), "after --finish + up the old key is refused"
    assert f"removed app user {old[0]}" in finished.stdout

    before_rerun, calls = minio.users(), len(minio.calls())
    again = minio.run(jobs["finished"], shell)
    assert again.returncode == 0, again.stderr
    assert minio.users() == before_rerun, "a re-run changes nothing"
    assert not [c for c in minio.calls()[calls:] if c[:3] == ["admin", "user", "rm"]]

    users = minio.users()
    assert {k: users[k] for k in FOREIGN} == FOREIGN, "users the stack does not own are never touched"
    (tmp_path / "fresh").mkdir()  # a window job alone (e.g. MinIO's volume recreated mid-window) adds both
    fresh = FakeMinio(tmp_path / "fresh", fmt)
    assert fresh.run(jobs["window"], shell).returncode == 0
    assert _app_users(fresh.users()) == dict([old, new])
    secrets = [v for _, values in phases.values() for k, v in values.items()
               if "Secret" in k or k.startswith("minioRoot")]
    logged = minio.log.read_text() + "".join(r.stdout + r.stderr for r in (first, window, finished, again))
    assert not [s for s in secrets if s in logged], "a secret reached mc's argv or the job's output"


def test_job_refuses_the_root_user_as_app_identity(phases: dict[str, Any], tmp_path: Path) -> None:
    minio = FakeMinio(tmp_path, "lines")
    job = _container(phases["before"][0], "minio-bucket")
    root = INITIAL["minioRootUser"]
    envs = [e.replace(INITIAL["s3AccessKeyId"], root) for e in unwrap(job.inputs["envs"])]
    job = dataclasses.replace(job, inputs={**job.inputs, "envs": envs})
    result = minio.run(job, "sh")
    assert result.returncode == 1 and "give MinIO a root user of its own" in result.stderr
    assert _app_users(minio.users()) == {k: u["secret"] for k, u in STALE.items()}, "nothing was changed"


class FailingJob(Recorder):
    """The docker provider's answer for a job container that exited non-zero (attach: it waited)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        urn, outputs = super().new_resource(args)
        if args.typ.endswith("container:Container") and args.inputs["name"].endswith("-minio-bucket"):
            assert args.inputs.get("attach") is True and args.inputs.get("mustRun") is False
            outputs["exitCode"] = 1
        return urn, outputs


def test_a_failing_job_fails_the_deploy_naming_its_container() -> None:
    ok = _render(INITIAL)
    assert _container(ok, "minio-bucket").inputs["attach"] is True  # up waits for the job
    failed = rf"job container telestack-{ENV_NAME}-minio-bucket exited with code 1"
    with pytest.raises(pulumi.RunError, match=failed):
        _render(INITIAL, FailingJob())


# --- the root pair: declared, generated, required -------------------------------------------------


@pytest.mark.parametrize("key", list(MINIO_SECRET_KEYS))
def test_missing_minio_root_pair_is_named(key: str) -> None:
    message = rf"telestack:{key}: not set \(storage\.kind minio needs it\): run scripts/secrets\.py"
    with pytest.raises(StackConfigError, match=message):
        run_stack(ENV_NAME, config={f"telestack:{key}": ""})


def test_root_pair_is_declared_generated_for_minio_stacks_only_and_fits_minio() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in MINIO_SECRET_KEYS:  # cloud-only: an empty default, so other stacks need not set it
        entry = declared[f"telestack:{key}"]
        assert entry["default"] == "" and not entry.get("secret") and entry["description"], key
    script = load_script("secrets", "telestack_secrets_script")
    assert set(MINIO_SECRET_KEYS) <= set(script.wanted_keys("staging", None))
    assert not set(MINIO_SECRET_KEYS) & set(script.wanted_keys("dev", None))  # seaweedfs
    assert not set(MINIO_SECRET_KEYS) & set(script.wanted_keys("prod", None))  # external
    user, password = (script.generate(kind) for _, kind in MINIO_SECRET_KEYS.values())
    assert len(user) >= 3 and len(password) >= 8, "MinIO's minimum root user/password lengths"
