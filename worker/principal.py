"""Who is calling: the value every access decision is made from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    #: the owner id documents are scoped by; None only for the admin key
    user_id: str | None
    is_admin: bool = False
    session_handle: str | None = None
    #: read by access rules as ``auth.email``, ``auth.email_verified``, ``auth.roles``
    email: str | None = None
    email_verified: bool = False
    roles: tuple[str, ...] = ()
