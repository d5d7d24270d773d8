"""Start a real server process, wait until it answers, stop it by PID: the loop every test service shares.

Other helpers run the same binaries, so a process is only ever stopped through the
handle we got when starting it (SIGTERM, then SIGKILL), never by name. Output goes
to a log file, never a pipe, so a chatty child cannot block on a full buffer.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

Process = subprocess.Popen[bytes]


def start_process(
    argv: list[str],
    *,
    log: Path,
    ready: Callable[[], bool],
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
    interval: float = 0.1,
) -> Process:
    """Spawn ``argv`` (output appended to ``log``), then poll ``ready()`` until it holds.

    On any failure (it exited, ``timeout`` passed, Ctrl-C) the process is stopped and the
    error quotes the end of its log.
    """
    with log.open("ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout}s; see {log}:\n{_tail(log)}")
            time.sleep(interval)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def stop_process(proc: Process | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still running after ``grace`` seconds; a no-op once it exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def answers(url: str, *, status: int | None = 200) -> bool:
    """Whether ``url`` answers ``status`` (any status when None); False while nothing listens yet."""
    try:
        r = httpx.get(url, timeout=1, trust_env=False)
    except httpx.HTTPError:
        return False
    return status is None or r.status_code == status


@contextlib.contextmanager
def silent_url() -> Iterator[str]:
    """A loopback URL that accepts TCP connections and never answers: the dependency that hangs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@contextlib.contextmanager
def paused(proc: Process | None) -> Iterator[None]:
    """The process frozen by SIGSTOP (its sockets still accept, nothing answers), SIGCONT on exit.

    A hung dependency as a real one hangs: connections queue in the kernel's backlog and
    requests already sent wait for a reply that only comes after SIGCONT.
    """
    assert proc is not None and proc.poll() is None, "pause a running process"
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)
