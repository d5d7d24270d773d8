"""Benchmark a write to a looked-up document with its dependents' events (not a test).

    .venv/bin/python scripts/bench_dependent_events.py [--tasks 1000] [--members 50] [--writes 10]

A gateway in process (``tests/support/gateway.py``: the document core on a fresh SQLite file, stub
identity, no Centrifugo) with the repo's collections: one team of ``--members`` members and ``--tasks``
tasks pointing at it, plus five times as many tasks of another team (what the index search skips). It
times team writes of three kinds and prints each per write and as a ratio to the first:

- renaming the team (no field a lookup reads changes: the batch gains nothing);
- keeping the same members in another order (the readers are staged and compared, no event);
- letting one member in or out (every task's readers change: one event per task).

The last two hold the database for their whole batch: that is what a membership change costs the
other writers. Figures only, never pass/fail; compare ratios on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# the repo root instead of scripts/, whose secrets.py would shadow the standard library's
sys.path[0] = str(Path(__file__).resolve().parents[1])

from tests.support.gateway import Client, make_gateway  # noqa: E402  (after the path fix above)

TEAM = "/v1/collections/teams/documents/t1"


async def _timed(c: Client, writes: int, body: Callable[[int], dict[str, Any]]) -> float:
    start = time.perf_counter()
    for i in range(writes):
        r = await c.request("PATCH", TEAM, user="alice", json={"data": body(i)})
        if r.status != 200:
            raise SystemExit(f"team write refused: {r.status} {r.body!r}")
    return (time.perf_counter() - start) / writes


async def run(tasks: int, members: int, writes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gw = await make_gateway(Path(tmp) / "bench.sqlite3")
        c = Client(gw)
        people = [f"u{i:04d}" for i in range(members)]
        for team_id in ("t1", "t2"):
            team = {"name": team_id, "members": people, "editors": ["bob"]}
            await c.create("teams", team, user="alice", id=team_id)
        for team_id, n in (("t1", tasks), ("t2", 5 * tasks)):
            for i in range(n):
                task = {"title": "k", "team_id": team_id}
                await c.create("tasks", task, user="bob", id=f"{team_id}-{i:06d}")
        await gw.db.execute("ANALYZE")
        print(f"team t1: {members} members, {tasks} tasks (another team: {5 * tasks} tasks)")
        base = await _timed(c, writes, lambda i: {"name": f"n{i}"})
        same = await _timed(c, writes, lambda i: {"members": people[::-1] if i % 2 == 0 else people})
        moved = await _timed(c, writes, lambda i: {"members": people + (["newcomer"] if i % 2 == 0 else [])})
        for label, took in (("rename (nothing added)", base), ("same members reordered (no event)", same),
                            (f"one member in/out ({tasks} events)", moved)):
            print(f"  {label:40s} {took * 1000:9.1f} ms per write   {took / base:7.1f}x rename")
        gw.db.close()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--writes", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.members, args.writes))


if __name__ == "__main__":
    main()
