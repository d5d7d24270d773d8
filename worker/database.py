"""The database port: what the core needs from D1 (or SQLite standing in for it).

D1 has no BEGIN/COMMIT; atomicity comes from ``batch``. Every adapter must give
``batch`` all-or-nothing semantics and run the SQL unchanged.

A request's queries run in one :class:`DatabaseSession` (D1's Sessions API): its
reads may be served by a read replica, but never by a state older than the
bookmark the session started from, and :meth:`DatabaseSession.bookmark` names
the newest state the session has seen or written. A client that sends that
bookmark with its next request reads its own writes (sequential consistency per
client). Bookmarks are opaque outside their adapter; one that the adapter can
tell it never issued is :class:`InvalidBookmark`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.http import ApiError

Params = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: Params = ()


@dataclass(slots=True)
class Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    changes: int = 0
    last_row_id: int | None = None


class DatabaseError(Exception):
    """A statement failed; ``constraint`` is set for UNIQUE/CHECK/FK violations."""

    def __init__(self, message: str, *, constraint: bool = False) -> None:
        super().__init__(message)
        self.constraint = constraint


class Database(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> Result:
        """Run one statement (auto-committed)."""
        ...

    async def batch(self, statements: list[Statement]) -> list[Result]:
        """Run statements in one transaction: all commit or none do."""
        ...


class DatabaseSession(Database, Protocol):
    def bookmark(self) -> str | None:
        """The newest state this session has read or written; None before its first query on D1."""
        ...


class SessionDatabase(Database, Protocol):
    def session(self, bookmark: str | None, *, writes: bool = False) -> DatabaseSession:
        """A session whose reads see at least ``bookmark``'s state.

        Without a bookmark a session may start at any replica, unless the request ``writes``: then its
        first query goes to the primary, so what a write reads first is never older than the primary.
        """
        ...


class InvalidBookmark(ApiError):
    """The client's bookmark is not one this database issued (a 400: the client must drop it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, "invalid_bookmark", f"the x-telestack-bookmark header is not valid: {detail}")
