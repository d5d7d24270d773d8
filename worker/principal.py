"""Who is calling: the value every access decision is made from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    #: the owner id documents are scoped by; None only for the admin key
    user_id: str | None
    is_admin: bool = False
    session_handle: str | None = None
    #: the user's roles as the access token's ``st-role`` claim lists them (see worker/user_roles.py)
    roles: tuple[str, ...] = ()
