"""Who is calling: the value every access decision is made from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from worker.http import Request


@dataclass(frozen=True, slots=True)
class Principal:
    #: the owner id documents are scoped by; None only for the admin key
    user_id: str | None
    is_admin: bool = False
    session_handle: str | None = None


class Authenticator(Protocol):
    async def authenticate(self, request: Request) -> Principal:
        """Return the caller, or raise ApiError(401) before anything touches the database."""
        ...
