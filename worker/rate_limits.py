# ruff: noqa: S608  -- only this module's constants are formatted into SQL; values are bound
"""Brute-force and abuse limits on auth actions: sliding windows per account and per client address.

Each limited action (:data:`POLICIES`) has two windows: one keyed by the account the request names
(the email as submitted, normalised; whether it exists is never looked up, so a limited unknown email
and a limited real one get the same ``429``) and one keyed by the client address (an IPv6 address by
its /64, the block one subscriber usually holds). Every attempt counts, successful or not. A loopback
peer (the local stack, or a reverse proxy on the same host) names no caller, so only the account
window counts for it; on Workers the address is Cloudflare's ``CF-Connecting-IP``, never loopback.

The windows live in the gateway's database (``config/migrations/0005_auth_rate_limits.sql``), so they
hold across Worker isolates and gateway processes. An allowed attempt costs one database round trip:
one batch that prunes up to :data:`PRUNE_PER_HIT` expired rows and records the attempt in both buckets
with ONE conditional ``INSERT ... SELECT`` (both rows or neither, decided inside the statement, so two
racing requests can never both take the last slot). Only a refused attempt reads again, to compute
``Retry-After``: when the oldest attempt in the full window leaves it. Buckets hold SHA-256 digests,
never an email or an address.

Other endpoints (password reset, email verification) call ``RateLimiter.hit`` with their action name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from worker.database import Database, Statement
from worker.http import ApiError

TABLE = "auth_rate_limits"
#: expired rows an attempt deletes on its way (amortised cleanup, no sweep needed)
PRUNE_PER_HIT = 32


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    seconds: int


@dataclass(frozen=True, slots=True)
class Policy:
    account: Window
    address: Window


#: the figures docs/api.md lists; a change here is a change there
POLICIES: Mapping[str, Policy] = {
    "signin": Policy(account=Window(10, 15 * 60), address=Window(50, 15 * 60)),
    "signup": Policy(account=Window(5, 60 * 60), address=Window(10, 60 * 60)),
    "password_reset": Policy(account=Window(5, 60 * 60), address=Window(20, 60 * 60)),
    "email_verification": Policy(account=Window(5, 60 * 60), address=Window(20, 60 * 60)),
}


def too_many(retry_after_s: int) -> ApiError:
    return ApiError(429, "rate_limited", f"too many attempts; try again in {retry_after_s} s",
                    headers={"retry-after": str(retry_after_s)})


def address_key(address: str) -> str:
    """The address a window counts: IPv4 as is, IPv6 by its /64; unparsable text as given."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip()).is_loopback
    except ValueError:
        return False


def _bucket(action: str, kind: str, value: str) -> str:
    return f"{action}:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


class RateLimiter:
    def __init__(self, policies: Mapping[str, Policy] = POLICIES,
                 clock: Callable[[], float] = time.time) -> None:
        self.policies = policies
        self._clock = clock
        self._longest_ms = max((max(p.account.seconds, p.address.seconds) for p in policies.values()),
                               default=0) * 1000

    async def hit(self, db: Database, action: str, *, account: str, address: str) -> None:
        """Count one attempt at ``action``; ApiError(429, Retry-After) when a window is full.

        ``address`` "" (a runtime that gives none) or a loopback address counts against the account
        window only.
        """
        policy = self.policies[action]
        now = int(self._clock() * 1000)
        windows = [(_bucket(action, "account", account.strip().lower()), policy.account)]
        if address and not _is_loopback(address):
            windows.append((_bucket(action, "address", address_key(address)), policy.address))
        values = " UNION ALL ".join("SELECT ? AS bucket" for _ in windows)
        checks = " AND ".join(f"(SELECT COUNT(*) FROM {TABLE} WHERE bucket = ? AND at_ms > ?) < ?"
                              for _ in windows)
        params: list[object] = [now, *(b for b, _ in windows)]
        for bucket, window in windows:
            params += [bucket, now - window.seconds * 1000, window.limit]
        prune = Statement(f"DELETE FROM {TABLE} WHERE rowid IN (SELECT rowid FROM {TABLE} WHERE at_ms <= ?"
                          f" ORDER BY at_ms LIMIT {PRUNE_PER_HIT})", (now - self._longest_ms,))
        record = Statement(f"INSERT INTO {TABLE} (bucket, at_ms) SELECT bucket, ? FROM ({values})"
                           f" WHERE {checks}", tuple(params))
        results = await db.batch([prune, record])
        if results[1].changes:
            return
        raise too_many(await self._retry_after_s(db, windows, now))

    async def _retry_after_s(self, db: Database, windows: list[tuple[str, Window]], now: int) -> int:
        """Seconds until every full window has a free slot again (at least 1)."""
        wait_ms = 0
        for bucket, window in windows:
            since = now - window.seconds * 1000
            row = (await db.execute(f"SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM {TABLE}"
                                    " WHERE bucket = ? AND at_ms > ?", (bucket, since))).rows[0]
            if row["n"] >= window.limit and row["oldest"] is not None:
                wait_ms = max(wait_ms, row["oldest"] + window.seconds * 1000 - now)
        return max(1, math.ceil(wait_ms / 1000))
