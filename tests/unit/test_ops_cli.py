"""The ops CLI's contract: exit codes, stdout/stderr split, --json, no secret printed, rotation rules."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from infra import services
from infra.endpoints import local_endpoints
from infra.gateway_bindings import gateway_bindings
from scripts.ops import archive, rotate, stack
from scripts.ops.cli import build_parser, main
from scripts.ops.console import Console, ExitStatus, OpsError
from tests.support.ops import MemoryConfig
from tests.support.paths import free_port
from tests.support.stack_settings import resolve, stack_settings

SUBCOMMANDS = {"migrate", "backup", "restore", "rotate-secrets", "drain-outbox", "health", "status", "seed",
               "delete-user", "account-deletions", "roles"}


def _console() -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO())


def _out(c: Console) -> str:
    return c.stdout.getvalue()  # type: ignore[attr-defined]


def _err(c: Console) -> str:
    return c.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TELESTACK_"):
            monkeypatch.delenv(key)


def test_every_subcommand_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == SUBCOMMANDS  # type: ignore[arg-type]
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "-h"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert f"python -m scripts.ops {name}" in text and "--stack" in text and "--json" in text


def test_docs_cover_every_subcommand() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    for name in SUBCOMMANDS:
        assert f"python -m scripts.ops {name}" in doc, f"docs/runbooks.md does not show `{name}`"
    assert "python -m tests.smoke" in doc


def test_unknown_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as done:
        main(["explode"], _console())
    assert done.value.code == ExitStatus.USAGE


def test_exit_status_values_are_the_documented_ones() -> None:
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 3, 4, 130]


def test_health_names_the_down_dependency_and_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = free_port()
    monkeypatch.setenv("TELESTACK_GATEWAY_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("TELESTACK_CENTRIFUGO_API_URL", f"http://127.0.0.1:{closed}/api")
    monkeypatch.setenv("TELESTACK_CENTRIFUGO_API_KEY", "super-secret-api-key")
    c = _console()
    assert main(["health", "--json"], c) == ExitStatus.DEPENDENCY_UNHEALTHY
    doc = json.loads(_out(c))
    assert doc["healthy"] is False and doc["unhealthy"] == ["gateway", "realtime"]
    assert "super-secret-api-key" not in _out(c) + _err(c)


def test_health_with_nothing_to_probe_is_a_usage_error() -> None:
    c = _console()
    assert main(["health"], c) == ExitStatus.USAGE
    assert "no dependency" in _err(c)


def test_restore_refuses_to_switch_without_a_way_to_stop_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELESTACK_DB_PATH", str(tmp_path / "db.sqlite3"))
    c = _console()
    assert main(["restore", str(tmp_path / "x.tar.gz")], c) == ExitStatus.USAGE
    assert "--services-stopped" in _err(c)


def test_restore_of_a_missing_archive_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELESTACK_DB_PATH", str(tmp_path / "db.sqlite3"))
    c = _console()
    assert main(["restore", "--dry-run", "--json", str(tmp_path / "nope.tar.gz")], c) == ExitStatus.USAGE
    assert json.loads(_out(c))["status"] == 2


def test_console_redacts_registered_secrets() -> None:
    c = _console()
    c.register_secret("hunter2-secret", None, "")
    c.progress("using key hunter2-secret now")
    c.result({"k": "hunter2-secret"}, "done hunter2-secret")
    assert "hunter2" not in _out(c) + _err(c) and "***" in _err(c)


def test_target_repr_never_shows_secrets() -> None:
    t = stack.from_mapping(
        {"gateway_url": "http://x", "admin_key": "adm1n-key", "TELESTACK_S3_SECRET_ACCESS_KEY": "s3cr3t"}
    )
    assert t.gateway_url == "http://x" and t.s3_secret_access_key == "s3cr3t"
    assert "adm1n-key" not in repr(t) and "s3cr3t" not in repr(t)
    assert set(t.secrets()) == {"adm1n-key", "s3cr3t"}


def test_local_layout_is_derived_from_outputs_when_not_exported() -> None:
    derived = stack.local_layout({"logs_dir": "/s/logs", "services": ["gateway", "auth", "centrifugo"]})
    assert derived["db_path"] == "/s/data/gateway/gateway.sqlite3"
    assert derived["auth_db_path"] == "/s/data/auth/supertokens.sqlite3"
    assert derived["pid_files"]["centrifugo"] == "/s/run/centrifugo/pid"
    assert stack.local_layout({"db_path": "/x", "logs_dir": "/s/logs"}) == {}


def test_env_overrides_stack_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakePulumi:
        def outputs(self, name: str) -> dict[str, str]:
            return {"gateway_url": "http://from-stack", "s3_bucket": "b"}

    monkeypatch.setenv("TELESTACK_GATEWAY_URL", "http://from-env")
    t = stack.resolve("local", pulumi=FakePulumi())  # type: ignore[arg-type]
    assert t.stack == "local" and t.gateway_url == "http://from-env" and t.s3_bucket == "b"


def test_manifest_emptiness_counts_documents_objects_and_users() -> None:
    m = archive.Manifest(
        "s", "t", counts={"database": {"documents": 0, "_migrations": 3}, "auth": {"users": 0}}
    )
    assert m.empty and m.summary() == {"documents": 0, "users": 0, "objects": 0, "empty": True}
    m.counts["auth"]["users"] = 2
    assert not m.empty


# ------------------------------------------------------------------------------ rotation rules


ALL = {
    "centrifugoTokenSecret": "t0-old-token",
    "s3AccessKeyId": "AKOLD0000",
    "s3SecretAccessKey": "sk-old-000",
    "adminKey": "admin-old-000",
    "centrifugoApiKey": "api-old-000",
    "authApiKey": "authold0000000000000000",
}


def test_rotation_start_keeps_previous_values_with_a_deadline_and_prints_none() -> None:
    config, c = MemoryConfig(ALL), _console()
    outcomes = rotate.start(config, rotate.select(None, "seaweedfs"), 600, c, now=1000.0)
    assert {o.name: o.action for o in outcomes} == {
        "centrifugo-token": "rotated",
        "s3": "rotated",
        "admin": "rotated",
        "auth-api": "rotated",
        "centrifugo-api": "cut-over",
    }
    assert all(ch in "0123456789abcdef" for ch in config.values["authApiKey"])  # SuperTokens' key rule
    v = config.values
    assert (
        v["centrifugoTokenSecretPrevious"] == "t0-old-token"
        and v["centrifugoTokenSecretPreviousValidUntil"] == "1600"
    )
    assert v["s3AccessKeyIdPrevious"] == "AKOLD0000" and v["s3SecretAccessKeyPrevious"] == "sk-old-000"
    assert "centrifugoApiKeyPrevious" not in v  # Centrifugo accepts one API key: cut-over
    assert all(v[k] != ALL[k] for k in ALL) and config.applied == 1
    for value in [*ALL.values(), v["adminKey"], v["s3SecretAccessKey"]]:
        assert value not in _out(c) + _err(c)


def test_a_second_start_during_the_window_is_refused() -> None:
    config = MemoryConfig(ALL)
    rotate.start(config, [rotate.BY_NAME["admin"]], 600, _console(), now=1000.0)
    snapshot = dict(config.values)
    with pytest.raises(OpsError, match="already in progress"):
        rotate.start(config, [rotate.BY_NAME["admin"]], 600, _console(), now=1100.0)
    assert config.values == snapshot


def test_finish_waits_for_the_window_unless_forced_and_is_idempotent() -> None:
    config = MemoryConfig(ALL)
    rotate.start(config, [rotate.BY_NAME["s3"]], 600, _console(), now=1000.0)
    with pytest.raises(OpsError, match="runs until"):
        rotate.finish(config, [rotate.BY_NAME["s3"]], _console(), now=1200.0)
    done = rotate.finish(config, [rotate.BY_NAME["s3"]], _console(), now=1601.0)
    assert [o.action for o in done] == ["finished"] and "s3AccessKeyIdPrevious" not in config.values
    again = rotate.finish(config, [rotate.BY_NAME["s3"]], _console(), now=1700.0)
    assert [o.action for o in again] == ["skipped"] and config.applied == 2


def test_dry_run_changes_nothing() -> None:
    config = MemoryConfig(ALL)
    outcomes = rotate.start(config, rotate.select(None, "seaweedfs"), 600, _console(), dry_run=True)
    assert config.values == ALL and config.applied == 0
    assert {o.action for o in outcomes} == {"would-rotate"}


def test_unknown_secret_name_is_a_usage_error() -> None:
    with pytest.raises(OpsError) as err:
        rotate.select("admin,nope")
    assert err.value.status == ExitStatus.USAGE


def _applied(config: MemoryConfig) -> dict[str, dict[str, Any]]:
    """What `pulumi up` gives each component for the config: the stack's own spec builders and bindings."""
    def build() -> dict[str, Any]:
        s = stack_settings(config.values)
        bindings = gateway_bindings(s.environment, s.secrets, local_endpoints(s.environment))
        return {
            "centrifugo": dict(services.centrifugo(s).secret_env),
            "seaweedfs": dict(services.seaweedfs(s).secret_env),
            "auth": dict(services.supertokens_standin(s).secret_env),
            "gateway": {**bindings.plain, **bindings.secret},
        }

    return resolve(build)


def test_the_stack_carries_the_previous_values_only_during_a_rotation() -> None:
    config = MemoryConfig(ALL)
    before = _applied(config)
    assert "CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY" not in before["centrifugo"]
    s3 = before["seaweedfs"]
    assert (s3["AWS_ACCESS_KEY_ID"], s3["AWS_SECRET_ACCESS_KEY"]) == ("AKOLD0000", "sk-old-000")
    assert not set(services.S3_PREVIOUS_ENV) & set(s3)
    rotate.start(config, rotate.select(None, "seaweedfs"), 600, _console(), now=1000.0)
    during = _applied(config)
    assert during["centrifugo"]["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY"] == "t0-old-token"
    assert during["centrifugo"]["CENTRIFUGO_CLIENT_TOKEN_HMAC_PREVIOUS_SECRET_KEY_VALID_UNTIL"] == "1600"
    previous_pair = tuple(during["seaweedfs"][name] for name in services.S3_PREVIOUS_ENV)
    assert previous_pair == ("AKOLD0000", "sk-old-000")
    assert during["gateway"]["ADMIN_KEY_PREVIOUS"] == "admin-old-000"
    assert during["gateway"]["S3_ACCESS_KEY_ID"] == config.values["s3AccessKeyId"]
    assert during["auth"]["SUPERTOKENS_API_KEYS"] == f"{config.values['authApiKey']},authold0000000000000000"
    assert during["gateway"]["AUTH_API_KEY"] == config.values["authApiKey"]
