"""A supervised local process as a Pulumi dynamic resource.

``pulumi-command`` cannot be built here (its provider module has no tags the
Go proxy serves), so the local renderer realises each service through this
dynamic provider instead. Lifecycle:

- **create** writes the config files, refuses a port that is already in use
  (naming it and the setting that chose it), starts the program detached in
  its own session with a pid file and a log file under the state folder, and
  waits for the health check, or stops it and fails with the log's last lines;
- **diff** reports a change when the spec changed *or the process is no longer
  running*, so a plain ``pulumi up`` restarts a killed service;
- **update** restarts that one service; **delete** stops it (SIGTERM to its
  process group, SIGKILL after ``stop_timeout``). A stop returns only once every
  process of the group is gone and none of the service's ports accepts
  connections any more (bounded by ``stop_timeout``), so the restarted
  service's port check never trips over its own predecessor;
- **read** (``pulumi refresh``) reports a dead process as gone.

A pid is trusted only together with its kernel start time, so a recycled pid
is never signalled. Secrets arrive in ``secret_env`` (a Pulumi secret, so the
state encrypts it) and reach the child through its environment only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.dynamic import Resource as DynamicResource

from infra import seaweedfs_registration
from infra.provider_host import loadable

#: inputs whose change restarts the service
SPEC_KEYS = (
    "argv", "cwd", "env", "secret_env", "files", "config_dir", "data_dir", "host", "ports", "health", "ready"
)
#: variables a child inherits from the engine; everything else comes from the spec
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE")
_LOG_TAIL = 30
#: children started by this provider process, kept so they are reaped (no zombies) while it lives
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
#: health checks go straight to the loopback address, whatever HTTP(S)_PROXY says
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceError(RuntimeError):
    """A service could not start; the message says which one and why (never a secret)."""


# --- process identity ----------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    return fields[19]


def _read_pidfile(pid_file: str) -> dict[str, Any] | None:
    try:
        return json.loads(Path(pid_file).read_text())
    except (FileNotFoundError, ValueError):
        return None


def running_pid(pid_file: str) -> int | None:
    """The pid recorded in ``pid_file`` if that very process is still alive."""
    rec = _read_pidfile(pid_file)
    if not rec:
        return None
    pid = int(rec["pid"])
    return pid if _start_time(pid) == rec.get("start_time") else None


# --- start / stop --------------------------------------------------------------------------------


def _port_in_use(host: str, port: int) -> bool:
    """Something accepts connections there. (A bind probe would also trip over the FIN-WAIT sockets a
    killed server leaves behind, which do not stop the restarted server from binding.)"""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _log_tail(log_file: str, offset: int) -> str:
    try:
        with open(log_file, "rb") as fh:
            fh.seek(offset)
            lines = deque(fh, maxlen=_LOG_TAIL)
    except FileNotFoundError:
        return "(no log)"
    return "".join(line.decode("utf-8", "replace") for line in lines).rstrip() or "(log is empty)"


def _healthy(props: dict[str, Any]) -> bool:
    """The health check and then every readiness check pass (a service without any counts as healthy)."""
    checks = [props["health"]] if props.get("health") else []
    return all(_passes(props, check) for check in [*checks, *(props.get("ready") or [])])


def _passes(props: dict[str, Any], health: dict[str, Any]) -> bool:
    host = props["host"]
    port = int(props["ports"][health["port"]]["number"])
    if health["kind"] == "seaweedfs_volumes":
        return seaweedfs_registration.ready(host, port, int(props["ports"][health["volume_port"]]["number"]))
    if health["kind"] == "tcp":
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False
    url = f"http://{host}:{port}{health['path']}"
    try:
        with _NO_PROXY.open(url, timeout=2) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError):
        return False
    return status in health["ok_status"]


def _child_env(props: dict[str, Any]) -> dict[str, str]:
    env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
    env.update({k: str(v) for k, v in (props.get("env") or {}).items()})
    env.update({k: str(v) for k, v in (props.get("secret_env") or {}).items()})
    return env


def start(props: dict[str, Any]) -> dict[str, Any]:
    """Start the service and wait until healthy; returns the runtime outputs (pid, log file)."""
    name = props["name"]
    for port_name, port in sorted((props.get("ports") or {}).items()):
        number = int(port["number"])  # the engine hands numbers back as floats
        if _port_in_use(props["host"], number):
            where = f" (set by {port['setting']})" if port.get("setting") else ""
            raise ServiceError(
                f"{name}: port {number} ({port_name}) on {props['host']} is already in use{where}; "
                f"stop whatever listens there or choose another port"
            )
    config_dir = Path(props["config_dir"])
    config_dir.mkdir(parents=True, exist_ok=True)
    for rel, content in (props.get("files") or {}).items():
        (config_dir / rel).write_text(content, encoding="utf-8")
    if props.get("data_dir"):
        Path(props["data_dir"]).mkdir(parents=True, exist_ok=True)
    log_file = Path(props["log_file"])
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"--- telestack: starting {name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
        offset = log.tell()
        proc = subprocess.Popen(
            props["argv"],
            cwd=props["cwd"],
            env=_child_env(props),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    ports = {name: int(port["number"]) for name, port in (props.get("ports") or {}).items()}
    write_pid_file(props["pid_file"], proc.pid, host=props["host"], ports=ports)
    deadline = time.monotonic() + float(props["start_timeout"])
    while True:
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            Path(props["pid_file"]).unlink(missing_ok=True)
            raise ServiceError(
                f"{name} exited with status {proc.returncode} during start-up; last lines of {log_file}:\n"
                + _log_tail(str(log_file), offset)
            )
        if _healthy(props):
            break
        if time.monotonic() > deadline:
            stop(props)
            proc.poll()
            raise ServiceError(
                f"{name} did not pass its health check within {int(props['start_timeout'])} s; "
                f"last lines of {log_file}:\n" + _log_tail(str(log_file), offset)
            )
        time.sleep(0.2)
    return {"pid": proc.pid}


def write_pid_file(pid_file: str, pid: int, *, host: str = "127.0.0.1",
                   ports: dict[str, int] | None = None) -> None:
    """Record ``pid`` with its kernel start time (so a recycled pid is never trusted) and the ports it
    serves (so whoever stops it from the pid file alone, e.g. scripts/ops, waits for them too)."""
    Path(pid_file).parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "start_time": _start_time(pid), "host": host, "ports": ports or {}}
    Path(pid_file).write_text(json.dumps(record))


def stop(props: dict[str, Any]) -> None:
    """SIGTERM the service's process group, SIGKILL it after ``stop_timeout``; no-op when not running.

    Returns once the whole group is gone and the service's ports are released (bounded wait): the
    leader's exit alone proves neither (a child may still hold an inherited listening socket, the
    leader shows as a zombie while its other threads still tear down), and a restart right after a
    stop would otherwise fail its port check against the old instance.
    """
    _reap_exited()
    pid = running_pid(props["pid_file"])
    if pid is not None:
        _stop_group(pid, float(props.get("stop_timeout", 10)))
        wait_ports_released(props, float(props.get("stop_timeout", 10)))
    Path(props["pid_file"]).unlink(missing_ok=True)


def stop_recorded(pid_file: str, timeout: float = 10) -> None:
    """:func:`stop` for a caller that has only the pid file (scripts/ops): host and ports come from it."""
    rec = _read_pidfile(pid_file) or {}
    ports = {name: {"number": number} for name, number in (rec.get("ports") or {}).items()}
    stop({"pid_file": pid_file, "stop_timeout": timeout, "host": rec.get("host"), "ports": ports})


def _stop_group(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; returns once the process and its group are gone."""
    leader = _is_group_leader(pid)

    def alive() -> bool:
        _reap(pid)
        return _start_time(pid) is not None or (leader and bool(_group_members(pid)))

    _signal_group(pid, signal.SIGTERM, leader)
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive():
        _signal_group(pid, signal.SIGKILL, leader)
        deadline = time.monotonic() + timeout
        while alive() and time.monotonic() < deadline:  # SIGKILL cannot be ignored
            time.sleep(0.05)


def wait_ports_released(props: dict[str, Any], timeout: float) -> list[str]:
    """Wait up to ``timeout`` s until none of the service's ports accepts connections; the names still
    held (start()'s port check then reports them, naming the setting)."""
    host = props.get("host") or "127.0.0.1"
    ports = {name: int(p["number"]) for name, p in (props.get("ports") or {}).items()}
    deadline = time.monotonic() + timeout
    while True:
        held = sorted(name for name, number in ports.items() if _port_in_use(host, number))
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(0.1)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid  # start_new_session made the service a group leader
    except ProcessLookupError:
        return False


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``: a pgid is not reused while one remains."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _signal_group(pid: int, sig: signal.Signals, leader: bool) -> None:
    try:
        # signal its children too; the group outlives its leader, so killpg works after it exited
        if leader:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def _reap_exited() -> None:
    """Wait for every child of ours that already exited: one that died on its own (a crash, a kill)
    is no longer running by its pid file, so no stop would reap it; it would stay a zombie, and its
    Popen unwaited (a "still running" ResourceWarning), for as long as this process lives."""
    for pid in list(_CHILDREN):
        _reap(pid)


# --- the provider ----------------------------------------------------------------------------------


@loadable
class LocalProcessProvider(ResourceProvider):
    """CRUD for :class:`LocalProcess`; stateless. Loaded in Pulumi's provider host by
    :mod:`infra.provider_host`'s rule, so ``pulumi up`` needs no ``PYTHONPATH``."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            CheckFailure(k, f"{k} is required")
            for k in ("name", "argv", "pid_file", "log_file")
            if not news.get(k)
        ]
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        stop(props)  # a survivor of a lost state file must not hold the ports
        outs = start(props)
        return CreateResult(props["name"], {**props, **outs})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in SPEC_KEYS if olds.get(k) != news.get(k)]
        dead = running_pid(olds.get("pid_file", "")) is None if olds.get("pid_file") else True
        replaces = ["pid_file"] if olds.get("pid_file") != news.get("pid_file") else []
        return DiffResult(
            changes=bool(changed or dead or replaces), replaces=replaces, delete_before_replace=True
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        stop(olds)
        return UpdateResult({**news, **start(news)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        stop(props)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if not props.get("pid_file") or running_pid(props["pid_file"]) is None:
            return ReadResult(None, {})
        return ReadResult(id_, props)


class LocalProcess(DynamicResource, module="telestack", name="LocalProcess"):
    """One running service: argv + env + config files + ports + health check."""

    pid: pulumi.Output[int]
    log_file: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["secret_env"])
        super().__init__(
            LocalProcessProvider(), name, {**props, "pid": None}, pulumi.ResourceOptions.merge(opts, secret)
        )
