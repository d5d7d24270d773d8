"""Auth throughput on loopback: sign-ins/s, refreshes/s, verified requests/s; the rate limiter's cost.

    .venv/bin/python scripts/bench_auth.py [--seconds 5] [--concurrency 8] [--signin-concurrency 2] \
        [--argon2-memory-kb 87795]

Starts a CDI stand-in (a real process, temp SQLite, the core's Argon2 defaults
unless overridden) and drives the gateway's auth endpoints in-process through
``app.handle`` (the gateway → core hop is real HTTP over loopback), over a
migrated SQLite database (the brute-force windows live there; the bench's
limits are raised so it is never refused, while every sign-in still pays
for the window check). The bar is PocketBase's published ~2,900 auth
refreshes/s on 2 vCPU. Then the rate limiter alone: microseconds per
counted attempt (fresh buckets, and one bucket filling to its limit) and
per refused attempt. Prints figures only: never tokens, keys or passwords.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a file, scripts/ is sys.path[0], and scripts/secrets.py would shadow the stdlib module
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "scripts"]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from typing import Any  # noqa: E402

from worker import app, jsoncodec, migrations  # noqa: E402
from worker.adapters.config_files import load_migrations  # noqa: E402
from worker.adapters.httpx_client import HttpxClient  # noqa: E402
from worker.adapters.sqlite import SqliteDatabase  # noqa: E402
from worker.context import Gateway  # noqa: E402
from worker.http import ApiError, Request  # noqa: E402
from worker.rate_limits import POLICIES, Policy, RateLimiter, Window  # noqa: E402
from worker.settings import from_mapping  # noqa: E402

POCKETBASE_REFRESHES_PER_S = 2900


#: a documentation address (RFC 5737): not loopback, so both windows are counted as on Workers
CLIENT_ADDRESS = "198.51.100.1"
#: limits no bench run reaches: every attempt is counted and checked, none refused
UNREACHED = {action: Policy(account=Window(10**9, p.account.seconds),
                             address=Window(10**9, p.address.seconds))
             for action, p in POLICIES.items()}


def start_standin(data: Path, argon2_memory_kb: int) -> tuple[subprocess.Popen[bytes], str, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = secrets.token_hex(16)
    env = {**os.environ, "SUPERTOKENS_API_KEYS": key, "SUPERTOKENS_ARGON2_MEMORY_KB": str(argon2_memory_kb)}
    proc = subprocess.Popen([sys.executable, "-m", "infra.standins.supertokens", "--host", "127.0.0.1",
                             "--port", str(port), "--db", str(data / "st.sqlite3")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/hello", timeout=1):  # noqa: S310 - loopback URL we built
                return proc, url, key
        except OSError:
            time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    raise SystemExit("the stand-in did not start")


async def call(gw: Gateway, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    payload = jsoncodec.dumps_bytes(body) if body is not None else b""
    request = Request(method, path, headers=headers, body=payload, client_address=CLIENT_ADDRESS)
    r = (await app.handle(gw, request)).response
    data = jsoncodec.loads(r.body)
    if r.status >= 300 and r.status != 401:
        raise SystemExit(f"{method} {path}: HTTP {r.status} {data.get('error', {}).get('code')}")
    return r.status, data


async def rate(label: str, seconds: float, concurrency: int, op: Callable[[int], Awaitable[None]],
               limit: int | None = None) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()

    async def worker(w: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline and (limit is None or done < limit):
            await op(w)
            done += 1

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - start
    per_s = done / elapsed
    print(f"{label:<44} {per_s:>10,.0f} /s   ({done} in {elapsed:.1f} s, concurrency {concurrency})")
    return per_s


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = start_standin(Path(tmp), args.argon2_memory_kb)
        try:
            http = HttpxClient()
            db = SqliteDatabase(Path(tmp) / "gateway.sqlite3")
            await migrations.migrate(db, load_migrations(ROOT / "config"))
            gw = Gateway(settings=from_mapping({"ADMIN_KEY": secrets.token_hex(16), "COLLECTIONS": "{}",
                                                "AUTH_URL": url, "AUTH_API_KEY": key}),
                         db=db, http=http)
            gw.rate_limiter = RateLimiter(UNREACHED)
            password = secrets.token_urlsafe(12)
            users = [f"bench-{i}-{secrets.token_hex(3)}@example.com" for i in range(args.concurrency)]
            for email in users:
                await call(gw, "POST", "/v1/auth/signup", {"email": email, "password": password})
            print(f"loopback, {os.cpu_count()} CPUs, stand-in Argon2id m={args.argon2_memory_kb} KiB "
                  f"(core default 87795), CDI 5.6")

            signins = await rate("sign-ins (Argon2 verify + session create)", args.seconds,
                                 args.signin_concurrency, lambda w: call(gw, "POST", "/v1/auth/signin",
                                                {"email": users[w], "password": password}))

            refresh_tokens = []
            for email in users:
                _, s = await call(gw, "POST", "/v1/auth/signin", {"email": email, "password": password})
                refresh_tokens.append(s["refresh_token"])

            async def refresh(w: int) -> None:
                status, s = await call(gw, "POST", "/v1/auth/refresh", {"refresh_token": refresh_tokens[w]})
                if status != 200:
                    raise SystemExit(f"refresh failed: {s['error']['code']}")
                refresh_tokens[w] = s["refresh_token"]

            refreshes = await rate("refreshes (rotation in one transaction)", args.seconds, args.concurrency,
                                   refresh)

            _, s = await call(gw, "POST", "/v1/auth/signin", {"email": users[0], "password": password})
            token = s["access_token"]
            verifier = gw.authenticator
            await verifier.verify(token)  # warm the JWKS cache

            async def verify(_: int) -> None:
                await verifier.verify(token)

            verified = await rate("verified requests (full JWT check)", args.seconds, 1, verify)
            bearer = Request("GET", "/v1/auth/me", headers={"authorization": f"Bearer {token}"})

            async def cached(_: int) -> None:
                await verifier.authenticate(bearer)

            cached_rate = await rate("verified requests (repeat token, cache hit)", args.seconds, 1, cached)
            me = await rate("GET /v1/auth/me through app.handle", args.seconds, 1,
                            lambda _: call(gw, "GET", "/v1/auth/me", token=token))

            # enumeration check: the two failures should cost the same (one Argon2 verify each)
            timings: dict[str, list[float]] = {"wrong password": [], "unknown email": []}
            for i in range(args.timing_samples):
                cases = (("wrong password", users[0]), ("unknown email", f"nobody-{i}@example.com"))
                for label, email in cases:
                    t = time.perf_counter()
                    body = {"email": email, "password": "x" * 12}
                    status, _ = await call(gw, "POST", "/v1/auth/signin", body)
                    timings[label].append(time.perf_counter() - t)
                    assert status == 401
            medians = {k: statistics.median(v) * 1000 for k, v in timings.items()}
            print("sign-in failure latency (median ms): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in medians.items()))
            print(f"refreshes/s vs PocketBase's ~{POCKETBASE_REFRESHES_PER_S:,}/s on 2 vCPU: "
                  f"{refreshes / POCKETBASE_REFRESHES_PER_S:.2f}x")
            await limiter_cost(Path(tmp), args.limiter_samples)
            del signins, verified, cached_rate, me
            await http.aclose()
            db.close()
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


async def limiter_cost(tmp: Path, samples: int) -> None:
    """µs per ``RateLimiter.hit`` on SQLite (the local gateway's database; on D1 add one round trip)."""
    db = SqliteDatabase(tmp / "limits.sqlite3")
    await migrations.migrate(db, load_migrations(ROOT / "config"))
    limiter = RateLimiter()
    window = POLICIES["signin"].address.limit

    async def timed(n: int, hit: Callable[[int], Awaitable[None]]) -> float:
        start = time.perf_counter()
        for i in range(n):
            await hit(i)
        return (time.perf_counter() - start) / n * 1e6

    def address(i: int) -> str:
        return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"

    fresh = await timed(samples, lambda i: limiter.hit(db, "signin", account=f"a{i}@example.com",
                                                        address=address(i)))
    # one address filling its window (the COUNT reads up to `limit` rows), each attempt a new account
    filling = await timed(window, lambda i: limiter.hit(db, "signin", account=f"f{i}@example.com",
                                                         address="192.0.2.200"))

    async def refused(i: int) -> None:
        try:
            await limiter.hit(db, "signin", account=f"r{i}@example.com", address="192.0.2.200")
        except ApiError:
            return
        raise SystemExit("the full window let an attempt through")

    refused_us = await timed(samples // 10 or 1, refused)
    rows = (await db.execute("SELECT COUNT(*) AS n FROM auth_rate_limits")).rows[0]["n"]
    print(f"rate limiter per attempt (SQLite, {rows:,} rows): counted {fresh:.0f} us (fresh buckets), "
          f"{filling:.0f} us (one address filling its {window}), refused {refused_us:.0f} us")
    db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent sessions refreshing")
    parser.add_argument("--signin-concurrency", type=int, default=2,
                        help="concurrent sign-ins (each Argon2 verify holds ~85 MiB and a core for ~0.1-1 s)")
    parser.add_argument("--argon2-memory-kb", type=int, default=87795,
                        help="stand-in Argon2 memory in KiB (default: the core's 87795)")
    parser.add_argument("--limiter-samples", type=int, default=2000,
                        help="attempts timed for the rate limiter's cost per request")
    parser.add_argument("--timing-samples", type=int, default=10,
                        help="failed sign-ins per kind for the enumeration timing check")
    asyncio.run(main(parser.parse_args()))
