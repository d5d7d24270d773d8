"""rotate-secrets for S3 keys on an external S3 (``storage.kind: external``: R2, B2, ...).

No API here can mint a key there, so the operator brings the new pair (env or stdin, never argv); the
old pair is kept as ``…Previous`` for the window (the gateway signs with the new pair at once, URLs
presigned with the old one work while the provider keeps the old key), and ``--finish`` says which key
to delete at the provider, by its access key id, never showing a secret. Config is an in-memory store.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.endpoints import cloud_endpoints
from infra.gateway_bindings import gateway_bindings
from scripts.ops import rotate, stack
from scripts.ops.cli import main
from scripts.ops.console import Console, ExitStatus, OpsError
from tests.support.ops import MemoryConfig
from tests.support.paths import ROOT
from tests.support.stack_settings import resolve, stack_settings

OLD = {
    "centrifugoTokenSecret": "t0-old-token",
    "s3AccessKeyId": "AKOLDEXTERNAL0000",
    "s3SecretAccessKey": "old-external-secret-0000",
    "adminKey": "admin-old-000",
    "centrifugoApiKey": "api-old-000",
    "authApiKey": "authold0000000000000000",
}
NEW_ID, NEW_SECRET = "AKNEWFROMPROVIDER01", "new-external-secret-1111"
ID_ENV, SECRET_ENV = rotate.NEW_S3_ENV


def _console(json_mode: bool = False) -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO(), json_mode=json_mode)


def _text(c: Console) -> str:
    return c.stdout.getvalue() + c.stderr.getvalue()  # type: ignore[attr-defined]


def _args(**kw: object) -> argparse.Namespace:
    base = {"only": "s3", "overlap": 600, "finish": False, "force": False, "dry_run": False}
    return argparse.Namespace(**(base | {"no_apply": False} | kw))


def _start(config: MemoryConfig, c: Console, environ: dict[str, str], stdin: str | None = None) -> ExitStatus:
    return rotate.execute(_args(), config, c, storage_kind="external", environ=environ,
                          stdin=io.StringIO(stdin) if stdin is not None else None)


def test_new_pair_from_env_becomes_current_and_the_old_pair_previous() -> None:
    config, c = MemoryConfig(OLD), _console()
    assert _start(config, c, {ID_ENV: NEW_ID, SECRET_ENV: NEW_SECRET}) == ExitStatus.OK
    v = config.values
    assert (v["s3AccessKeyId"], v["s3SecretAccessKey"]) == (NEW_ID, NEW_SECRET)
    assert (v["s3AccessKeyIdPrevious"], v["s3SecretAccessKeyPrevious"]) == (OLD["s3AccessKeyId"],
                                                                          OLD["s3SecretAccessKey"])
    assert int(v["s3AccessKeyIdPreviousValidUntil"]) > 0 and config.applied == 1
    assert "old key works at your provider" in _text(c)
    assert NEW_SECRET not in _text(c) and OLD["s3SecretAccessKey"] not in _text(c)
    # the gateway signs with the new pair at once (what `pulumi up` gives the Worker)
    def worker_secrets() -> dict[str, Any]:
        s = stack_settings(config.values, env_name="prod")  # prod: storage.kind external
        return gateway_bindings(s.environment, s.secrets, cloud_endpoints(s.environment)).secret

    gateway = resolve(worker_secrets)
    assert (gateway["S3_ACCESS_KEY_ID"], gateway["S3_SECRET_ACCESS_KEY"]) == (NEW_ID, NEW_SECRET)


def test_new_pair_from_two_lines_on_stdin() -> None:
    config = MemoryConfig(OLD)
    assert _start(config, _console(), {}, stdin=f"{NEW_ID}\n{NEW_SECRET}\n") == ExitStatus.OK
    assert (config.values["s3AccessKeyId"], config.values["s3SecretAccessKey"]) == (NEW_ID, NEW_SECRET)
    assert config.values["s3AccessKeyIdPrevious"] == OLD["s3AccessKeyId"]


@pytest.mark.parametrize(
    ("environ", "stdin", "missing"),
    [
        ({}, None, f"Missing: {ID_ENV}, {SECRET_ENV}"),
        ({}, "", f"Missing: {ID_ENV}, {SECRET_ENV}"),
        ({ID_ENV: NEW_ID}, None, f"Missing: {SECRET_ENV}"),
        ({}, f"{NEW_ID}\n", f"Missing: {SECRET_ENV}"),
    ],
)
def test_missing_new_pair_is_refused_before_any_change(environ: dict[str, str], stdin: str | None,
                                                       missing: str) -> None:
    config = MemoryConfig(OLD)
    with pytest.raises(OpsError, match=missing) as err:
        _start(config, _console(), environ, stdin)
    assert err.value.status == ExitStatus.USAGE == 2
    assert config.values == OLD and config.applied == 0


def test_the_current_key_is_not_a_new_one() -> None:
    config = MemoryConfig(OLD)
    with pytest.raises(OpsError, match="new access key id is the current one") as err:
        _start(config, _console(), {ID_ENV: OLD["s3AccessKeyId"], SECRET_ENV: NEW_SECRET})
    assert err.value.status == ExitStatus.USAGE and config.values == OLD


def test_rotating_everything_without_the_pair_changes_no_other_secret() -> None:
    """The pair is checked before the first write: no half-done rotation of the other secrets."""
    config = MemoryConfig(OLD)
    with pytest.raises(OpsError):
        rotate.execute(_args(only=None), config, _console(), storage_kind="external", environ={}, stdin=None)
    assert config.values == OLD


@pytest.mark.parametrize("json_mode", [False, True])
def test_finish_names_the_old_access_key_id_to_delete_and_never_a_secret(json_mode: bool) -> None:
    config = MemoryConfig(OLD)
    _start(config, _console(), {ID_ENV: NEW_ID, SECRET_ENV: NEW_SECRET})
    c = _console(json_mode)
    assert rotate.execute(_args(finish=True, force=True), config, c, storage_kind="external", environ={},
                          stdin=None) == ExitStatus.OK
    step = f"delete the old key {OLD['s3AccessKeyId']} at your provider"
    if json_mode:
        (outcome,) = json.loads(c.stdout.getvalue())["outcomes"]  # type: ignore[attr-defined]
        assert outcome["action"] == "finished" and step in outcome["detail"]
    else:
        assert step in c.stdout.getvalue()  # type: ignore[attr-defined]
    assert not [s for s in (OLD["s3SecretAccessKey"], NEW_SECRET) if s in _text(c)]
    assert "s3AccessKeyIdPrevious" not in config.values and "s3SecretAccessKeyPrevious" not in config.values
    assert config.values["s3AccessKeyId"] == NEW_ID and config.applied == 2


def test_finish_before_the_window_ends_is_refused_and_dry_run_names_the_key() -> None:
    config = MemoryConfig(OLD)
    _start(config, _console(), {ID_ENV: NEW_ID, SECRET_ENV: NEW_SECRET})
    with pytest.raises(OpsError, match="window runs until"):
        rotate.execute(_args(finish=True), config, _console(), storage_kind="external", environ={},
                       stdin=None)
    c = _console()
    rotate.execute(_args(finish=True, force=True, dry_run=True), config, c, storage_kind="external",
                   environ={}, stdin=None)
    assert f"would be removed; NEXT: delete the old key {OLD['s3AccessKeyId']}" in c.stdout.getvalue()  # type: ignore[attr-defined]
    assert config.values["s3AccessKeyIdPrevious"] == OLD["s3AccessKeyId"]


# --- through the CLI: the storage kind comes from the stack's environment file ---------------------


@pytest.fixture
def cli_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MemoryConfig:
    """`--stack ext` whose environment file is config/environments/prod.yaml's (kind external)."""
    (tmp_path / "config" / "environments").mkdir(parents=True)
    shutil.copy(ROOT / "config/environments/prod.yaml", tmp_path / "config/environments/ext.yaml")
    config = MemoryConfig(OLD)
    monkeypatch.setenv("TELESTACK_ROOT", str(tmp_path))
    monkeypatch.setattr(stack, "resolve", lambda name, *a, **k: stack.Target(stack=name or ""))
    monkeypatch.setattr(rotate, "PulumiConfig", lambda pulumi, name: config)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # nothing piped
    for name in rotate.NEW_S3_ENV:
        monkeypatch.delenv(name, raising=False)
    return config


def test_cli_refuses_a_missing_pair_with_exit_2(cli_stack: MemoryConfig) -> None:
    c = _console()
    assert main(["rotate-secrets", "--stack", "ext", "--only", "s3"], c) == 2
    assert ID_ENV in c.stderr.getvalue() and cli_stack.values == OLD  # type: ignore[attr-defined]


def test_cli_takes_the_pair_from_env(cli_stack: MemoryConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ID_ENV, NEW_ID)
    monkeypatch.setenv(SECRET_ENV, NEW_SECRET)
    c = _console()
    assert main(["rotate-secrets", "--stack", "ext", "--only", "s3"], c) == 0
    assert cli_stack.values["s3AccessKeyId"] == NEW_ID and NEW_SECRET not in _text(c)
    c = _console()
    assert main(["rotate-secrets", "--stack", "ext", "--only", "s3", "--finish", "--force"], c) == 0
    assert f"delete the old key {OLD['s3AccessKeyId']} at your provider" in c.stdout.getvalue()  # type: ignore[attr-defined]


def test_storage_kind_is_read_from_the_environment_file(tmp_path: Path) -> None:
    c = _console()
    assert rotate.stack_storage_kind(MemoryConfig({"environment": "prod"}), "x", ROOT, c) == "external"
    assert rotate.stack_storage_kind(MemoryConfig({}), "staging", ROOT, c) == "minio"
    assert rotate.stack_storage_kind(MemoryConfig({}), "dev", ROOT, c) == "seaweedfs"
    assert rotate.stack_storage_kind(MemoryConfig({}), "nosuchstack", ROOT, c) == "seaweedfs"
    assert "no environment file 'nosuchstack'" in c.stderr.getvalue()  # type: ignore[attr-defined]
    (tmp_path / "config" / "environments").mkdir(parents=True)
    (tmp_path / "config/environments/broken.yaml").write_text("target: docker\nstorage: {kind: ftp}\n")
    with pytest.raises(OpsError, match="cannot tell the stack's storage.kind: .*broken.yaml") as err:
        rotate.stack_storage_kind(MemoryConfig({}), "broken", tmp_path, c)
    assert err.value.status == ExitStatus.USAGE


# --- MinIO's own root pair: a cut-over, and only where MinIO runs ----------------------------------

ROOT_PAIR = {"minioRootUser": "TSROOTOLD000000001", "minioRootPassword": "root-old-password-000000001"}


def test_minio_root_pair_is_a_cut_over_on_minio_stacks() -> None:
    config = MemoryConfig(OLD | ROOT_PAIR)
    c = _console()
    args = _args(only="minio-root")
    assert rotate.execute(args, config, c, storage_kind="minio", environ={}, stdin=None) == ExitStatus.OK
    user, password = config.values["minioRootUser"], config.values["minioRootPassword"]
    assert user != ROOT_PAIR["minioRootUser"] and password != ROOT_PAIR["minioRootPassword"]
    assert len(user) >= 3 and len(password) >= 8  # MinIO's own minimums for a root pair
    assert not [k for k in config.values if k.startswith("minioRoot") and k.endswith(("Previous", "Until"))]
    assert config.applied == 1 and "cut-over" in c.stdout.getvalue()  # type: ignore[attr-defined]
    assert password not in _text(c) and ROOT_PAIR["minioRootPassword"] not in _text(c)
    assert {k: config.values[k] for k in OLD} == OLD, "the stack's other secrets (its S3 pair too) changed"


def test_rotating_everything_includes_the_minio_root_only_where_minio_runs() -> None:
    assert "minio-root" in {s.name for s in rotate.select(None, "minio")}
    assert "minio-root" not in {s.name for s in rotate.select(None, "seaweedfs")}
    assert "minio-root" not in {s.name for s in rotate.select(None, "external")}
    with pytest.raises(OpsError, match="storage.kind minio") as err:
        rotate.select("minio-root", "seaweedfs")
    assert err.value.status == ExitStatus.USAGE
