"""Auth rate limits: sliding windows per account and per address, kept in the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.paths import CONFIG
from worker import migrations
from worker.adapters.config_files import load_migrations
from worker.adapters.sqlite import SqliteDatabase
from worker.http import ApiError
from worker.rate_limits import Policy, RateLimiter, Window, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


POLICY = {"signin": Policy(account=Window(3, 60), address=Window(5, 60))}


@pytest.fixture
async def db(tmp_path: Path):
    d = SqliteDatabase(tmp_path / "r.sqlite3")
    await migrations.migrate(d, load_migrations(CONFIG))
    yield d
    d.close()


async def _refused(limiter: RateLimiter, db: SqliteDatabase, account: str, address: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        await limiter.hit(db, "signin", account=account, address=address)
    return info.value


async def test_the_account_window_refuses_the_attempt_after_the_limit(db: SqliteDatabase) -> None:
    clock = Clock()
    limiter = RateLimiter(POLICY, clock)
    for i in range(3):
        clock.now += 1
        await limiter.hit(db, "signin", account="a@example.com", address=f"10.0.0.{i}")
    clock.now += 1
    err = await _refused(limiter, db, "A@example.com ", "10.0.0.9")  # normalised like the email itself
    assert err.status == 429 and err.code == "rate_limited"
    # the oldest attempt (t+1) leaves the 60 s window at t+61; now is t+4
    assert err.headers["retry-after"] == "57"
    await limiter.hit(db, "signin", account="b@example.com", address="10.0.0.9")  # other accounts unaffected


async def test_the_window_slides(db: SqliteDatabase) -> None:
    clock = Clock()
    limiter = RateLimiter(POLICY, clock)
    for _ in range(3):
        await limiter.hit(db, "signin", account="a@example.com", address="10.0.0.1")
        clock.now += 10
    await _refused(limiter, db, "a@example.com", "10.0.0.1")
    clock.now += 31  # the first attempt (t+0) is now 61 s old: one slot is free, only one
    await limiter.hit(db, "signin", account="a@example.com", address="10.0.0.1")
    await _refused(limiter, db, "a@example.com", "10.0.0.1")


async def test_the_address_window_spans_accounts_and_refusals_are_not_counted(db: SqliteDatabase) -> None:
    clock = Clock()
    limiter = RateLimiter(POLICY, clock)
    for i in range(5):
        await limiter.hit(db, "signin", account=f"u{i}@example.com", address="192.0.2.7")
    err = await _refused(limiter, db, "fresh@example.com", "192.0.2.7")
    assert int(err.headers["retry-after"]) == 60
    # the refused attempt recorded nothing, not even in the account's own window
    rows = (await db.execute("SELECT COUNT(*) AS n FROM auth_rate_limits")).rows[0]["n"]
    assert rows == 10
    await limiter.hit(db, "signin", account="fresh@example.com", address="192.0.2.8")


async def test_buckets_hold_digests_never_the_email_or_address(db: SqliteDatabase) -> None:
    limiter = RateLimiter(POLICY, Clock())
    await limiter.hit(db, "signin", account="secret@example.com", address="203.0.113.5")
    buckets = [r["bucket"] for r in (await db.execute("SELECT bucket FROM auth_rate_limits")).rows]
    assert len(buckets) == 2
    assert not any("secret" in b or "203.0.113" in b for b in buckets)


@pytest.mark.parametrize("address", ["", "127.0.0.1", "::1"])
async def test_no_address_or_loopback_counts_the_account_only(db: SqliteDatabase, address: str) -> None:
    limiter = RateLimiter(POLICY, Clock())
    for i in range(6):  # more accounts than the address window allows
        await limiter.hit(db, "signin", account=f"u{i}@example.com", address=address)
    for _ in range(3):
        await limiter.hit(db, "signin", account="a@example.com", address=address)
    await _refused(limiter, db, "a@example.com", address)
    rows = (await db.execute("SELECT COUNT(*) AS n FROM auth_rate_limits")).rows[0]["n"]
    assert rows == 9


async def test_concurrent_attempts_never_exceed_the_limit(db: SqliteDatabase) -> None:
    limiter = RateLimiter(POLICY, Clock())

    async def attempt() -> bool:
        try:
            await limiter.hit(db, "signin", account="race@example.com", address="10.1.1.1")
        except ApiError:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    assert sum(results) == 3


async def test_expired_rows_are_pruned_by_later_attempts(db: SqliteDatabase) -> None:
    clock = Clock()
    limiter = RateLimiter(POLICY, clock)
    for i in range(5):
        await limiter.hit(db, "signin", account=f"u{i}@example.com", address=f"10.2.0.{i}")
    clock.now += 61
    await limiter.hit(db, "signin", account="late@example.com", address="10.3.0.1")
    rows = (await db.execute("SELECT COUNT(*) AS n FROM auth_rate_limits")).rows[0]["n"]
    assert rows == 2  # only the last attempt's two rows are left


def test_ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(" 192.0.2.1 ") == "192.0.2.1"
