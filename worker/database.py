"""The database port: what the core needs from D1 (or SQLite standing in for it).

D1 has no BEGIN/COMMIT; atomicity comes from ``batch``. Every adapter must give
``batch`` all-or-nothing semantics and run the SQL unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

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
