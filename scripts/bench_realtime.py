"""Benchmark: write -> WebSocket event latency (p50/p99) at 1, 100, 1,000 subscribers, and events/s delivered.

Everything real and on loopback: Centrifugo v6 (config from config/ via infra/centrifugo_config.py),
the gateway as ``python -m worker.asgi`` on a SQLite file, writes as HTTP POSTs to
``/v1/collections/posts/documents`` (posts is shared-read: every subscriber reads
the per-collection channel ``posts:*``). Subscribers are raw ``websockets``
connections speaking Centrifugo's JSON protocol (connect, subscribe, pong), spread
over worker processes so the clients' own CPU is not the bottleneck; latency is
(client receive time - the write's send time carried in the document), on one clock.

    .venv/bin/python scripts/bench_realtime.py [--clients 1,100,1000] [--writes 200] [--burst 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # the repo, not scripts/ (whose secrets.py would shadow the stdlib module)

CHANNEL = "posts:*"


# ------------------------------------------------------------------ subscriber processes


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
                out.append((body["phase"], body["t"], now))
                got += 1
            if got >= expected:
                counters["finished"] += 1
                if counters["finished"] == counters["total"]:
                    done.set()
                return


def _worker(url: str, tokens: list[str], expected: int, conn: Any) -> None:
    async def main() -> None:
        out: list[tuple[str, float, float]] = []
        ready, done = asyncio.Event(), asyncio.Event()
        counters = {"ready": 0, "finished": 0, "total": len(tokens)}
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
    import subprocess

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
        raise SystemExit("gateway did not start")
    return cf, gw, url, admin


async def write_posts(url: str, admin: str, phase: str, count: int, *, gap: float,
                      concurrency: int = 1) -> None:
    import httpx

    headers = {"authorization": f"Bearer {admin}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as http:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                r = await http.post(f"{url}/v1/collections/posts/documents", headers=headers,
                                    json={"data": {"title": f"bench {i}", "phase": phase, "t": time.time()},
                                          "owner_id": "bench-writer"})
                if r.status_code != 201:
                    raise RuntimeError(f"write failed: {r.status_code} {r.text}")
            if gap:
                await asyncio.sleep(gap)

        if concurrency == 1:
            for i in range(count):
                await one(i)
        else:
            await asyncio.gather(*(one(i) for i in range(count)))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_level(cf: Any, url: str, admin: str, clients: int, writes: int, burst: int,
              gap_per_client: float = 100e-6) -> dict[str, Any]:
    from worker import realtime

    procs = max(1, min(clients, (os.cpu_count() or 2)))
    tokens = [realtime.connection_token(cf.token_secret, f"bench-{i}", ttl=3600) for i in range(clients)]
    ctx = mp.get_context("spawn")
    pipes, workers = [], []
    for p in range(procs):
        parent, child = ctx.Pipe()
        w = ctx.Process(target=_worker, args=(cf.ws_url, tokens[p::procs], writes + burst, child),
                        daemon=True)
        w.start()
        pipes.append(parent)
        workers.append(w)
    for parent in pipes:
        if not parent.poll(120) or parent.recv() != "ready":
            raise SystemExit("subscribers did not connect")
    # spaced writes: a latency figure, not a queueing one (the Python subscribers must keep up)
    asyncio.run(write_posts(url, admin, "lat", writes, gap=max(0.01, clients * gap_per_client)))
    t0 = time.time()
    asyncio.run(write_posts(url, admin, "tp", burst, gap=0, concurrency=16))
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
        "burst_writes": burst, "burst_delivered": len(tp),
        "events_per_s": len(tp) / (max(tp) - t0) if tp else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,100,1000", help="comma-separated subscriber counts")
    ap.add_argument("--writes", type=int, default=200, help="spaced writes for the latency figures")
    ap.add_argument("--burst", type=int, default=200, help="back-to-back writes (16 in flight) for events/s")
    ap.add_argument("--gap-per-client-us", type=float, default=100.0,
                    help="spacing of the latency writes per subscriber (min 10 ms): 1,000 clients -> 100 ms")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as tmp:
        cf, gw, url, admin = start_stack(Path(tmp))
        try:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"# {os.cpu_count()} CPUs, load average {load:.1f}; "
                  "subscribers: raw websockets, Centrifugo JSON protocol")
            print(f"{'clients':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'1st p50':>8} {'1st p99':>8} "
                  f"{'recv/expected':>15} {'events/s':>10}")
            for n in (int(x) for x in args.clients.split(",")):
                r = run_level(cf, url, admin, n, args.writes, args.burst, args.gap_per_client_us * 1e-6)
                print(f"{r['clients']:>8} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} "
                      f"{r['first_p50_ms']:>8.2f} {r['first_p99_ms']:>8.2f} "
                      f"{r['received']:>7}/{r['expected']:<7} {r['events_per_s']:>10.0f}", flush=True)
        finally:
            gw.terminate()
            gw.wait(timeout=10)
            cf.stop()
    print("latency = client receive time - write send time (HTTP POST -> gateway commit -> Centrifugo -> WS),"
          " over every (write, subscriber); 1st = the earliest subscriber per write (no fan-out wait);"
          " events/s = deliveries in the burst / (last delivery - first write)", file=sys.stderr)


if __name__ == "__main__":
    main()
