"""Benchmark: write -> WebSocket event latency (p50/p99) at 1, 100, 1,000 subscribers, and events/s delivered.

Everything real and on loopback: Centrifugo v6 (config from config/ via infra/centrifugo_config.py),
the gateway as ``python -m worker.asgi`` on a SQLite file, writes as HTTP POSTs to
``/v1/collections/posts/documents`` (posts is shared-read: every subscriber reads
the per-collection channel ``posts:*``) -> SQLite commit -> outbox -> Centrifugo
``/api/batch`` broadcast -> WebSocket. Each document carries ``sent_ns`` (wall clock
ns just before the POST); latency = subscriber receive time - ``sent_ns``, one clock.

Subscribers (``--subscribers``):

- ``go`` (default): scripts/realtime_subscribers, a small Go program (gorilla/websocket,
  Centrifugo's JSON protocol, GOMAXPROCS 1) built once into
  ``~/.cache/telestack/bin/realtime-subscribers-<hash>/``. It costs a few percent of a core
  at 1,000 connections, so the figure is the platform's.
- ``python``: raw ``websockets`` connections over worker processes. At 1,000 connections
  they need more CPU than Centrifugo and the gateway together; kept to compare.

Tokens: connection 0 uses a token response from the gateway's real ``POST /v1/realtime/token``
(admin key, channel ``posts:*`` with its subscription token); the others are minted with
the gateway's own ``worker.realtime_tokens.connection_token`` for distinct users ``bench-<i>``
(no auth server in the bench, and shared-read channels need no subscription token).

    .venv/bin/python scripts/bench_realtime.py [--subscribers go|python] [--clients 1,100,1000]
        [--writes 200] [--burst 200] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # the repo, not scripts/ (whose secrets.py would shadow the stdlib module)

CHANNEL = "posts:*"
GO_SRC = ROOT / "scripts" / "realtime_subscribers"
BIN_CACHE = Path.home() / ".cache" / "telestack" / "bin"


# ------------------------------------------------------------------ subscriber processes (python mode)


async def _subscriber(url: str, token: str, expected: int, out: list[tuple[str, float, float]],
                      ready: asyncio.Event, done: asyncio.Event, counters: dict[str, int]) -> None:
    import websockets

    async with websockets.connect(url, max_size=None, compression=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"id": 1, "connect": {"token": token, "name": "bench"}}))
        await ws.send(json.dumps({"id": 2, "subscribe": {"channel": CHANNEL}}))
        got = 0
        subscribed = False
        async for frame in ws:
            now = time.time()
            for line in str(frame).split("\n"):
                if not line:
                    continue
                msg = json.loads(line)
                if not msg:  # server ping: answer with an empty command
                    await ws.send("{}")
                    continue
                if msg.get("id") == 2:
                    if "error" in msg:
                        raise RuntimeError(f"subscribe refused: {msg['error']}")
                    subscribed = True
                    counters["ready"] += 1
                    if counters["ready"] == counters["total"]:
                        ready.set()
                    continue
                pub = (msg.get("push") or {}).get("pub")
                if pub is None or not subscribed:
                    continue
                body = pub["data"]["data"]
                if body["sent_ns"] < counters["since_ns"]:
                    continue  # a previous level's event, published late from the outbox backlog
                out.append((body["phase"], body["sent_ns"] / 1e9, now))
                got += 1
            if got >= expected:
                counters["finished"] += 1
                if counters["finished"] == counters["total"]:
                    done.set()
                return


def _worker(url: str, tokens: list[str], expected: int, conn: Any, since_ns: int) -> None:
    async def main() -> None:
        out: list[tuple[str, float, float]] = []
        ready, done = asyncio.Event(), asyncio.Event()
        counters = {"ready": 0, "finished": 0, "total": len(tokens), "since_ns": since_ns}
        tasks = []
        for token in tokens:
            tasks.append(asyncio.create_task(_subscriber(url, token, expected, out, ready, done, counters)))
            if len(tasks) % 50 == 0:
                await asyncio.sleep(0.01)  # do not stampede the accept queue
        await asyncio.wait_for(ready.wait(), 60)
        conn.send("ready")
        loop = asyncio.get_running_loop()
        stop = loop.run_in_executor(None, conn.recv)
        await asyncio.wait([asyncio.ensure_future(done.wait()), stop], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        conn.send(out)
        if not stop.done():
            await stop  # the parent's "stop" after it has read the results

    asyncio.run(main())


# ------------------------------------------------------------------ the stack


def start_stack(workdir: Path) -> tuple[Any, Any, str, str]:
    """Centrifugo (tests' launcher: generated config, keys by env) and a gateway process; returns handles."""
    import httpx

    from tests.support.centrifugo import start_centrifugo
    from tests.support.paths import free_port

    cf = start_centrifugo(workdir / "centrifugo")
    port = free_port()
    admin = os.urandom(16).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELESTACK_")}
    env.update({
        "TELESTACK_HOST": "127.0.0.1", "TELESTACK_PORT": str(port),
        "TELESTACK_DB_PATH": str(workdir / "gw.db"),
        "TELESTACK_ADMIN_KEY": admin, "TELESTACK_CENTRIFUGO_API_URL": cf.api_url,
        "TELESTACK_CENTRIFUGO_API_KEY": cf.api_key, "TELESTACK_CENTRIFUGO_TOKEN_SECRET": cf.token_secret,
        "TELESTACK_CENTRIFUGO_WS_URL": cf.ws_url,
    })
    with (workdir / "gateway.log").open("wb") as log:
        gw = subprocess.Popen([sys.executable, "-m", "worker.asgi"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/v1/health", timeout=2, trust_env=False)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        cf.stop()
        gw.kill()
        raise SystemExit("gateway did not start")
    return cf, gw, url, admin


async def write_posts(url: str, admin: str, phase: str, count: int, *, gap: float,
                      concurrency: int = 1) -> list[float]:
    """POST ``count`` documents carrying ``sent_ns``; returns each write's HTTP round trip in ms.

    The gateway answers before it publishes (the event goes out after the response), so this is the
    write alone; write -> event latency is measured by the subscribers.
    """
    import httpx

    headers = {"authorization": f"Bearer {admin}"}
    limits = httpx.Limits(max_connections=concurrency)
    rtt: list[float] = []
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as http:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                sent = time.time_ns()
                r = await http.post(f"{url}/v1/collections/posts/documents", headers=headers,
                                    json={"data": {"title": f"bench {i}", "phase": phase, "sent_ns": sent},
                                          "owner_id": "bench-writer"})
                rtt.append((time.time_ns() - sent) / 1e6)
                if r.status_code != 201:
                    raise RuntimeError(f"write failed: {r.status_code} {r.text}")
            if gap:
                await asyncio.sleep(gap)

        if concurrency == 1:
            for i in range(count):
                await one(i)
        else:
            await asyncio.gather(*(one(i) for i in range(count)))
    return rtt


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process so far (Linux /proc; NaN elsewhere): who spent the cores."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# FLUSH: one write follows every burst (every subscriber expects it too). A drain does bounded work
# per request (8 rounds), so the last writes of a 16-wide burst can stay in the outbox until the
# next request or the cron; without it a level could wait for them, or the next level receive them.


def latency_gap(clients: int, gap_per_client: float) -> float:
    """Spacing of the latency writes: a latency figure, not a queueing one."""
    return max(0.01, clients * gap_per_client)


def run_level_python(cf: Any, url: str, admin: str, clients: int, writes: int, burst: int,
                     gap_per_client: float) -> dict[str, Any]:
    from worker.realtime_tokens import connection_token

    procs = max(1, min(clients, (os.cpu_count() or 2)))
    tokens = [connection_token(cf.token_secret, f"bench-{i}", ttl=3600) for i in range(clients)]
    ctx = mp.get_context("spawn")
    since_ns = time.time_ns()
    pipes, workers = [], []
    for p in range(procs):
        parent, child = ctx.Pipe()
        w = ctx.Process(target=_worker, daemon=True,
                        args=(cf.ws_url, tokens[p::procs], writes + burst + 1, child, since_ns))
        w.start()
        pipes.append(parent)
        workers.append(w)
    for parent in pipes:
        if not parent.poll(120) or parent.recv() != "ready":
            raise SystemExit("subscribers did not connect")
    rtt = asyncio.run(write_posts(url, admin, "lat", writes, gap=latency_gap(clients, gap_per_client)))
    t0 = time.time()
    asyncio.run(write_posts(url, admin, "tp", burst, gap=0, concurrency=16))
    asyncio.run(write_posts(url, admin, "flush", 1, gap=0))  # see FLUSH
    results: list[tuple[str, float, float]] = []
    for parent in pipes:
        if not parent.poll(120):
            parent.send("stop")  # gave up waiting: report what arrived
        results.extend(parent.recv())
        with contextlib.suppress(OSError):
            parent.send("stop")
    for w in workers:
        w.join(timeout=10)
    lat = [(recv - sent) * 1000 for phase, sent, recv in results if phase == "lat"]
    first: dict[float, float] = {}  # per write: the earliest delivery (the server path, without fan-out)
    for phase, sent, recv in results:
        if phase == "lat":
            first[sent] = min(first.get(sent, recv), recv)
    first_ms = [(recv - sent) * 1000 for sent, recv in first.items()]
    tp = [recv for phase, _, recv in results if phase == "tp"]
    return {
        "clients": clients, "writes": writes, "received": len(lat), "expected": writes * clients,
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": pct(lat, 0.99) if lat else float("nan"),
        "max_ms": max(lat) if lat else float("nan"),
        "first_p50_ms": statistics.median(first_ms) if first_ms else float("nan"),
        "first_p99_ms": pct(first_ms, 0.99) if first_ms else float("nan"),
        "write_p50_ms": statistics.median(rtt), "write_p99_ms": pct(rtt, 0.99),
        "burst_writes": burst, "burst_delivered": len(tp),
        "events_per_s": len(tp) / (max(tp) - t0) if tp else 0.0,
    }


# ------------------------------------------------------------------ go subscribers


def go_binary() -> Path:
    """Build scripts/realtime_subscribers once per source version (hash of go.sum + go.mod + main.go)."""
    digest = hashlib.sha256()
    for name in ("go.sum", "go.mod", "main.go"):
        digest.update(name.encode() + b"\0" + (GO_SRC / name).read_bytes())
    out_dir = BIN_CACHE / f"realtime-subscribers-{digest.hexdigest()[:16]}"
    binary = out_dir / "realtime-subscribers"
    if binary.exists():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".build-{os.getpid()}"
    subprocess.run([go, "build", "-trimpath", "-o", str(tmp), "."], cwd=GO_SRC, check=True)
    tmp.replace(binary)  # atomic: a concurrent run sees a whole binary or none
    return binary


def token_file(cf: Any, url: str, admin: str, clients: int, path: Path) -> None:
    """One token response per connection, in the shape of POST /v1/realtime/token (see module doc)."""
    import httpx

    from worker.realtime_tokens import connection_token

    r = httpx.post(f"{url}/v1/realtime/token", headers={"authorization": f"Bearer {admin}"},
                   json={"channels": [CHANNEL]}, timeout=10, trust_env=False)
    if r.status_code != 200:
        raise SystemExit(f"token endpoint answered {r.status_code}: {r.text}")
    responses = [r.json()]
    for i in range(1, clients):
        responses.append({"token": connection_token(cf.token_secret, f"bench-{i}", ttl=3600),
                          "channels": [{"channel": CHANNEL, "collection": "posts", "token": None}]})
    path.write_text(json.dumps({"url": cf.ws_url, "clients": responses[:clients]}))
    path.chmod(0o600)


def run_level_go(cf: Any, url: str, admin: str, clients: int, writes: int, burst: int,
                 gap_per_client: float, *, workdir: Path, procs: int) -> dict[str, Any]:
    tokens = workdir / f"tokens-{clients}.json"
    token_file(cf, url, admin, clients, tokens)
    argv = [str(go_binary()), "-tokens", str(tokens), "-expect", str(writes + burst + 1),
            "-timeout", "600s", "-procs", str(procs)]
    sub = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert sub.stdout is not None and sub.stdin is not None
        ready = json.loads(sub.stdout.readline() or "{}")
        if ready.get("event") != "ready":
            raise SystemExit(f"go subscribers did not connect (exit {sub.wait()})")
        rtt = asyncio.run(write_posts(url, admin, "lat", writes, gap=latency_gap(clients, gap_per_client)))
        asyncio.run(write_posts(url, admin, "tp", burst, gap=0, concurrency=16))
        asyncio.run(write_posts(url, admin, "flush", 1, gap=0))  # see FLUSH
        stopper = threading.Timer(120, lambda: _stop(sub))  # gave up waiting: report what arrived
        stopper.start()
        try:
            result = json.loads(sub.stdout.readline() or "{}")
        finally:
            stopper.cancel()
        sub.wait(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
        tokens.unlink(missing_ok=True)
    if result.get("event") != "result":
        raise SystemExit("go subscribers produced no result")
    lat = result["phases"].get("lat", {})
    tp = result["phases"].get("tp", {})
    return {
        "clients": clients, "writes": writes, "received": lat.get("deliveries", 0),
        "expected": writes * clients,
        "p50_ms": lat.get("p50_ms", float("nan")), "p99_ms": lat.get("p99_ms", float("nan")),
        "max_ms": lat.get("max_ms", float("nan")),
        "first_p50_ms": lat.get("first_p50_ms", float("nan")),
        "first_p99_ms": lat.get("first_p99_ms", float("nan")),
        "write_p50_ms": statistics.median(rtt), "write_p99_ms": pct(rtt, 0.99),
        "burst_writes": burst, "burst_delivered": tp.get("deliveries", 0),
        "events_per_s": tp.get("events_per_s", 0.0),
        "setup_ms": ready.get("setup_ms"), "dial_retries": ready.get("dial_retries"),
        "reason": result.get("reason"), "stale_deliveries": result.get("stale_deliveries", 0),
        "subscriber_cpu_s": result.get("cpu_s", float("nan")),
        "per_event": result.get("per_event", []),
    }


def _stop(sub: subprocess.Popen[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        assert sub.stdin is not None
        sub.stdin.write("stop\n")
        sub.stdin.flush()


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", choices=("go", "python"), default="go",
                    help="subscriber load generator: lean Go program (default) or Python websockets")
    ap.add_argument("--clients", default="1,100,1000", help="comma-separated subscriber counts")
    ap.add_argument("--writes", type=int, default=200, help="spaced writes for the latency figures")
    ap.add_argument("--burst", type=int, default=200, help="back-to-back writes (16 in flight) for events/s")
    ap.add_argument("--gap-per-client-us", type=float, default=100.0,
                    help="spacing of the latency writes per subscriber (min 10 ms): 1,000 clients -> 100 ms")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every level; each round is printed")
    ap.add_argument("--go-procs", type=int, default=1, help="GOMAXPROCS of the Go subscribers")
    ap.add_argument("--json", type=Path, help="also write every level's figures (with per-event stats) here")
    args = ap.parse_args()
    if args.subscribers == "go":
        go_binary()  # build before the stack starts, not inside a timed level
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as tmp:
        cf, gw, url, admin = start_stack(Path(tmp))
        try:
            # warm-up, before any subscriber: the first writes compile schemas and open connections
            asyncio.run(write_posts(url, admin, "warm", 20, gap=0.005))
            load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
            print(f"# {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
                  f"subscribers: {args.subscribers}, Centrifugo JSON protocol", flush=True)
            print(f"{'round':>5} {'clients':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'1st p50':>8} "
                  f"{'1st p99':>8} {'POST p50':>8} {'recv/expected':>15} {'events/s':>10}  cpu s: cf/gw/subs",
                  flush=True)
            for rnd in range(1, args.rounds + 1):
                for n in (int(x) for x in args.clients.split(",")):
                    gap = args.gap_per_client_us * 1e-6
                    assert cf.process is not None
                    cpu0 = cpu_seconds(cf.process.pid), cpu_seconds(gw.pid)
                    if args.subscribers == "go":
                        r = run_level_go(cf, url, admin, n, args.writes, args.burst, gap,
                                         workdir=Path(tmp), procs=args.go_procs)
                    else:
                        r = run_level_python(cf, url, admin, n, args.writes, args.burst, gap)
                    r["round"], r["subscribers"] = rnd, args.subscribers
                    r["centrifugo_cpu_s"] = cpu_seconds(cf.process.pid) - cpu0[0]
                    r["gateway_cpu_s"] = cpu_seconds(gw.pid) - cpu0[1]
                    r["loadavg"] = os.getloadavg() if hasattr(os, "getloadavg") else None
                    rows.append(r)
                    print(f"{rnd:>5} {r['clients']:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                          f"{r['max_ms']:>8.2f} {r['first_p50_ms']:>8.2f} {r['first_p99_ms']:>8.2f} "
                          f"{r['write_p50_ms']:>8.2f} {r['received']:>7}/{r['expected']:<7} "
                          f"{r['events_per_s']:>10.0f}  {r['centrifugo_cpu_s']:.1f}/{r['gateway_cpu_s']:.1f}/"
                          f"{r.get('subscriber_cpu_s', float('nan')):.1f}", flush=True)
        finally:
            gw.terminate()
            gw.wait(timeout=10)
            cf.stop()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("latency = client receive time - write send time (HTTP POST -> gateway commit -> Centrifugo -> WS),"
          " over every (write, subscriber); 1st = the earliest subscriber per write (no fan-out wait);"
          " POST = the write's HTTP round trip (the publish runs after the response);"
          " events/s = deliveries in the burst / (last delivery - first write)", file=sys.stderr)


if __name__ == "__main__":
    main()
