"""infra/local_process.py's provider against a real (tiny) process, without the Pulumi engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import local_process
from infra.local_process import LocalProcessProvider, ServiceError, running_pid
from tests.support.paths import free_port

SERVER = (
    "import http.server as h, os; "
    "h.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.SimpleHTTPRequestHandler).serve_forever()"
)


def _props(tmp_path: Path, port: int, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": "web",
        "argv": [sys.executable, "-c", SERVER],
        "cwd": str(tmp_path),
        "env": {"PORT": str(port)},
        "secret_env": {"WEB_TOKEN": "s3cr3t-value"},
        "files": {"index.html": "hello"},
        "config_dir": str(tmp_path / "run"),
        "data_dir": str(tmp_path / "data"),
        "host": "127.0.0.1",
        "ports": {"http": {"number": port, "setting": "test.yaml: web.port"}},
        "health": {"kind": "http", "port": "http", "path": "/", "ok_status": [200]},
        "pid_file": str(tmp_path / "run" / "pid"),
        "log_file": str(tmp_path / "logs" / "web.log"),
        "start_timeout": 20,
        "stop_timeout": 5,
    }
    props.update(over)
    return props


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProcessProvider]:
    p = LocalProcessProvider()
    yield p
    for pid_file in tmp_path.rglob("pid"):
        local_process.stop({"pid_file": str(pid_file), "stop_timeout": 1})


def test_create_starts_a_healthy_detached_process_and_delete_stops_it(
    provider: LocalProcessProvider, tmp_path: Path
) -> None:
    props = _props(tmp_path, free_port())
    result = provider.create(props)
    pid = running_pid(props["pid_file"])
    assert pid is not None and result.outs and result.outs["pid"] == pid
    assert os.getpgid(pid) == pid, "the service leads its own process group (setsid)"
    assert (tmp_path / "run" / "index.html").read_text() == "hello"
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"WEB_TOKEN=s3cr3t-value" in environ and not any(e.startswith(b"PULUMI_") for e in environ)
    assert "s3cr3t" not in Path(props["log_file"]).read_text()
    provider.delete("web", props)
    assert running_pid(props["pid_file"]) is None and not Path(props["pid_file"]).exists()
    assert local_process._start_time(pid) is None


def test_diff_sees_a_killed_process_and_a_changed_spec(
    provider: LocalProcessProvider, tmp_path: Path
) -> None:
    props = _props(tmp_path, free_port())
    outs = {**props, **(provider.create(props).outs or {})}
    assert provider.diff("web", outs, props).changes is False
    assert provider.diff("web", outs, {**props, "env": {**props["env"], "X": "1"}}).changes is True
    assert provider.read("web", outs).id == "web"
    os.kill(outs["pid"], signal.SIGKILL)
    while local_process._start_time(outs["pid"]) is not None:  # None once a zombie: not reaped here
        time.sleep(0.05)
    assert provider.diff("web", outs, props).changes is True
    assert provider.read("web", outs).id is None, "refresh reports a dead service as gone"
    restarted = provider.update("web", outs, props).outs or {}
    assert restarted["pid"] != outs["pid"] and running_pid(props["pid_file"]) == restarted["pid"]
    assert not Path(f"/proc/{outs['pid']}").exists(), "the dead instance was reaped, not left a zombie"


#: a service whose old instance outlives its leader's exit, holding both its ports (MODE):
#: "straggler" - a child in its process group ignores SIGTERM; "lingering" - a child that left the
#: group (setsid) keeps the inherited sockets a moment after the leader exited
FORKING_SERVER = """
import http.server as h, os, signal, socket, time
srv = h.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), h.SimpleHTTPRequestHandler)
aux = socket.socket()
aux.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
aux.bind(('127.0.0.1', int(os.environ['AUX_PORT'])))
aux.listen()
leader = os.getpid()
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ['MODE'] == 'lingering':
        os.setsid()
        while os.getppid() == leader:
            time.sleep(0.05)
        time.sleep(0.5)
        os._exit(0)
    while True:
        time.sleep(1)
with open('child.pid', 'w') as fh:
    fh.write(str(child))
srv.serve_forever()
"""


@pytest.mark.parametrize("mode", ["straggler", "lingering"])
def test_a_restart_waits_until_the_old_instance_released_every_port(
    provider: LocalProcessProvider, tmp_path: Path, mode: str
) -> None:
    """`pulumi up` after a config change: update() must not start the new instance while any process of
    the old one still accepts connections on one of the service's ports (seen as "port ... in use")."""
    port, aux = free_port(), free_port()
    props = _props(
        tmp_path,
        port,
        argv=[sys.executable, "-c", FORKING_SERVER],
        env={"PORT": str(port), "AUX_PORT": str(aux), "MODE": mode},
        ports={
            "http": {"number": float(port), "setting": "test.yaml: web.port"},  # floats, as the engine sends
            "aux": {"number": float(aux), "setting": "test.yaml: web.aux"},
        },
        stop_timeout=20 if mode == "lingering" else 1,
    )
    outs = {**props, **(provider.create(props).outs or {})}
    old_child = int((tmp_path / "child.pid").read_text())
    assert local_process._start_time(old_child) is not None
    news = {**props, "env": {**props["env"], "CHANGED": "1"}}

    restarted = provider.update("web", outs, news).outs or {}

    assert restarted["pid"] != outs["pid"] and running_pid(props["pid_file"]) == restarted["pid"]
    assert local_process._start_time(old_child) is None, "nothing of the old instance survives"
    assert local_process.wait_ports_released(news, 0) == ["aux", "http"], "the new instance holds both"
    provider.delete("web", {**news, **restarted})
    assert local_process.wait_ports_released(news, 20) == []


def test_port_in_use_is_reported_with_its_setting(provider: LocalProcessProvider, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            ServiceError,
            match=rf"port {port} \(http\) on 127.0.0.1 is already in use " r"\(set by test.yaml: web.port\)",
        ):
            provider.create(_props(tmp_path, port))
    assert not Path(_props(tmp_path, port)["pid_file"]).exists()


def test_a_service_that_dies_at_start_fails_with_its_log(
    provider: LocalProcessProvider, tmp_path: Path
) -> None:
    props = _props(
        tmp_path, free_port(), argv=[sys.executable, "-c", "import sys; print('boom: bad flag'); sys.exit(3)"]
    )
    with pytest.raises(ServiceError, match=r"(?s)web exited with status 3 during start-up.*boom: bad flag"):
        provider.create(props)


def test_an_unhealthy_service_is_stopped_after_the_timeout(
    provider: LocalProcessProvider, tmp_path: Path
) -> None:
    props = _props(
        tmp_path,
        free_port(),
        start_timeout=1,
        health={"kind": "http", "port": "http", "path": "/missing", "ok_status": [200]},
    )
    with pytest.raises(ServiceError, match="did not pass its health check within 1 s"):
        provider.create(props)
    assert running_pid(props["pid_file"]) is None


def test_a_service_that_answers_but_fails_a_readiness_check_is_not_started(
    provider: LocalProcessProvider, tmp_path: Path
) -> None:
    """``health`` passes (``/`` answers 200) but a ``ready`` check does not: not started, and stopped."""
    missing = {"kind": "http", "port": "http", "path": "/missing", "ok_status": [200]}
    props = _props(tmp_path, free_port(), start_timeout=1, ready=[missing])
    with pytest.raises(ServiceError, match="did not pass its health check within 1 s"):
        provider.create(props)
    assert running_pid(props["pid_file"]) is None
    found = {**missing, "path": "/run/index.html"}  # the server lists its cwd, the config dir is run/
    ok = _props(tmp_path, free_port(), ready=[found])
    provider.create(ok)
    assert running_pid(ok["pid_file"]) is not None


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    pid_file.write_text(json.dumps({"pid": os.getpid(), "start_time": "1"}))
    assert running_pid(str(pid_file)) is None
    local_process.stop({"pid_file": str(pid_file)})  # must not signal this test process
