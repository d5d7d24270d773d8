"""Which stack we operate on: its outputs (URLs, keys, local file paths) and its Pulumi CLI.

Two sources, one shape: ``pulumi stack output --json --show-secrets`` for a
named stack, or ``TELESTACK_<NAME>`` environment variables (CI against a
stack it did not deploy). The environment wins, field by field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from scripts.ops.console import ExitStatus, OpsError

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("TELESTACK_BIN", Path.home() / ".cache/telestack/bin/current"))


@dataclass(frozen=True)
class Target:
    """Everything a client or a runbook needs to reach one stack. Secrets are ``repr=False``."""

    stack: str = ""
    gateway_url: str = ""
    admin_key: str = field(default="", repr=False)
    centrifugo_ws_url: str = ""
    centrifugo_api_url: str = ""
    centrifugo_api_key: str = field(default="", repr=False)
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    auth_url: str = ""
    auth_api_key: str = field(default="", repr=False)
    #: local stack only: the gateway's SQLite file (its D1) and the auth stand-in's store
    db_path: str = ""
    auth_db_path: str = ""
    state_dir: str = ""
    #: local stack only: service name -> pid file (restore stops a service through it)
    pid_files: dict[str, str] = field(default_factory=dict)
    #: cloud stacks: D1 export through the Cloudflare API
    cloudflare_account_id: str = ""
    d1_database_id: str = ""
    cloudflare_api_token: str = field(default="", repr=False)
    #: cloud stacks: SuperTokens Core's PostgreSQL, postgresql://user:pw@host:port/db (ops/pg_store.py)
    auth_db_url: str = field(default="", repr=False)
    #: the Cloudflare API root (default https://api.cloudflare.com/client/v4; tests point it at a fake)
    cloudflare_api_base: str = ""
    #: a stack with mail: Mailpit's web UI and HTTP API, where the smoke suite reads the stack's mail (the
    #: local Mailpit, or a cloud stack's mail relay, which keeps the newest message it relayed)
    mail_ui_url: str = ""
    #: cloud stacks with mail: the relay's key (its API asks for basic auth ``telestack:<key>``)
    mail_relay_key: str = field(default="", repr=False)

    @property
    def is_local(self) -> bool:
        return bool(self.db_path)

    def secrets(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self) if not f.repr and getattr(self, f.name)]

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            env = ", ".join(f"TELESTACK_{n.upper()}" for n in missing)
            raise OpsError(
                f"stack {self.stack or '(env)'} does not provide {', '.join(missing)} "
                f"(stack output or env {env})",
                ExitStatus.USAGE,
            )


def from_mapping(values: Mapping[str, Any], stack: str = "") -> Target:
    """Build a Target from output names (``gateway_url``) or env names (``TELESTACK_GATEWAY_URL``)."""
    kwargs: dict[str, Any] = {"stack": stack}
    for f in fields(Target):
        if f.name == "stack":
            continue
        for key in (f.name, f"TELESTACK_{f.name.upper()}"):
            raw = values.get(key)
            if raw in (None, ""):
                continue
            if f.name == "pid_files":
                kwargs[f.name] = dict(raw) if isinstance(raw, Mapping) else json.loads(str(raw))
            else:
                kwargs[f.name] = str(raw)
    return Target(**kwargs)


def local_layout(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Paths of a local stack derived from its outputs, as infra/render_local.py lays them out
    (``<state>/data/<service>/``, ``<state>/run/<service>/pid``), when the stack does not export them."""
    if "db_path" in outputs or not outputs.get("logs_dir"):
        return {}
    state = Path(str(outputs["logs_dir"])).parent
    services = list(outputs.get("services") or [])
    derived: dict[str, Any] = {
        "state_dir": str(state),
        "pid_files": {s: str(state / "run" / s / "pid") for s in services},
    }
    if "gateway" in services:
        derived["db_path"] = str(state / "data" / "gateway" / "gateway.sqlite3")
    if "auth" in services:
        derived["auth_db_path"] = str(state / "data" / "auth" / "supertokens.sqlite3")
    return derived


def resolve(stack: str | None, env: Mapping[str, str] | None = None, pulumi: Pulumi | None = None) -> Target:
    """Stack outputs overlaid with ``TELESTACK_*`` env; no stack means env only."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    if stack:
        outputs = (pulumi or Pulumi()).outputs(stack)
        merged.update(local_layout(outputs))
        merged.update(outputs)
    merged.update({k: v for k, v in env.items() if k.startswith("TELESTACK_")})
    return from_mapping(merged, stack or env.get("TELESTACK_STACK", ""))


class Pulumi:
    """The Pulumi CLI with the project's file backend and passphrase file, as scripts/up uses it."""

    def __init__(self, root: Path | None = None, binary: str | None = None) -> None:
        self.root = root or Path(os.environ.get("TELESTACK_ROOT") or ROOT)
        self.binary = binary or shutil.which(
            "pulumi", path=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        state = Path(env.get("TELESTACK_STATE_DIR") or self.root / ".telestack")
        env.setdefault("PULUMI_BACKEND_URL", f"file://{state / 'state'}")
        if "PULUMI_CONFIG_PASSPHRASE" not in env:
            env.setdefault("PULUMI_CONFIG_PASSPHRASE_FILE", str(state / "passphrase"))
        env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
        env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
        env.setdefault("PULUMI_HOME", str(state / "pulumi-home"))
        env.setdefault("PULUMI_PYTHON_CMD", str(self.root / ".venv" / "bin" / "python"))
        env["PATH"] = os.pathsep.join([str(BIN_DIR), str(self.root / ".venv" / "bin"), env.get("PATH", "")])
        # the program and its dynamic providers import `infra` and `worker` from the repository
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.root), env.get("PYTHONPATH", "")) if p)
        return env

    def argv(self, *args: str) -> tuple[list[str], dict[str, str]]:
        """Through scripts/bootstrap_env.sh when the repository has it: literally the scripts' env."""
        wrapper = self.root / "scripts" / "bootstrap_env.sh"
        if wrapper.exists():
            env = dict(os.environ, TELESTACK_ROOT=str(self.root))
            return ["bash", str(wrapper), "pulumi", *args, "--non-interactive"], env
        return [str(self.binary), *args, "--non-interactive"], self.env()

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if not self.binary and not (self.root / "scripts" / "bootstrap_env.sh").exists():
            raise OpsError(
                f"pulumi not found (looked in {BIN_DIR} and PATH): run scripts/bootstrap first",
                ExitStatus.DEPENDENCY_UNHEALTHY,
            )
        argv, env = self.argv(*args)
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, cwd=self.root, env=env, check=False
        )
        if check and proc.returncode != 0:
            # pulumi never prints decrypted secrets in errors; keep the error lines (stderr, else stdout's)
            lines = proc.stderr.strip().splitlines() or [
                line for line in proc.stdout.splitlines() if "error" in line.lower()
            ]
            tail = "\n".join(lines[-5:])
            raise OpsError(f"pulumi {args[0]} failed (exit {proc.returncode}): {tail}")
        return proc

    def outputs(self, stack: str) -> dict[str, Any]:
        proc = self.run("stack", "output", "--json", "--show-secrets", "--stack", stack)
        try:
            return dict(json.loads(proc.stdout or "{}"))
        except ValueError:
            raise OpsError(f"pulumi stack output for {stack} is not JSON") from None

    def set_secret(self, stack: str, key: str, value: str) -> None:
        """``pulumi config set --secret`` with the value on stdin, never in argv (``ps`` shows argv)."""
        self.run("config", "set", "--secret", "--stack", stack, key, stdin=value)

    def set_plain(self, stack: str, key: str, value: str) -> None:
        self.run("config", "set", "--stack", stack, key, value)

    def remove(self, stack: str, key: str) -> None:
        self.run("config", "rm", "--stack", stack, key, check=False)

    def get(self, stack: str, key: str) -> str | None:
        proc = self.run("config", "get", "--stack", stack, key, check=False)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else None

    def up(self, stack: str) -> None:
        self.run("up", "--stack", stack, "--yes", "--skip-preview")


class Switch(Protocol):
    """What a cloud restore needs of :class:`ConfigSwitch` (tests inject a recorder)."""

    def __call__(self, key: str, value: str) -> None: ...

    def current(self, key: str) -> str | None: ...


def rollback_command(stack: str, key: str, previous: str) -> str:
    """The commands that point ``telestack:<key>`` back at ``previous`` ("" = the key's default)."""
    flag = f" --stack {stack}" if stack else ""
    name = f"telestack:{key}"
    if previous:
        return f"pulumi config set{flag} {name} {previous} && pulumi up{flag}"
    return f"pulumi config rm{flag} {name} && pulumi up{flag}"


@dataclass
class ConfigSwitch:
    """Point a cloud stack at restored stores: plain stack-config values, then one ``pulumi up``.

    Restores into cloud stacks never write the live store: they build a new one, verify it, and
    only then switch the stack's reference to it (rollback = the previous value, then ``up``).
    Each verified store sets its key; :meth:`apply` runs ``up`` once, so a restore of the D1 and
    the auth store switches both together rather than leaving one ``up`` with a half-restored stack.
    """

    pulumi: Pulumi
    stack: str
    pending: dict[str, str] = field(default_factory=dict)

    def current(self, key: str) -> str | None:
        return self.pulumi.get(self.stack, key)

    def __call__(self, key: str, value: str) -> None:
        self.pulumi.set_plain(self.stack, key, value)
        self.pending[key] = value

    def apply(self) -> None:
        if self.pending:
            self.pulumi.up(self.stack)
            self.pending.clear()
